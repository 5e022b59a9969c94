/** The jittered exponential-backoff ticker every periodic EdgeVPN job runs on (cenkalti/backoff). */
import { type Clock, systemClock } from "./clock.ts";

/** Shape of a backoff schedule; only `maxIntervalMs` is required. */
export interface BackoffOptions {
  /** Steady-state interval (Go: the configured duration). */
  maxIntervalMs: number;
  /** First interval, capped at `maxIntervalMs`; default 5000. */
  initialIntervalMs?: number;
  /** Growth factor per tick; default 2. */
  multiplier?: number;
  /** Jitter: each interval is uniform in [i × (1 − f), i × (1 + f)]; default 0.5. */
  randomizationFactor?: number;
  /** Source of uniform numbers in [0, 1); default Math.random. */
  random?: () => number;
}

/** Default first interval of Go's backoff tickers. */
export const DEFAULT_INITIAL_INTERVAL_MS = 5000;

/**
 * The sequence of waits between ticks: starts at min(initial, max), doubles, capped at max,
 * each value jittered by ±randomizationFactor.
 *
 * @example
 * ```ts
 * const s = new BackoffSchedule({ maxIntervalMs: 10_000, random: () => 0.5 });
 * s.next(); // 5000
 * s.next(); // 10000
 * s.next(); // 10000
 * ```
 */
export class BackoffSchedule {
  readonly #max: number;
  readonly #multiplier: number;
  readonly #factor: number;
  readonly #random: () => number;
  #current: number;

  constructor(options: BackoffOptions) {
    if (!(options.maxIntervalMs > 0)) {
      throw new RangeError(`maxIntervalMs must be > 0, got ${options.maxIntervalMs}`);
    }
    this.#max = options.maxIntervalMs;
    this.#multiplier = options.multiplier ?? 2;
    this.#factor = options.randomizationFactor ?? 0.5;
    this.#random = options.random ?? Math.random;
    this.#current = Math.min(options.initialIntervalMs ?? DEFAULT_INITIAL_INTERVAL_MS, this.#max);
  }

  /** Milliseconds to wait before the next tick. */
  next(): number {
    const delta = this.#factor * this.#current;
    const low = this.#current - delta;
    const wait = low + this.#random() * (2 * delta);
    this.#current = this.#current >= this.#max / this.#multiplier
      ? this.#max
      : this.#current * this.#multiplier;
    return wait;
  }
}

/** A running ticker; `stop()` clears its timer and no tick starts afterwards. */
export interface Ticker {
  stop(): void;
  readonly stopped: boolean;
}

/**
 * Runs `onTick` at once, then after each wait of a {@link BackoffSchedule}, on the timers of
 * `clock` (the system's by default). The next wait starts when the previous tick's promise
 * settles, so ticks never overlap.
 *
 * @example
 * ```ts
 * const t = startBackoffTicker({ maxIntervalMs: 10_000 }, () => console.log("tick"));
 * t.stop();
 * ```
 */
export function startBackoffTicker(
  options: BackoffOptions & { onError?: (error: unknown) => void; clock?: Clock },
  onTick: () => void | Promise<void>,
): Ticker {
  const schedule = new BackoffSchedule(options);
  const clock = options.clock ?? systemClock;
  let timer: unknown;
  let stopped = false;
  const run = async () => {
    timer = undefined;
    if (stopped) return;
    try {
      await onTick();
    } catch (error) {
      options.onError?.(error);
    }
    if (!stopped) timer = clock.setTimeout(run, schedule.next());
  };
  timer = clock.setTimeout(run, 0);
  return {
    stop() {
      stopped = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
    },
    get stopped() {
      return stopped;
    },
  };
}
