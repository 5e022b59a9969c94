import assert from "node:assert/strict";
import { cpuUsage } from "node:process";
import { Registry } from "prom-client";
import { createEventLoopLag, LAG_SAMPLE_MS } from "../../lib/metrics/event_loop_lag.ts";
import { histogramBuckets, histogramQuantile } from "./helpers.ts";

const NAME = "edgevpn_event_loop_lag_distribution_seconds";

/** CPU time the process has used, in milliseconds. */
function cpuMs(): number {
  const { user, system } = cpuUsage();
  return (user + system) / 1000;
}

// A stall of S ms shows as a sample late by S minus up to one sample period (the stall may begin
// just before a sample was due), so the stalls here last 400 ms for samples late ≥ 250 ms.
const STALL_MS = 400;

Deno.test("the event-loop lag histogram counts a 400 ms stall in its ≥ 250 ms buckets, and idle samples below", async () => {
  const registry = new Registry();
  const lag = createEventLoopLag(registry);
  lag.start();
  try {
    await new Promise((r) => setTimeout(r, 200));
    const before = histogramBuckets(await registry.metrics(), NAME);
    const end = performance.now() + STALL_MS;
    while (performance.now() < end) { /* the stall */ }
    // Five sample periods after the stall: at least three on-time samples for each late one.
    await new Promise((r) => setTimeout(r, 5 * LAG_SAMPLE_MS));
    const after = histogramBuckets(await registry.metrics(), NAME);
    const at = (b: [number, number][], le: number) => b.find(([x]) => x === le)?.[1] ?? NaN;
    const total = at(after, Infinity) - at(before, Infinity);
    const stalled = total - (at(after, 0.25) - at(before, 0.25));
    // The stall is one late sample (another only if the machine itself stalls the process).
    assert.ok(stalled >= 1, `${stalled} samples above 250 ms out of ${total}`);
    assert.ok(
      total >= 3 * stalled,
      `${total} samples in ${(STALL_MS + 5 * LAG_SAMPLE_MS) / 1000} s`,
    );
    assert.ok(lag.takeMaxMs() >= 250, "the maximum saw the stall");
    // One late sample among many: the median stays low, the top quantile lands in the stall's bucket.
    assert.ok(histogramQuantile(before, after, 0.5) < 0.05);
    assert.ok(histogramQuantile(before, after, 1) > 0.25);
  } finally {
    lag.stop();
  }
});

Deno.test("a stall of the process's own work counts as a stall; a wait the process spends not running is lag only", async () => {
  const registry = new Registry();
  const lag = createEventLoopLag(registry);
  lag.start();
  try {
    await new Promise((r) => setTimeout(r, 100));
    lag.takeMaxMs();
    lag.takeMaxStallMs();
    // 400 ms of CPU time and of the clock (longer on the clock when the machine is busy): the
    // node's own work.
    const start = cpuMs();
    const end = performance.now() + STALL_MS;
    while (cpuMs() - start < STALL_MS || performance.now() < end) { /* busy */ }
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(lag.takeMaxMs() >= 250);
    assert.ok(lag.takeMaxStallMs() >= 250, "the busy loop is a stall");
    await new Promise((r) => setTimeout(r, 100));
    lag.takeMaxMs();
    lag.takeMaxStallMs();
    // Blocked without running, as when the OS runs other processes instead.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, STALL_MS);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(lag.takeMaxMs() >= 250, "the wait delays the loop");
    assert.ok(lag.takeMaxStallMs() < 100, "but the process was not running");
    assert.match(await registry.metrics(), /edgevpn_event_loop_stall_distribution_seconds_count/);
  } finally {
    lag.stop();
  }
});

Deno.test("histogramQuantile interpolates within the bucket of the rank, over the difference of two scrapes", () => {
  const before: [number, number][] = [[0.1, 10], [0.2, 10], [Infinity, 10]];
  const after: [number, number][] = [[0.1, 100], [0.2, 110], [Infinity, 110]];
  // 100 new samples: 90 ≤ 0.1 s, 10 in (0.1, 0.2].
  assert.ok(Math.abs(histogramQuantile(before, after, 0.5) - 0.1 * 50 / 90) < 1e-9);
  assert.ok(Math.abs(histogramQuantile(before, after, 0.95) - 0.15) < 1e-9);
  assert.equal(histogramQuantile(before, before, 0.99), 0);
});
