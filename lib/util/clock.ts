/** Wall-clock time and timers behind one small interface, so every periodic job can run on a fake clock in tests. */
import { clampTimerMs } from "./timer.ts";

/**
 * Time source and timer scheduler. `now()` is Unix time in milliseconds (wall clock: OTP
 * windows follow it, as in Go EdgeVPN).
 *
 * @example
 * ```ts
 * const h = systemClock.setTimeout(() => {}, 10);
 * systemClock.clearTimeout(h);
 * ```
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * The real clock: `Date.now()` and the global timers.
 *
 * @example
 * ```ts
 * systemClock.now() > 0; // true
 * ```
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, clampTimerMs(ms)),
  clearTimeout: (handle) => clearTimeout(handle as number),
};
