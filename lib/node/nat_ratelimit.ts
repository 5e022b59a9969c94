/** Go's AutoNAT service rate limit (`--nat-ratelimit*`): requests per interval, global and per peer. */
import { registrarOf } from "./workarounds.ts";

/**
 * Fixed-window counters: at most `global` requests per interval in total and `perPeer` from
 * one peer (go-libp2p's AutoNAT service: 10 and 10 per 60 s by default).
 *
 * @example
 * ```ts
 * const limiter = new RateLimiter(10, 2, 60_000);
 * limiter.admit("peerA"); // true
 * ```
 */
export class RateLimiter {
  readonly #global: number;
  readonly #perPeer: number;
  readonly #intervalMs: number;
  readonly #now: () => number;
  #windowStart = -Infinity;
  #total = 0;
  readonly #peers = new Map<string, number>();
  #served = 0;
  #refused = 0;

  constructor(global: number, perPeer: number, intervalMs: number, now: () => number = Date.now) {
    this.#global = global;
    this.#perPeer = perPeer;
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  /** Counts one request from `peer`; false when it is over a limit. */
  admit(peer: string): boolean {
    const now = this.#now();
    if (now - this.#windowStart >= this.#intervalMs) {
      this.#windowStart = now;
      this.#total = 0;
      this.#peers.clear();
    }
    const fromPeer = this.#peers.get(peer) ?? 0;
    if (this.#total >= this.#global || fromPeer >= this.#perPeer) {
      this.#refused++;
      return false;
    }
    this.#total++;
    this.#peers.set(peer, fromPeer + 1);
    this.#served++;
    return true;
  }

  /** Requests served and refused so far. */
  counters(): { served: number; refusedRate: number } {
    return { served: this.#served, refusedRate: this.#refused };
  }
}

/**
 * Re-registers `protocol`'s handler behind `limiter`: streams over the limit are reset before
 * the handler sees them. (libp2p 3.3's `use()` middleware runs a handler once per earlier
 * stream, so the handler is wrapped instead.) Returns false when the handler or the registrar
 * is not where expected.
 *
 * @example
 * ```ts ignore
 * await wrapRateLimited(libp2p, "/libp2p/autonat/1.0.0", new RateLimiter(10, 10, 60_000));
 * ```
 */
export async function wrapRateLimited(
  libp2p: unknown,
  protocol: string,
  limiter: RateLimiter,
): Promise<boolean> {
  const r = registrarOf(libp2p);
  if (r === undefined) return false;
  let registered;
  try {
    registered = r.getHandler(protocol);
  } catch {
    return false;
  }
  const { handler, options } = registered;
  await r.handle(protocol, (stream, connection) => {
    if (!limiter.admit(connection.remotePeer.toString())) {
      stream.abort(new Error(`${protocol}: rate limit`));
      return;
    }
    return handler(stream, connection);
  }, { ...options, force: true });
  return true;
}
