/** Per-key token buckets and log-line budgets, with bounded memory whatever the number of keys. */

/** Rate and burst of one token bucket. */
export interface BucketRate {
  /** Tokens added per second. */
  perSecond: number;
  /** Most tokens a bucket holds (what an idle key may spend at once). */
  burst: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Token buckets by key (a peer ID): `take(key, n)` spends `n` tokens when the key has them.
 * Keys beyond `maxKeys` push out the least recently used one, which then starts again with a
 * full bucket: the bound is on memory, not a way around the limit (an evicted key was idle
 * longest).
 *
 * @example
 * ```ts
 * const limits = new KeyedRateLimiter({ perSecond: 10, burst: 20 });
 * limits.take("peerA"); // true, until peerA spent 20 tokens faster than 10 per second
 * ```
 */
export class KeyedRateLimiter {
  readonly rate: BucketRate;
  readonly #now: () => number;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(rate: BucketRate, options: { now?: () => number; maxKeys?: number } = {}) {
    this.rate = rate;
    this.#now = options.now ?? Date.now;
    this.#maxKeys = options.maxKeys ?? 4096;
  }

  /** Spends `n` tokens of `key` and returns true, or returns false and spends nothing. */
  take(key: string, n = 1): boolean {
    const now = this.#now();
    let b = this.#buckets.get(key);
    if (b === undefined) {
      if (this.#buckets.size >= this.#maxKeys) {
        this.#buckets.delete(this.#buckets.keys().next().value!);
      }
      b = { tokens: this.rate.burst, at: now };
    } else {
      this.#buckets.delete(key);
      b.tokens = Math.min(
        this.rate.burst,
        b.tokens + Math.max(0, now - b.at) * this.rate.perSecond / 1000,
      );
      b.at = now;
    }
    this.#buckets.set(key, b);
    if (b.tokens < n) return false;
    b.tokens -= n;
    return true;
  }

  /** Forgets every key. */
  clear(): void {
    this.#buckets.clear();
  }
}

/**
 * How many lines each key may log per window; `allow` says whether one more may be written
 * and, once the budget is spent, counts what was held back so the next allowed line can say
 * how many were suppressed.
 *
 * @example
 * ```ts ignore
 * const budget = new LogBudget(10, 60_000);
 * const { allowed, suppressed } = budget.allow("peerA");
 * if (allowed) log.warn("bad entries", { peer: "peerA", suppressed });
 * ```
 */
export class LogBudget {
  readonly #perWindow: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #maxKeys: number;
  readonly #windows = new Map<string, { start: number; used: number; held: number }>();

  constructor(
    perWindow: number,
    windowMs: number,
    options: { now?: () => number; maxKeys?: number } = {},
  ) {
    this.#perWindow = perWindow;
    this.#windowMs = windowMs;
    this.#now = options.now ?? Date.now;
    this.#maxKeys = options.maxKeys ?? 4096;
  }

  /**
   * Whether `key` may log now; `suppressed` is how many lines were held back since the last
   * one allowed (reported once, with the next allowed line).
   */
  allow(key: string): { allowed: boolean; suppressed: number } {
    const now = this.#now();
    let w = this.#windows.get(key);
    if (w === undefined) {
      if (this.#windows.size >= this.#maxKeys) {
        this.#windows.delete(this.#windows.keys().next().value!);
      }
      w = { start: now, used: 0, held: 0 };
      this.#windows.set(key, w);
    } else if (now - w.start >= this.#windowMs) {
      w.start = now;
      w.used = 0;
    }
    if (w.used >= this.#perWindow) {
      w.held++;
      return { allowed: false, suppressed: 0 };
    }
    w.used++;
    const suppressed = w.held;
    w.held = 0;
    return { allowed: true, suppressed };
  }
}
