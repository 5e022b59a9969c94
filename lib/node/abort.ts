/** Timeout signals that never keep the process alive once their owner is done with them. */
import { clampTimerMs } from "../util/timer.ts";

/**
 * A signal aborted after `ms` or when `parent` aborts; call `clear()` when the operation
 * ends. (Deno keeps the process alive while an `AbortSignal.timeout()` has listeners, so
 * long-lived code uses this instead.)
 *
 * @example
 * ```ts
 * const t = timeoutSignal(5000);
 * try {
 *   await fetch("http://127.0.0.1:1", { signal: t.signal }).catch(() => {});
 * } finally {
 *   t.clear();
 * }
 * ```
 */
export function timeoutSignal(
  ms: number,
  parent?: AbortSignal,
): { signal: AbortSignal; clear: () => void } {
  const controller = new AbortController();
  const onParentAbort = () => controller.abort(parent?.reason);
  const timer = setTimeout(
    () => controller.abort(new DOMException(`timed out after ${ms} ms`, "TimeoutError")),
    clampTimerMs(ms),
  );
  if (parent?.aborted) onParentAbort();
  else parent?.addEventListener("abort", onParentAbort, { once: true });
  return {
    signal: controller.signal,
    clear: () => {
      clearTimeout(timer);
      parent?.removeEventListener("abort", onParentAbort);
    },
  };
}
