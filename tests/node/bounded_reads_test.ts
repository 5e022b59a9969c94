import assert from "node:assert/strict";
import { multiaddrConnectionPair } from "@libp2p/utils";
import type { Stream } from "@libp2p/interface";
import { readBounded } from "../../lib/node/workarounds.ts";
import { coalescingYamux } from "../../lib/node/muxer.ts";
import { waitFor } from "./helpers.ts";

/** A yamux stream pair over an in-memory connection, with the bytes the connection carried. */
async function pair(): Promise<
  { writer: Stream; reader: Stream; carried: () => number; close(): void }
> {
  const [a, b] = multiaddrConnectionPair();
  let carried = 0;
  const send = a.send.bind(a);
  a.send = (data) => {
    carried += data.byteLength;
    return send(data);
  };
  const factory = coalescingYamux()();
  const muxerA = factory.createStreamMuxer(a);
  const muxerB = factory.createStreamMuxer(b);
  muxerA.addEventListener("stream", () => {});
  const inbound = new Promise<Stream>((resolve) =>
    muxerB.addEventListener("stream", (e) => resolve(e.detail), { once: true })
  );
  const writer = await muxerA.createStream();
  writer.send(Uint8Array.of(0));
  const reader = await inbound;
  return {
    writer,
    reader,
    carried: () => carried,
    close: () => {
      muxerA.abort(new Error("done"));
      muxerB.abort(new Error("done"));
    },
  };
}

Deno.test("a slow reader pauses its peer: what waits unread stays bounded, then all of it arrives", async () => {
  const { writer, reader, carried, close } = await pair();
  try {
    const source = readBounded(reader, 1 << 20, 1 << 20);
    const total = 32 << 20;
    const chunk = new Uint8Array(64 << 10);
    let written = 0;
    const writing = (async () => {
      while (written < total) {
        for (let i = 0; i < chunk.length; i += 4096) chunk[i] = (written + i) & 0xff;
        written += chunk.length;
        if (!writer.send(chunk)) {
          await new Promise((r) => writer.addEventListener("drain", r, { once: true }));
        }
      }
    })();
    const it = source[Symbol.asyncIterator]();
    let read = (await it.next()).value!.byteLength;
    // The reader stalls: the writer may fill what we buffer plus the window, and no more.
    await new Promise((r) => setTimeout(r, 500));
    const stalledAt = carried();
    assert.ok(stalledAt < 4 << 20, `carried ${stalledAt} bytes while the reader slept`);
    assert.ok(written < total, "the writer is held back");
    let ok = true;
    for (let r = await it.next(); !r.done && read < total + 1; r = await it.next()) {
      const bytes = r.value.subarray();
      for (let i = 0; i < bytes.length; i++) {
        const at = read - 1 + i;
        if (at >= 0 && at % 4096 === 0 && bytes[i] !== (at & 0xff)) ok = false;
      }
      read += bytes.length;
      if (read === total + 1) break;
    }
    await writing;
    assert.equal(read, total + 1);
    assert.ok(ok, "the bytes arrive in order");
  } finally {
    close();
  }
});

Deno.test("a stream ended while paused still delivers everything it held", async () => {
  const { writer, reader, close } = await pair();
  try {
    const source = readBounded(reader, 1000, 1 << 20);
    writer.send(new Uint8Array(200_000));
    await writer.close();
    await waitFor(
      () => (reader as unknown as { readStatus: string }).readStatus !== "readable",
      "pause",
      2000,
    )
      .catch(() => {});
    let read = 0;
    for await (const c of source) read += c.byteLength;
    assert.equal(read, 200_001);
  } finally {
    close();
  }
});
