/**
 * The log lines of refused entries: one summary per message, at most a few per peer a minute.
 * A peer sending 15 000 forged entries made 15 000 WARN lines.
 */
import type { Logger } from "../util/logger.ts";
import { LogBudget } from "../util/rate_limit.ts";
import type { Violation } from "./merge.ts";

/** Violations of a message looked at one by one to decide whether it brings news. */
const SAMPLE = 64;

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
 * ```ts ignore
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

  /**
   * Reports the violations of one message received from `peer` (unknown: `""`). The work is
   * bounded whatever the message holds: whether it is news is judged on its first
   * {@link SAMPLE} violations, the rest are only counted by reason.
   */
  report(peer: string, violations: readonly Violation[]): void {
    if (violations.length === 0) return;
    let fresh = 0;
    for (const v of violations.slice(0, SAMPLE)) {
      const id = `${v.bucket}\0${v.key}\0${v.owner}\0${v.reason}`;
      if (this.#reported.has(id)) continue;
      if (this.#reported.size >= this.#maxRemembered) this.#reported.clear();
      this.#reported.add(id);
      fresh++;
    }
    const msg = "ledger: refused entries of a received block";
    const observe = "ledger: ownership violations accepted (observe mode)";
    let refused = 0;
    for (const v of violations) if (!v.accepted) refused++;
    if (fresh === 0) {
      // Peers re-send the same entries every sync round: said once is enough.
      if (this.#log.enabled("debug")) {
        this.#log.debug(refused > 0 ? msg : observe, { peer: peer || "unknown", refused });
      }
      return;
    }
    const { allowed, suppressed } = this.#budget.allow(peer);
    const fields = {
      peer: peer || "unknown",
      refused,
      accepted: violations.length - refused,
      reasons: byReason(violations),
      examples: violations.slice(0, 3).map((v) =>
        `${v.bucket}/${v.key} by ${v.owner || "unsigned"}`
      )
        .join(", "),
      ...(suppressed > 0 ? { linesSuppressed: suppressed } : {}),
    };
    if (allowed) this.#log.warn(refused > 0 ? msg : observe, fields);
    else if (this.#log.enabled("debug")) this.#log.debug(refused > 0 ? msg : observe, fields);
  }
}

function byReason(list: readonly Violation[]): string {
  const counts = new Map<string, number>();
  for (const v of list) counts.set(v.reason, (counts.get(v.reason) ?? 0) + 1);
  return [...counts].map(([reason, n]) => `${reason}=${n}`).join(" ");
}
