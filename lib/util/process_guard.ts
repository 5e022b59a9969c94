/** Process-wide handlers for errors nothing caught: counted and logged; the node keeps running. */
import { errorMessage } from "./errors.ts";
import type { Logger } from "./logger.ts";

/**
 * Errors that reached the process-wide handlers since the process started.
 *
 * @example
 * ```ts
 * processErrorCounts().unhandledRejections; // 0 in a healthy node
 * ```
 */
export interface ProcessErrorCounts {
  /** Exceptions thrown by an event listener, a timer or a microtask that nothing caught. */
  uncaughtErrors: number;
  /** Promises rejected with no handler. */
  unhandledRejections: number;
}

const counts: ProcessErrorCounts = { uncaughtErrors: 0, unhandledRejections: 0 };

/**
 * A copy of the counts.
 *
 * @example
 * ```ts
 * const { uncaughtErrors } = processErrorCounts();
 * ```
 */
export function processErrorCounts(): ProcessErrorCounts {
  return { ...counts };
}

/** Lines logged at most per minute; the rest are counted and summed up in the next line. */
const LOG_LINES_PER_MINUTE = 10;

/**
 * Installs global `error` and `unhandledrejection` handlers that count and log what reaches them
 * and keep the process running; returns the function that removes them.
 *
 * None of these errors is fatal: what reaches the handlers is one listener, timer or promise
 * chain that already ended, and ending the process for it would let any input that triggers a
 * bug stop the node. The loops a node cannot run without (the VPN's interface reader) report
 * their own end, and their owner exits. Logging is rate-limited (10 lines a minute, then a
 * count), so a peer that triggers a bug on every message cannot flood the log.
 *
 * @example
 * ```ts ignore
 * const uninstall = installProcessGuard(logger);
 * try {
 *   await runNode();
 * } finally {
 *   uninstall();
 * }
 * ```
 */
export function installProcessGuard(
  log: Logger,
  now: () => number = Date.now,
): () => void {
  let windowStart = -Infinity;
  let lines = 0;
  let suppressed = 0;
  const report = (what: string, error: unknown) => {
    const t = now();
    if (t - windowStart >= 60_000) {
      windowStart = t;
      lines = 0;
    }
    if (lines >= LOG_LINES_PER_MINUTE) {
      suppressed++;
      return;
    }
    lines++;
    const fields: Record<string, unknown> = { error: errorMessage(error) };
    if (suppressed > 0) fields.suppressed = suppressed;
    suppressed = 0;
    try {
      log.error(`${what} (the node keeps running)`, fields);
      if (error instanceof Error && error.stack) log.debug(what, { stack: error.stack });
    } catch {
      // A sink that fails (stderr closed) must not throw from inside the handler.
    }
  };
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    counts.uncaughtErrors++;
    report("uncaught error", e.error ?? e.message);
  };
  const onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    counts.unhandledRejections++;
    report("unhandled promise rejection", e.reason);
  };
  globalThis.addEventListener("error", onError);
  globalThis.addEventListener("unhandledrejection", onRejection);
  return () => {
    globalThis.removeEventListener("error", onError);
    globalThis.removeEventListener("unhandledrejection", onRejection);
  };
}
