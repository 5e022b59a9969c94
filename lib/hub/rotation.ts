/** Which OTP windows the hub listens on at a given time, and when that changes next. */
import { otpWindow } from "../crypto/derive.ts";

/**
 * The hub's view of the OTP windows at one instant.
 *
 * @example
 * ```ts
 * const p = rotationPlan(360, 1700000000_000, 5000, 10000);
 * p.current; // 4722222
 * ```
 */
export interface RotationPlan {
  /** Counter of the window containing the instant: publish with its topic and key. */
  current: number;
  /** Counters whose topics are subscribed and whose keys open messages, current first. */
  active: number[];
  /** Next instant (Unix ms) at which `active` or `current` changes. */
  nextChangeMs: number;
}

/**
 * Plans the windows for `nowMs`: the current one always; the next one from `leadMs` before
 * its start (so subscriptions have spread when the switch happens, and early clocks are
 * heard); the previous one until `graceMs` after the boundary (late clocks, messages in
 * flight). Lead and grace are capped at half the interval.
 *
 * @example
 * ```ts
 * rotationPlan(10, 9_500, 1000, 1000).active; // [0, 1]
 * rotationPlan(10, 10_500, 1000, 1000).active; // [1, 0]
 * rotationPlan(10, 15_000, 1000, 1000).active; // [1]
 * ```
 */
export function rotationPlan(
  intervalSeconds: number,
  nowMs: number,
  leadMs: number,
  graceMs: number,
): RotationPlan {
  const half = intervalSeconds * 500;
  const lead = Math.max(0, Math.min(leadMs, half));
  const grace = Math.max(0, Math.min(graceMs, half));
  const w = otpWindow(intervalSeconds, nowMs);
  const active = [w.counter];
  if (nowMs >= w.endMs - lead) active.push(w.counter + 1);
  if (nowMs < w.startMs + grace) active.push(w.counter - 1);
  const changes = [w.endMs - lead, w.endMs, w.startMs + grace].filter((t) => t > nowMs);
  return { current: w.counter, active, nextChangeMs: Math.min(...changes) };
}
