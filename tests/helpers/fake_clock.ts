/** A virtual {@link Clock} for tests: time moves only when `advance` runs the timers due. */
import { setImmediate } from "node:timers";
import type { Clock } from "../../lib/util/clock.ts";
import { clampTimerMs } from "../../lib/util/timer.ts";

interface FakeTimer {
  due: number;
  seq: number;
  fn: () => void;
}

/**
 * Timers wait on virtual time (clamped as the system's are). Between two timers `advance` lets
 * the real event loop run, so that async work a timer started (hashing, signing) finishes and
 * schedules its next timer before virtual time moves on.
 *
 * @example
 * ```ts
 * const clock = new FakeClock(Date.UTC(2026, 0, 1));
 * clock.setTimeout(() => console.log("an hour later"), 3_600_000);
 * await clock.advance(3_600_000);
 * ```
 */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Map<number, FakeTimer>();
  readonly #busy: () => boolean;
  /** Timers run so far. */
  fired = 0;

  /**
   * `busy` tells whether work a timer started is still running (it may schedule the next
   * timer when it ends); virtual time does not move on while it is.
   */
  constructor(startMs: number, busy: () => boolean = () => false) {
    this.#now = startMs;
    this.#busy = busy;
  }

  now = (): number => this.#now;

  setTimeout = (fn: () => void, ms: number): unknown => {
    const seq = ++this.#seq;
    this.#timers.set(seq, { due: this.#now + clampTimerMs(ms), seq, fn });
    return seq;
  };

  clearTimeout = (handle: unknown): void => {
    this.#timers.delete(handle as number);
  };

  /** Timers waiting. */
  get pending(): number {
    return this.#timers.size;
  }

  /**
   * Runs every timer due within `ms` of virtual time, in order, then sets the time to the end.
   * Throws when more than `maxFires` timers run (a runaway loop).
   */
  async advance(ms: number, maxFires = Number.POSITIVE_INFINITY): Promise<void> {
    const end = this.#now + ms;
    let fires = 0;
    for (;;) {
      await settle(this.#busy);
      let next: FakeTimer | undefined;
      for (const t of this.#timers.values()) {
        if (!next || t.due < next.due || (t.due === next.due && t.seq < next.seq)) next = t;
      }
      if (!next || next.due > end) break;
      this.#timers.delete(next.seq);
      this.#now = Math.max(this.#now, next.due);
      if (++fires > maxFires) {
        throw new Error(`more than ${maxFires} timers ran in ${ms} ms of virtual time`);
      }
      this.fired++;
      next.fn();
    }
    this.#now = end;
  }
}

/** Lets the real event loop run (promises, thread-pool crypto callbacks) until nothing is busy. */
async function settle(busy: () => boolean): Promise<void> {
  for (let i = 0; i < 1 || busy(); i++) {
    if (i > 100_000) throw new Error("work started by a timer never ended");
    await new Promise((r) => setImmediate(r));
  }
}
