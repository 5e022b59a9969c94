/** Timer durations kept within what `setTimeout` and `setInterval` can hold. */

/**
 * The longest delay a timer takes (2^31 − 1 ms, about 24.8 days). A longer one overflows the
 * 32-bit field and fires after 1 ms, which turns a long interval into a busy loop.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Clamps a delay to what a timer can wait: negative → 0, above {@link MAX_TIMER_MS} (including
 * Infinity) → {@link MAX_TIMER_MS}. NaN is taken as "as late as possible", never as 0: a bad
 * interval must not become a busy loop.
 *
 * @example
 * ```ts ignore
 * setTimeout(tick, clampTimerMs(1000 * 3600 * 1000)); // waits 24.8 days, not 1 ms
 * clampTimerMs(-5); // 0
 * ```
 */
export function clampTimerMs(ms: number): number {
  if (ms >= 0 && ms <= MAX_TIMER_MS) return ms;
  return ms < 0 ? 0 : MAX_TIMER_MS;
}
