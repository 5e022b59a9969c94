/** DHT rendezvous discovery (Go EdgeVPN `pkg/discovery/dht.go`): provide and find the OTP key. */
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import type { NetworkConfig } from "../config/network.ts";
import { rendezvousAt } from "../crypto/derive.ts";
import { type Clock, systemClock } from "../util/clock.ts";
import { errorMessage } from "../util/errors.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { Ring } from "../util/ring.ts";
import { startBackoffTicker, type Ticker } from "../util/ticker.ts";
import { timeoutSignal } from "./abort.ts";

/** Multicodec `raw`. */
const RAW_CODEC = 0x55;

/** Timeouts and limits of one round, as Go's. */
export const RENDEZVOUS_LIMITS = {
  provideTimeoutMs: 60_000,
  findTimeoutMs: 120_000,
  maxProviders: 100,
  roundTimeoutMs: 3_600_000,
} as const;

/** A provider found in the DHT. */
export interface FoundPeer {
  id: string;
  addrs: string[];
}

/** What rendezvous discovery needs from the host. */
export interface RendezvousComponents {
  selfId: string;
  provide(cid: CID, signal: AbortSignal): Promise<void>;
  findProviders(cid: CID, signal: AbortSignal): AsyncIterable<FoundPeer>;
  isConnected(peerId: string): boolean;
  dial(peer: FoundPeer, signal: AbortSignal): Promise<void>;
  /** Runs before each round (Go dials the bootstrap peers here). */
  beforeRound?(signal: AbortSignal): Promise<void>;
  /** Told about every provider it dials successfully. */
  onPeer?(peer: FoundPeer): void;
  clock?: Clock;
  logger?: Logger;
}

/**
 * The DHT key of a rendezvous string: CIDv1, codec raw, sha2-256 of its UTF-8 bytes.
 *
 * @example
 * ```ts
 * (await rendezvousCid("abc")).toString(); // "bafkrei…"
 * ```
 */
export async function rendezvousCid(rendezvous: string): Promise<CID> {
  return CID.createV1(RAW_CODEC, await sha256.digest(new TextEncoder().encode(rendezvous)));
}

/**
 * Runs rendezvous rounds on Go's backoff ticker (at once, then 5 s doubling up to
 * `intervalMs`, ±50 %). Each round announces and searches the current rendezvous and the
 * previous one (a ring of two), and dials the providers it finds.
 *
 * @example
 * ```ts
 * const d = new RendezvousDiscovery(network, 720_000, components);
 * d.start();
 * await d.stop();
 * ```
 */
export class RendezvousDiscovery {
  readonly #network: NetworkConfig;
  readonly #intervalMs: number;
  readonly #c: RendezvousComponents;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #ring = new Ring(2);
  #ticker: Ticker | undefined;
  #controller = new AbortController();
  #round: Promise<void> | undefined;

  constructor(network: NetworkConfig, intervalMs: number, components: RendezvousComponents) {
    this.#network = network;
    this.#intervalMs = intervalMs;
    this.#c = components;
    this.#clock = components.clock ?? systemClock;
    this.#log = components.logger ?? silentLogger;
  }

  start(): void {
    if (this.#ticker) return;
    this.#controller = new AbortController();
    this.#ticker = startBackoffTicker({
      maxIntervalMs: this.#intervalMs,
      clock: this.#clock,
      onError: (e) => this.#log.warn("rendezvous round failed", { error: errorMessage(e) }),
    }, () => {
      this.#round = this.runRound();
      return this.#round;
    });
  }

  async stop(): Promise<void> {
    this.#ticker?.stop();
    this.#ticker = undefined;
    this.#controller.abort();
    await this.#round?.catch(() => {});
  }

  /** One round: bootstrap, then announce and search every rendezvous of the ring. */
  async runRound(): Promise<void> {
    const round = timeoutSignal(RENDEZVOUS_LIMITS.roundTimeoutMs, this.#controller.signal);
    try {
      await this.#c.beforeRound?.(round.signal).catch(() => {});
      if (round.signal.aborted) return;
      this.#ring.add(await rendezvousAt(this.#network, this.#clock.now()));
      await Promise.all(this.#ring.data.map((r) => this.#announceAndFind(r, round.signal)));
    } finally {
      round.clear();
    }
  }

  async #announceAndFind(rendezvous: string, parent: AbortSignal): Promise<void> {
    const cid = await rendezvousCid(rendezvous);
    const provide = (async () => {
      const t = timeoutSignal(RENDEZVOUS_LIMITS.provideTimeoutMs, parent);
      try {
        await this.#c.provide(cid, t.signal);
        this.#log.debug("announced rendezvous", { cid: cid.toString() });
      } catch (e) {
        if (!parent.aborted) {
          this.#log.debug("cannot announce rendezvous", { error: errorMessage(e) });
        }
      } finally {
        t.clear();
      }
    })();
    const find = (async () => {
      const t = timeoutSignal(RENDEZVOUS_LIMITS.findTimeoutMs, parent);
      const dials: Promise<void>[] = [];
      let found = 0;
      try {
        for await (const peer of this.#c.findProviders(cid, t.signal)) {
          if (++found > RENDEZVOUS_LIMITS.maxProviders) break;
          if (peer.id === this.#c.selfId || peer.addrs.length === 0) continue;
          if (this.#c.isConnected(peer.id)) continue;
          dials.push(
            this.#c.dial(peer, t.signal).then(
              () => this.#c.onPeer?.(peer),
              (e) =>
                this.#log.debug("cannot dial provider", { peer: peer.id, error: errorMessage(e) }),
            ),
          );
        }
      } catch (e) {
        if (!parent.aborted) {
          this.#log.debug("cannot search rendezvous", { error: errorMessage(e) });
        }
      } finally {
        await Promise.all(dials);
        t.clear();
      }
    })();
    await Promise.all([provide, find]);
  }
}
