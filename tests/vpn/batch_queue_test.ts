/** Tests of the per-peer batch queue: coalescing, tail drop, bounds, batch ownership. */
import assert from "node:assert/strict";
import { BatchQueue } from "../../lib/vpn/batch_queue.ts";
import { BATCH_BYTES, FrameDecoder } from "../../lib/vpn/frame.ts";
import { udp4 } from "./helpers.ts";

function framesOf(batches: Uint8Array[]): Uint8Array[] {
  const decoder = new FrameDecoder(0);
  const out: Uint8Array[] = [];
  for (const b of batches) decoder.push(b, (f) => out.push(f.slice()));
  return out;
}

function drain(queue: BatchQueue): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let b; (b = queue.take()) !== null;) out.push(b);
  return out;
}

Deno.test("frames pushed in one go leave as few batches of at most BATCH_BYTES, in order", () => {
  const queue = new BatchQueue(1 << 20);
  const packets = Array.from({ length: 200 }, (_, i) => udp4("10.1.0.1", "10.1.0.2", 1000 + i, i));
  for (const p of packets) assert.ok(queue.push(p.length, 0, p, 0, p.length));
  assert.equal(queue.frames, 200);
  const batches = drain(queue);
  // Greedy packing: a frame that does not fit the current batch starts the next one.
  let expected = 1;
  let used = 0;
  for (const p of packets) {
    if (used + p.length + 2 > BATCH_BYTES) {
      expected++;
      used = 0;
    }
    used += p.length + 2;
  }
  assert.equal(batches.length, expected);
  assert.ok(batches.every((b) => b.length <= BATCH_BYTES));
  assert.deepEqual(framesOf(batches), packets);
  assert.equal(queue.bytes, 0);
  assert.equal(queue.frames, 0);
});

Deno.test("lastBatchFrames tells how many frames the batch just taken holds", () => {
  const queue = new BatchQueue(1 << 20);
  const p = udp4("10.1.0.1", "10.1.0.2", 100);
  for (let i = 0; i < 5; i++) queue.push(p.length, 0, p, 0, p.length);
  queue.take();
  assert.equal(queue.lastBatchFrames, 5);
});

Deno.test("a full queue drops the newest frames and never grows past its bound", () => {
  const max = 200_000;
  const queue = new BatchQueue(max);
  const p = udp4("10.1.0.1", "10.1.0.2", 1372);
  let accepted = 0;
  let refused = 0;
  for (let i = 0; i < 1000; i++) {
    if (queue.push(p.length, 0, p, 0, p.length)) accepted++;
    else refused++;
    assert.ok(queue.bytes <= max);
  }
  assert.equal(accepted, Math.floor(max / (p.length + 2)));
  assert.equal(refused, 1000 - accepted);
  // Draining makes room again.
  queue.take();
  assert.ok(queue.push(p.length, 0, p, 0, p.length));
  assert.equal(queue.clear(), accepted - Math.floor(BATCH_BYTES / (p.length + 2)) + 1);
  assert.equal(queue.bytes, 0);
});

Deno.test("a frame larger than a batch travels alone", () => {
  const queue = new BatchQueue(1 << 20);
  const small = udp4("10.1.0.1", "10.1.0.2", 100);
  const big = new Uint8Array(65_535 - 10);
  big.set(udp4("10.1.0.1", "10.1.0.2", big.length - 28));
  queue.push(small.length, 0, small, 0, small.length);
  queue.push(big.length, 10, big, 0, big.length);
  queue.push(small.length, 0, small, 0, small.length);
  const batches = drain(queue);
  assert.deepEqual(batches.map((b) => b.length), [
    small.length + 2,
    big.length + 12,
    small.length + 2,
  ]);
});

Deno.test("a batch handed out is never written again by later pushes", () => {
  const queue = new BatchQueue(1 << 20);
  const a = udp4("10.1.0.1", "10.1.0.2", 50, 1);
  const b = udp4("10.1.0.1", "10.1.0.2", 50, 2);
  queue.push(a.length, 0, a, 0, a.length);
  const first = queue.take()!;
  const copy = first.slice();
  for (let i = 0; i < 100; i++) queue.push(b.length, 0, b, 0, b.length);
  assert.deepEqual(first, copy);
  // The same holds for large batches handed over without a copy.
  const big = udp4("10.1.0.1", "10.1.0.2", 1400, 3);
  drain(queue);
  for (let i = 0; i < 40; i++) queue.push(big.length, 0, big, 0, big.length);
  const full = queue.take()!;
  const fullCopy = full.slice();
  for (let i = 0; i < 100; i++) queue.push(b.length, 0, b, 0, b.length);
  assert.deepEqual(full, fullCopy);
});

Deno.test("a bound smaller than one batch is refused", () => {
  assert.throws(() => new BatchQueue(1000), RangeError);
});
