import assert from "node:assert/strict";
import { multiaddrConnectionPair } from "@libp2p/utils";
import { YAMUX_INITIAL_WINDOW } from "../../lib/node/workarounds.ts";
import { coalescingYamux, YAMUX, yamuxFrame } from "../../lib/node/muxer.ts";
import { waitFor } from "./helpers.ts";

/** A coalescing yamux muxer on one end of an in-memory connection; raw bytes go in the other. */
function listener() {
  const [raw, conn] = multiaddrConnectionPair();
  const muxer = coalescingYamux()().createStreamMuxer(conn);
  const got: number[] = [];
  muxer.addEventListener("stream", (e) => {
    e.detail.addEventListener("message", (m) => got.push(m.data.byteLength));
  });
  let closed: unknown;
  conn.addEventListener("close", (e) => closed = e.error ?? "closed");
  return { raw, muxer, got, closed: () => closed };
}

/** A DATA frame header (no body) declaring `length` bytes on stream `id`. */
function dataHeader(id: number, length: number, flags = 0): Uint8Array {
  const h = yamuxFrame(YAMUX.DATA, flags, id);
  new DataView(h.buffer).setUint32(8, length);
  return h;
}

Deno.test("a declared 4 GiB DATA frame aborts the connection at its header, before a byte is buffered", async () => {
  const { raw, muxer, closed } = listener();
  raw.send(dataHeader(1, 0xffffffff, YAMUX.SYN));
  await waitFor(() => closed() !== undefined, "the connection to close");
  assert.match(String((closed() as Error).message), /exceeds its window of 262144/);
  assert.notEqual(muxer.status, "open");
});

Deno.test("a frame beyond what a stream's window left is refused; frames within it pass", async () => {
  const { raw, got, closed } = listener();
  raw.send(yamuxFrame(YAMUX.DATA, YAMUX.SYN, 1, new Uint8Array(YAMUX_INITIAL_WINDOW)));
  await waitFor(() => got.length === 1, "a frame of the whole initial window");
  raw.send(yamuxFrame(YAMUX.DATA, YAMUX.SYN, 3, new Uint8Array(10)));
  await waitFor(() => got.length === 2, "a small frame on another stream");
  assert.equal(closed(), undefined);
  // Frames up to the initial window pass unchecked (yamux checks them itself); past it, the
  // stream must have granted that much: stream 3 was granted only the initial window.
  raw.send(dataHeader(3, YAMUX_INITIAL_WINDOW + 1));
  await waitFor(() => closed() !== undefined, "the connection to close");
  assert.match(String((closed() as Error).message), /on stream 3 exceeds its window of 262144/);
});

Deno.test("streams still move megabytes in large frames once their window grew", async () => {
  const [a, b] = multiaddrConnectionPair();
  const factory = coalescingYamux()();
  const muxerA = factory.createStreamMuxer(a);
  const muxerB = factory.createStreamMuxer(b);
  let received = 0;
  muxerA.addEventListener("stream", () => {});
  muxerB.addEventListener("stream", (e) => {
    e.detail.addEventListener("message", (m) => received += m.data.byteLength);
  });
  const stream = await muxerA.createStream();
  const chunk = new Uint8Array(1 << 20);
  for (let i = 0; i < 8; i++) {
    if (!stream.send(chunk)) {
      await new Promise((r) => stream.addEventListener("drain", r, { once: true }));
    }
  }
  await waitFor(() => received === 8 << 20, () => `8 MiB (got ${received})`);
  assert.equal(muxerB.status, "open");
  muxerA.abort(new Error("done"));
  muxerB.abort(new Error("done"));
});
