/** Progress of a file transfer: a bar with rate and ETA on a terminal, plain periodic lines elsewhere. */
// @ts-types="./cli_progress.d.ts"
import cliProgress, { type SingleBar } from "cli-progress";
import type { FileProgress } from "../files/receive.ts";
import type { Logger } from "../util/logger.ts";

/** Seconds between plain progress lines. */
const LINE_INTERVAL_MS = 2_000;
/** Rate is averaged over this window. */
const RATE_WINDOW_MS = 3_000;

/** Shows a transfer's progress; `stop()` ends the display. */
export interface ProgressReporter {
  update(progress: FileProgress): void;
  stop(): void;
}

/**
 * Text of a byte count in binary units.
 *
 * @example
 * ```ts
 * formatBytes(1536); // "1.5 KiB"
 * ```
 */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

/**
 * Text of a duration in seconds: `42s`, `3m05s`, `1h02m`.
 *
 * @example
 * ```ts
 * formatEta(185); // "3m05s"
 * ```
 */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`;
}

const encoder = new TextEncoder();

/** Standard error as the terminal stream cli-progress writes to (escape codes, width). */
function stderrTerminal() {
  return {
    isTTY: true,
    get columns() {
      try {
        return Deno.consoleSize().columns;
      } catch {
        return 80;
      }
    },
    write(text: string) {
      Deno.stderr.writeSync(encoder.encode(text));
      return true;
    },
  };
}

/** Bytes per second over the last few seconds. */
class RateMeter {
  readonly #samples: { at: number; bytes: number }[] = [];

  add(bytes: number, at = Date.now()): number {
    this.#samples.push({ at, bytes });
    while (this.#samples.length > 2 && at - this.#samples[0].at > RATE_WINDOW_MS) {
      this.#samples.shift();
    }
    const first = this.#samples[0];
    const seconds = (at - first.at) / 1000;
    return seconds > 0 ? (bytes - first.bytes) / seconds : 0;
  }
}

/**
 * A reporter for the transfer of `name`: a cli-progress bar on stderr when it is a terminal,
 * otherwise an info line every 2 s through `log`.
 *
 * @example
 * ```ts ignore
 * const progress = createProgressReporter("backup", { tty: Deno.stderr.isTerminal(), log });
 * progress.update({ received: 10, total: 100, resumedFrom: 0 });
 * progress.stop();
 * ```
 */
export function createProgressReporter(
  name: string,
  options: { tty: boolean; log: Logger },
): ProgressReporter {
  return options.tty ? new BarReporter(name) : new LineReporter(name, options.log);
}

class BarReporter implements ProgressReporter {
  readonly #name: string;
  readonly #rate = new RateMeter();
  #bar: SingleBar | undefined;

  constructor(name: string) {
    this.#name = name;
  }

  update(p: FileProgress): void {
    const rate = this.#rate.add(p.received);
    const payload = {
      got: formatBytes(p.received),
      size: p.total === undefined ? "?" : formatBytes(p.total),
      rate: `${formatBytes(Math.round(rate))}/s`,
      left: p.total === undefined || rate <= 0 ? "?" : formatEta((p.total - p.received) / rate),
    };
    if (this.#bar === undefined) {
      const known = p.total !== undefined;
      this.#bar = new cliProgress.SingleBar({
        stream: stderrTerminal(),
        format: known
          ? `${this.#name} [{bar}] {percentage}% | {got}/{size} | {rate} | ETA {left}`
          : `${this.#name} {got} | {rate}`,
        hideCursor: true,
        barsize: 30,
      }, cliProgress.Presets.shades_classic);
      this.#bar.start(p.total ?? 0, p.received, payload);
      return;
    }
    if (p.total !== undefined && p.total !== this.#bar.getTotal()) this.#bar.setTotal(p.total);
    this.#bar.update(p.received, payload);
  }

  stop(): void {
    this.#bar?.stop();
  }
}

class LineReporter implements ProgressReporter {
  readonly #name: string;
  readonly #log: Logger;
  readonly #rate = new RateMeter();
  #last = 0;

  constructor(name: string, log: Logger) {
    this.#name = name;
    this.#log = log;
  }

  update(p: FileProgress): void {
    const now = Date.now();
    const rate = this.#rate.add(p.received, now);
    if (now - this.#last < LINE_INTERVAL_MS && p.received !== p.total) return;
    if (this.#last === 0 && p.received === p.resumedFrom && p.received !== p.total) {
      this.#last = now;
      return;
    }
    this.#last = now;
    const of = p.total === undefined
      ? ""
      : ` of ${formatBytes(p.total)} (${Math.floor((p.received / Math.max(1, p.total)) * 100)}%)`;
    const eta = p.total === undefined || rate <= 0
      ? ""
      : `, ETA ${formatEta((p.total - p.received) / rate)}`;
    this.#log.info(
      `file '${this.#name}': ${formatBytes(p.received)}${of}, ${
        formatBytes(Math.round(rate))
      }/s${eta}`,
    );
  }

  stop(): void {}
}
