import assert from "node:assert/strict";
import { multiaddrConnectionPair } from "@libp2p/utils";
import {
  coalescingYamux,
  flushMuxer,
  YAMUX,
  YAMUX_HEADER,
  yamuxFrame,
} from "../../lib/node/muxer.ts";
import { waitFor } from "./helpers.ts";

Deno.test("yamux frames: version 0, type, flags, stream ID and length big-endian, then the body", () => {
  assert.deepEqual(
    yamuxFrame(YAMUX.WINDOW_UPDATE, YAMUX.RST, 3),
    Uint8Array.of(0, 1, 0, 8, 0, 0, 0, 3, 0, 0, 0, 0),
  );
  assert.deepEqual(
    yamuxFrame(YAMUX.DATA, YAMUX.ACK | YAMUX.FIN, 0x01020304, Uint8Array.of(9, 9)),
    Uint8Array.of(0, 0, 0, 6, 1, 2, 3, 4, 0, 0, 0, 2, 9, 9),
  );
});

/** Two coalescing yamux muxers over an in-memory connection, recording what each hands it. */
function muxerPair() {
  const [a, b] = multiaddrConnectionPair();
  const record = (conn: typeof a) => {
    const sent: Uint8Array[] = [];
    const send = conn.send.bind(conn);
    conn.send = (data) => {
      sent.push(data instanceof Uint8Array ? data.slice() : data.subarray());
      return send(data);
    };
    return sent;
  };
  const sentByA = record(a);
  const sentByB = record(b);
  const factory = coalescingYamux()();
  const muxerA = factory.createStreamMuxer(a);
  const muxerB = factory.createStreamMuxer(b);
  const received: Uint8Array[] = [];
  // A libp2p connection listens on both muxers (ours hold stream frames until it does).
  muxerA.addEventListener("stream", () => {});
  muxerB.addEventListener("stream", (e) => {
    e.detail.addEventListener("message", (m) => {
      received.push(m.data instanceof Uint8Array ? m.data : m.data.subarray());
    });
  });
  const receivedBytes = () => received.reduce((n, c) => n + c.length, 0);
  return { muxerA, muxerB, sentByA, sentByB, receivedBytes };
}

/** The yamux frame headers in bytes a muxer handed its connection. */
function frames(chunks: Uint8Array[]): { type: number; flags: number; length: number }[] {
  const out = [];
  for (const c of chunks) {
    for (let at = 0; at + YAMUX_HEADER <= c.length;) {
      const view = new DataView(c.buffer, c.byteOffset + at);
      const type = view.getUint8(1);
      const length = view.getUint32(8);
      out.push({ type, flags: view.getUint16(2), length });
      at += YAMUX_HEADER + (type === YAMUX.DATA ? length : 0);
    }
  }
  return out;
}

Deno.test("a flushed frame is handed to the connection in the same task, not at its end", async () => {
  const { muxerA, sentByA, receivedBytes } = muxerPair();
  const stream = await muxerA.createStream();
  stream.send(Uint8Array.of(1));
  await waitFor(() => receivedBytes() === 1, "the first byte");
  sentByA.length = 0;
  stream.send(Uint8Array.of(1, 2, 3));
  assert.equal(sentByA.length, 0, "without a flush the frame waits for the end of the task");
  flushMuxer(muxerA);
  const data = frames(sentByA).filter((f) => f.type === YAMUX.DATA);
  assert.deepEqual(data.map((f) => f.length), [3]);
  await waitFor(() => receivedBytes() === 4, "the flushed bytes");
  muxerA.abort(new Error("done"));
});

Deno.test("window updates go out once half the receive window is used, and a long flow keeps moving", async () => {
  const { muxerA, sentByB, receivedBytes } = muxerPair();
  const stream = await muxerA.createStream();
  const chunk = new Uint8Array(1024);
  for (let i = 0; i < 32; i++) stream.send(chunk);
  await waitFor(() => receivedBytes() === 32 * 1024, "32 KiB");
  const updates = () =>
    frames(sentByB).filter((f) =>
      f.type === YAMUX.WINDOW_UPDATE && f.length > 0 && (f.flags & (YAMUX.SYN | YAMUX.ACK)) === 0
    ).length;
  assert.equal(updates(), 0, "32 KiB of a 256 KiB window needs no update (beyond the ACK)");
  // Far beyond the initial window: only window updates let it through.
  const big = new Uint8Array(16 * 1024);
  const total = 32 * 1024 + 256 * big.length;
  for (let i = 0; i < 256; i++) {
    if (!stream.send(big)) {
      await new Promise((r) => stream.addEventListener("drain", r, { once: true }));
    }
  }
  await waitFor(() => receivedBytes() === total, "4 MiB");
  assert.ok(updates() > 0, "the sender was given more window");
  assert.ok(updates() <= 32, `one update per half window, got ${updates()} for 256 frames`);
  muxerA.abort(new Error("done"));
});
