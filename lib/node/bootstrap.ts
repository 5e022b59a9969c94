/** Keeps the node connected to its bootstrap peers, retrying unreachable ones with backoff. */
import { type Clock, systemClock } from "../util/clock.ts";
import { errorMessage } from "../util/errors.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { timeoutSignal } from "./abort.ts";

/** What the dialer needs from the host. */
export interface BootstrapComponents {
  dial(maddr: string, signal: AbortSignal): Promise<void>;
  isConnected(peerId: string): boolean;
  clock?: Clock;
  logger?: Logger;
}

/** Retry timing of unreachable bootstrap peers. */
export const BOOTSTRAP_RETRY = { firstMs: 5_000, maxMs: 600_000, dialTimeoutMs: 30_000 } as const;

interface PeerState {
  maddr: string;
  peerId: string;
  failures: number;
  nextAttemptMs: number;
  dialing: boolean;
}

/**
 * Dials the bootstrap peers that are not connected. A peer that fails is retried after 5 s,
 * then twice as long each time (up to 10 min); its first failure is logged as a warning, the
 * following ones at debug level, and its recovery once.
 *
 * @example
 * ```ts
 * const b = new BootstrapDialer(["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…"], components);
 * b.start();
 * await b.dialAll();
 * b.stop();
 * ```
 */
export class BootstrapDialer {
  readonly #peers: PeerState[] = [];
  readonly #c: BootstrapComponents;
  readonly #clock: Clock;
  readonly #log: Logger;
  #controller = new AbortController();
  #timer: unknown;
  #running = false;
  readonly #inflight = new Set<Promise<void>>();

  constructor(maddrs: readonly string[], components: BootstrapComponents) {
    this.#c = components;
    this.#clock = components.clock ?? systemClock;
    this.#log = components.logger ?? silentLogger;
    for (const maddr of maddrs) {
      const peerId = maddr.match(/\/p2p\/([^/]+)\/?$/)?.[1];
      if (!peerId) {
        this.#log.warn("ignoring bootstrap peer without /p2p/<id>", { maddr });
        continue;
      }
      this.#peers.push({ maddr, peerId, failures: 0, nextAttemptMs: 0, dialing: false });
    }
  }

  /** Peer IDs of the configured bootstrap peers. */
  get peerIds(): string[] {
    return this.#peers.map((p) => p.peerId);
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#controller = new AbortController();
    void this.dialAll();
  }

  /** Stops retrying and aborts dials in progress. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#controller.abort();
    await Promise.allSettled([...this.#inflight]);
  }

  /** Notes that a peer disconnected: a bootstrap peer is redialled after its backoff. */
  peerDisconnected(peerId: string): void {
    const p = this.#peers.find((p) => p.peerId === peerId);
    if (!this.#running || !p) return;
    // A short pause, so a peer that drops us at once is not redialled in a tight loop.
    p.nextAttemptMs = Math.max(p.nextAttemptMs, this.#clock.now() + 1000);
    this.#schedule();
  }

  /**
   * Dials every bootstrap peer that is not connected and not waiting for a retry; resolves
   * when those attempts have settled.
   */
  async dialAll(): Promise<void> {
    if (!this.#running) return;
    const now = this.#clock.now();
    const attempts: Promise<void>[] = [];
    for (const p of this.#peers) {
      if (p.dialing || p.nextAttemptMs > now || this.#c.isConnected(p.peerId)) continue;
      const attempt = this.#dial(p);
      this.#inflight.add(attempt);
      attempts.push(attempt.finally(() => this.#inflight.delete(attempt)));
    }
    await Promise.all(attempts);
    this.#schedule();
  }

  async #dial(p: PeerState): Promise<void> {
    p.dialing = true;
    const t = timeoutSignal(BOOTSTRAP_RETRY.dialTimeoutMs, this.#controller.signal);
    try {
      await this.#c.dial(p.maddr, t.signal);
      if (p.failures > 0) {
        this.#log.info("bootstrap peer reachable again", { peer: p.peerId });
      }
      p.failures = 0;
      // Checked again after a pause if the connection does not last.
      p.nextAttemptMs = this.#clock.now() + BOOTSTRAP_RETRY.firstMs;
    } catch (e) {
      if (!this.#running) return;
      p.failures++;
      const wait = Math.min(
        BOOTSTRAP_RETRY.firstMs * 2 ** (p.failures - 1),
        BOOTSTRAP_RETRY.maxMs,
      );
      p.nextAttemptMs = this.#clock.now() + wait * (0.75 + Math.random() / 2);
      const fields = { peer: p.maddr, error: errorMessage(e), retryInMs: Math.round(wait) };
      if (p.failures === 1) {
        this.#log.warn("bootstrap peer unreachable; retrying with backoff", fields);
      } else this.#log.debug("bootstrap peer still unreachable", fields);
    } finally {
      t.clear();
      p.dialing = false;
    }
  }

  #schedule(): void {
    if (!this.#running) return;
    let next = Infinity;
    for (const p of this.#peers) {
      if (!p.dialing && !this.#c.isConnected(p.peerId)) next = Math.min(next, p.nextAttemptMs);
    }
    if (next === Infinity) return;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      void this.dialAll();
    }, Math.max(0, next - this.#clock.now()));
  }
}
