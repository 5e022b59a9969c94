import assert from "node:assert/strict";
import { BackoffSchedule, startBackoffTicker } from "../../lib/util/ticker.ts";
import { clampTimerMs, MAX_TIMER_MS } from "../../lib/util/timer.ts";
import { FakeClock } from "../helpers/fake_clock.ts";

Deno.test("backoff schedule starts at 5 s, doubles and caps at the interval", () => {
  const s = new BackoffSchedule({ maxIntervalMs: 60_000, random: () => 0.5 });
  assert.deepEqual([s.next(), s.next(), s.next(), s.next(), s.next(), s.next()], [
    5000,
    10000,
    20000,
    40000,
    60000,
    60000,
  ]);
});

Deno.test("backoff schedule caps the first interval for short intervals", () => {
  const s = new BackoffSchedule({ maxIntervalMs: 2000, random: () => 0.5 });
  assert.deepEqual([s.next(), s.next()], [2000, 2000]);
});

Deno.test("backoff schedule jitters by ±50 %", () => {
  const low = new BackoffSchedule({ maxIntervalMs: 10_000, random: () => 0 });
  const high = new BackoffSchedule({ maxIntervalMs: 10_000, random: () => 0.999999 });
  low.next();
  high.next();
  assert.equal(low.next(), 5000);
  assert.ok(Math.abs(high.next() - 15000) < 1);
});

Deno.test("ticker fires at once, then on schedule, and stop() ends it", async () => {
  // Virtual time: on a loaded machine a wall-clock "at once" can take 30 ms.
  const clock = new FakeClock(0);
  const times: number[] = [];
  const ticker = startBackoffTicker({ maxIntervalMs: 30, random: () => 0.5, clock }, () => {
    times.push(clock.now());
  });
  await clock.advance(0);
  assert.deepEqual(times, [0], "the first tick runs at once");
  await clock.advance(200);
  ticker.stop();
  assert.ok(ticker.stopped);
  assert.ok(times.length >= 3, `${times.length} ticks in 200 ms`);
  assert.ok(times[1] - times[0] >= 25, `second tick ${times[1] - times[0]} ms later`);
  const count = times.length;
  await clock.advance(1000);
  assert.equal(times.length, count, "no tick after stop()");
  assert.equal(clock.pending, 0);
});

Deno.test("ticker reports a failing tick and keeps going", async () => {
  const errors: unknown[] = [];
  let n = 0;
  let ticker: ReturnType<typeof startBackoffTicker> | undefined;
  await new Promise<void>((resolve) => {
    ticker = startBackoffTicker({ maxIntervalMs: 5, onError: (e) => errors.push(e) }, () => {
      n++;
      if (n === 2) resolve();
      if (n === 1) throw new Error("boom");
    });
  });
  ticker!.stop();
  assert.equal(errors.length, 1);
});

Deno.test("an interval beyond the timer limit waits, it does not become a 1 ms busy loop", async () => {
  let ticks = 0;
  const ticker = startBackoffTicker({ maxIntervalMs: 2 ** 40, initialIntervalMs: 2 ** 35 }, () => {
    ticks++;
  });
  await new Promise((resolve) => setTimeout(resolve, 50));
  ticker.stop();
  assert.equal(ticks, 1, "only the immediate first tick");
});

Deno.test("timer delays are clamped to 0…2^31−1 ms; NaN and Infinity wait the longest", () => {
  assert.equal(clampTimerMs(-1), 0);
  assert.equal(clampTimerMs(1500), 1500);
  assert.equal(clampTimerMs(2 ** 31), MAX_TIMER_MS);
  assert.equal(clampTimerMs(Infinity), MAX_TIMER_MS);
  assert.equal(clampTimerMs(NaN), MAX_TIMER_MS);
});
