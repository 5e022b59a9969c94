/**
 * The log lines of refused entries: one summary per message, at most a few per peer a minute.
 * A peer sending 15 000 forged entries made 15 000 WARN lines.
 */
import type { Logger } from "../util/logger.ts";
import { LogBudget } from "../util/rate_limit.ts";
import type { Violation } from "./merge.ts";

/** Defaults of {@link ViolationLog}. */
export const VIOLATION_LOG_DEFAULTS = {
  /** WARN lines per peer per window. */
  linesPerPeer: 10,
  windowMs: 60_000,
  /** Distinct violations remembered, so that a re-sent one is not reported again. */
  maxRemembered: 4096,
} as const;

/**
 * Summarises the violations one message caused in one WARN line (count per reason, a few
 * examples), only for violations not reported before (peers re-send their entries every sync
 * round), and at most `linesPerPeer` lines per peer per window; lines held back are counted in
 * the next one.
 *
 * @example
 * ```ts
 * const log = new ViolationLog(logger);
 * log.report("12D3KooW…", merged.violations);
 * ```
 */
export class ViolationLog {
  readonly #log: Logger;
  readonly #budget: LogBudget;
  readonly #maxRemembered: number;
  readonly #reported = new Set<string>();

  constructor(
    logger: Logger,
    options: Partial<typeof VIOLATION_LOG_DEFAULTS> & { now?: () => number } = {},
  ) {
    this.#log = logger;
    this.#budget = new LogBudget(
      options.linesPerPeer ?? VIOLATION_LOG_DEFAULTS.linesPerPeer,
      options.windowMs ?? VIOLATION_LOG_DEFAULTS.windowMs,
      { now: options.now },
    );
    this.#maxRemembered = options.maxRemembered ?? VIOLATION_LOG_DEFAULTS.maxRemembered;
  }

  /** Reports the violations of one message received from `peer` (unknown: `""`). */
  report(peer: string, violations: readonly Violation[]): void {
    const fresh = violations.filter((v) => {
      const id = `${v.bucket}\0${v.key}\0${v.owner}\0${v.reason}`;
      if (this.#reported.has(id)) return false;
      if (this.#reported.size >= this.#maxRemembered) this.#reported.clear();
      this.#reported.add(id);
      return true;
    });
    if (fresh.length === 0) return;
    const refused = fresh.filter((v) => !v.accepted).length;
    const { allowed, suppressed } = this.#budget.allow(peer);
    const fields = {
      peer: peer || "unknown",
      refused,
      accepted: fresh.length - refused,
      reasons: byReason(fresh),
      examples: fresh.slice(0, 3).map((v) => `${v.bucket}/${v.key} by ${v.owner || "unsigned"}`)
        .join(", "),
      ...(suppressed > 0 ? { linesSuppressed: suppressed } : {}),
    };
    const msg = refused > 0
      ? "ledger: refused entries of a received block"
      : "ledger: ownership violations accepted (observe mode)";
    if (allowed) this.#log.warn(msg, fields);
    else this.#log.debug(msg, fields);
  }
}

function byReason(list: readonly Violation[]): string {
  const counts = new Map<string, number>();
  for (const v of list) counts.set(v.reason, (counts.get(v.reason) ?? 0) + 1);
  return [...counts].map(([reason, n]) => `${reason}=${n}`).join(" ");
}
