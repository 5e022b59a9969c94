/** Keeps the node connected to its bootstrap peers, retrying unreachable ones with backoff. */
import { type Clock, systemClock } from "../util/clock.ts";
import { errorMessage } from "../util/errors.ts";
import { type Logger, silentLogger } from "../util/logger.ts";

/** What the dialer needs from the host. */
export interface BootstrapComponents {
  /**
   * Connects to `maddr`; calls `transportOpen` once the transport connection is open (the
   * handshakes follow), which tells a peer that does not answer from a machine too busy to
   * finish the handshakes in time.
   */
  dial(maddr: string, signal: AbortSignal, transportOpen?: () => void): Promise<void>;
  isConnected(peerId: string): boolean;
  clock?: Clock;
  logger?: Logger;
}

/**
 * Retry timing of unreachable bootstrap peers. For `fastWindowMs` after the dialer starts and
 * after a peer is lost, the peer is retried every `fastMs` (each attempt cut at
 * `fastDialTimeoutMs`, so that every attempt sends fresh SYNs rather than waiting out the
 * kernel's SYN backoff): a healed partition or a restarted peer is back within seconds. An
 * attempt that timed out after its TCP connection opened (the handshakes did not finish in time,
 * as on a starved machine) gives the next attempt to that peer twice as long, up to
 * `dialTimeoutMs`. Later, failures back off from `firstMs` up to `maxMs`.
 */
export const BOOTSTRAP_RETRY = {
  firstMs: 5_000,
  maxMs: 600_000,
  dialTimeoutMs: 30_000,
  fastMs: 1_000,
  fastDialTimeoutMs: 5_000,
  fastWindowMs: 300_000,
} as const;

interface PeerState {
  maddr: string;
  peerId: string;
  failures: number;
  nextAttemptMs: number;
  dialing: boolean;
  /** Attempts in a row that timed out after their transport connection opened. */
  slowHandshakes: number;
  /** When we last lost this peer, or started without it (fast retries follow for a while). */
  lostAtMs?: number;
}

/**
 * Dials the bootstrap peers that are not connected. A peer that fails is retried after 5 s,
 * then twice as long each time (up to 10 min), except during the 5 minutes after we start or
 * lose a connection to it: then it is retried every second, each attempt cut after 5 s, or twice
 * as long after each attempt that timed out in its handshakes (see {@link BOOTSTRAP_RETRY}).
 * Its first failure is logged as a warning, the following ones at debug level, and its
 * recovery once.
 *
 * @example
 * ```ts ignore
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
      this.#peers.push({
        maddr,
        peerId,
        failures: 0,
        nextAttemptMs: 0,
        dialing: false,
        slowHandshakes: 0,
      });
    }
  }

  /** Peer IDs of the configured bootstrap peers. */
  get peerIds(): string[] {
    return this.#peers.map((p) => p.peerId);
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    // Peers not reached since start are wanted as much as lost ones: a node restarted while
    // the network is partitioned finds the other side within seconds of the heal.
    const now = this.#clock.now();
    for (const p of this.#peers) p.lostAtMs ??= now;
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
    p.lostAtMs = this.#clock.now();
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
    const t = this.#timeoutSignal(this.#dialTimeoutMs(p));
    let transportOpen = false;
    try {
      await this.#c.dial(p.maddr, t.signal, () => transportOpen = true);
      if (p.failures > 0) {
        this.#log.info("bootstrap peer reachable again", { peer: p.peerId });
      }
      p.failures = 0;
      p.slowHandshakes = 0;
      // Checked again after a pause if the connection does not last.
      p.nextAttemptMs = this.#clock.now() + BOOTSTRAP_RETRY.firstMs;
    } catch (e) {
      if (!this.#running) return;
      p.failures++;
      if (transportOpen && t.timedOut()) p.slowHandshakes++;
      const wait = this.#recentlyLost(p) ? BOOTSTRAP_RETRY.fastMs : Math.min(
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

  /** How long the next attempt to `p` may take. */
  #dialTimeoutMs(p: PeerState): number {
    if (!this.#recentlyLost(p)) return BOOTSTRAP_RETRY.dialTimeoutMs;
    return Math.min(
      BOOTSTRAP_RETRY.fastDialTimeoutMs * 2 ** Math.min(p.slowHandshakes, 30),
      BOOTSTRAP_RETRY.dialTimeoutMs,
    );
  }

  /**
   * A signal aborted after `ms` on our clock, or when we stop; `clear()` when done,
   * `timedOut()` tells whether the time ran out.
   */
  #timeoutSignal(
    ms: number,
  ): { signal: AbortSignal; clear: () => void; timedOut: () => boolean } {
    const controller = new AbortController();
    const parent = this.#controller.signal;
    const onStop = () => controller.abort(parent.reason);
    let timedOut = false;
    const timer = this.#clock.setTimeout(() => {
      timedOut = true;
      controller.abort(new DOMException(`timed out after ${ms} ms`, "TimeoutError"));
    }, ms);
    if (parent.aborted) onStop();
    else parent.addEventListener("abort", onStop, { once: true });
    return {
      signal: controller.signal,
      clear: () => {
        this.#clock.clearTimeout(timer);
        parent.removeEventListener("abort", onStop);
      },
      timedOut: () => timedOut,
    };
  }

  #recentlyLost(p: PeerState): boolean {
    return p.lostAtMs !== undefined &&
      this.#clock.now() - p.lostAtMs < BOOTSTRAP_RETRY.fastWindowMs;
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
