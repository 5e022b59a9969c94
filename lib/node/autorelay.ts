/** The client side of relaying: which relays we hold a slot on, and the addresses they give us. */
import type { Connection, Libp2p, PeerId } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { pbStream } from "@libp2p/utils";
import { type Multiaddr, multiaddr } from "@multiformats/multiaddr";
import { errorMessage } from "../util/errors.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { clampTimerMs } from "../util/timer.ts";
import { timeoutSignal } from "./abort.ts";
import type { AddressBook } from "./workarounds.ts";
import {
  HOP_PROTOCOL,
  HopCodec,
  HopType,
  MAX_RELAY_MESSAGE,
  type RelayLimit,
  RelayStatus,
} from "./relay_pb.ts";

/** Options of {@link AutoRelay}. */
export interface AutoRelayOptions {
  /** Relays to always reserve on (Go `--autorelay-static-peer`), multiaddrs with `/p2p/`. */
  staticRelays: readonly string[];
  /** Use only the static relays (Go `--autorelay-static-only`). */
  staticOnly: boolean;
  /** Relays found among connected members that we hold slots on, besides static ones. */
  desiredRelays: number;
  /** Members may serve as relays found by discovery. */
  isMember: (peerId: string) => boolean;
  /** Whether this node needs relays now (it has no address others can dial). */
  needsRelay: () => boolean;
  /** How often relays are checked, lost ones replaced. */
  intervalMs: number;
}

/** Defaults of {@link AutoRelayOptions}. */
export const AUTORELAY_DEFAULTS = { desiredRelays: 2, intervalMs: 10_000 } as const;

/** One relay slot we hold. */
export interface RelaySlot {
  relay: string;
  /** Our addresses through it (`…/p2p/<relay>/p2p-circuit`). */
  addrs: string[];
  expiresAt: number;
  /** The relay's limits for connections through it (duration in seconds). */
  limit?: { durationSeconds?: number; dataBytes?: number };
  static: boolean;
}

/** Counters of the reservation client. */
export interface AutoRelayCounters {
  attempts: number;
  granted: number;
  refused: number;
  failed: number;
  lost: number;
}

const RESERVE_TIMEOUT_MS = 10_000;
const FIRST_RETRY_MS = 2_000;
const MAX_RETRY_MS = 60_000;

interface Held {
  slot: RelaySlot;
  connectionId: string;
  addrs: Multiaddr[];
  timer: ReturnType<typeof setTimeout>;
}

/**
 * Keeps reservations on relays while this node cannot be dialled: on every static relay,
 * plus up to `desiredRelays` member peers that we could dial ourselves and that speak the
 * hop protocol. Announces the circuit addresses, refreshes slots before they expire,
 * replaces relays whose connection drops (with back-off), and drops every slot once the
 * node has an address of its own.
 *
 * @example
 * ```ts ignore
 * const autorelay = new AutoRelay(libp2p, addressBook, { ...AUTORELAY_DEFAULTS, staticRelays: [relay], staticOnly: false, isMember, needsRelay: () => true });
 * autorelay.start();
 * autorelay.slots(); // [{ relay, addrs: ["/ip4/…/p2p/…/p2p-circuit"], … }]
 * ```
 */
export class AutoRelay {
  readonly #libp2p: Libp2p;
  readonly #book: AddressBook;
  readonly #options: AutoRelayOptions;
  readonly #log: Logger;
  readonly #held = new Map<string, Held>();
  readonly #pending = new Set<string>();
  readonly #retry = new Map<string, { at: number; wait: number }>();
  readonly #static: { peer: string; addr: Multiaddr }[] = [];
  readonly #counters: AutoRelayCounters = {
    attempts: 0,
    granted: 0,
    refused: 0,
    failed: 0,
    lost: 0,
  };
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running = false;
  #lifetime = new AbortController();

  constructor(libp2p: Libp2p, book: AddressBook, options: AutoRelayOptions, logger = silentLogger) {
    this.#libp2p = libp2p;
    this.#book = book;
    this.#options = options;
    this.#log = logger;
    for (const text of options.staticRelays) {
      const addr = multiaddr(text);
      const peer = addr.getComponents().findLast((c) => c.name === "p2p")?.value;
      if (peer !== undefined && peer !== libp2p.peerId.toString()) {
        this.#static.push({ peer, addr });
      }
    }
  }

  /** Starts reserving (the first check runs at once). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#lifetime = new AbortController();
    this.#libp2p.addEventListener("connection:close", this.#onClose);
    this.#libp2p.addEventListener("peer:identify", this.#onIdentify);
    this.#schedule(0);
  }

  /** Stops, releasing every slot's addresses and timers. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    this.#lifetime.abort();
    clearTimeout(this.#timer);
    this.#libp2p.removeEventListener("connection:close", this.#onClose);
    this.#libp2p.removeEventListener("peer:identify", this.#onIdentify);
    for (const relay of [...this.#held.keys()]) this.#release(relay);
  }

  /** The slots held now. */
  slots(): RelaySlot[] {
    return [...this.#held.values()].map((h) => ({ ...h.slot, addrs: [...h.slot.addrs] }));
  }

  /** A snapshot of the counters. */
  counters(): AutoRelayCounters {
    return { ...this.#counters };
  }

  /** Checks the relays now (after a connection or reachability change). */
  poke(): void {
    if (this.#running) this.#schedule(0);
  }

  #schedule(ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#maintain().catch((e) =>
        this.#log.debug("relay check failed", { error: errorMessage(e) })
      )
        .finally(() => {
          if (this.#running) this.#schedule(this.#nextCheckMs());
        });
    }, clampTimerMs(ms));
  }

  // The regular interval, or sooner when a relay's back-off ends before it.
  #nextCheckMs(): number {
    const now = Date.now();
    let next = this.#options.intervalMs;
    for (const r of this.#retry.values()) {
      if (r.at > now) next = Math.min(next, r.at - now);
    }
    return Math.max(next, 500);
  }

  async #maintain(): Promise<void> {
    if (!this.#options.needsRelay()) {
      for (const relay of [...this.#held.keys()]) this.#release(relay);
      return;
    }
    const work: Promise<void>[] = [];
    for (const s of this.#static) {
      if (!this.#held.has(s.peer)) work.push(this.#reserve(s.peer, s.addr, true));
    }
    if (!this.#options.staticOnly) {
      const dynamic = [...this.#held.values()].filter((h) => !h.slot.static).length;
      let wanted = this.#options.desiredRelays - dynamic -
        [...this.#pending].filter((p) => !this.#static.some((s) => s.peer === p)).length;
      for (const peer of await this.#candidates()) {
        if (wanted <= 0) break;
        wanted--;
        work.push(this.#reserve(peer.toString(), undefined, false));
      }
    }
    await Promise.all(work);
  }

  // Members we dialled directly (so they can be reached) that speak the hop protocol.
  async #candidates(): Promise<PeerId[]> {
    const out: PeerId[] = [];
    const seen = new Set<string>();
    for (const c of this.#libp2p.getConnections()) {
      const id = c.remotePeer.toString();
      if (seen.has(id) || this.#held.has(id) || this.#pending.has(id)) continue;
      seen.add(id);
      if (c.direction !== "outbound" || c.status !== "open" || isRelayed(c)) continue;
      if (!this.#options.isMember(id) || this.#backingOff(id)) continue;
      try {
        const peer = await this.#libp2p.peerStore.get(c.remotePeer);
        if (peer.protocols.includes(HOP_PROTOCOL)) out.push(c.remotePeer);
      } catch {
        continue;
      }
    }
    return out;
  }

  #backingOff(peer: string): boolean {
    const r = this.#retry.get(peer);
    return r !== undefined && Date.now() < r.at;
  }

  async #reserve(peer: string, addr: Multiaddr | undefined, isStatic: boolean): Promise<void> {
    if (this.#pending.has(peer) || this.#backingOff(peer)) return;
    this.#pending.add(peer);
    this.#counters.attempts++;
    const t = timeoutSignal(RESERVE_TIMEOUT_MS, this.#lifetime.signal);
    try {
      const id = peerIdFromString(peer);
      const connection = this.#directConnection(id) ??
        await this.#libp2p.dial(addr ?? id, { signal: t.signal });
      if (isRelayed(connection)) throw new Error("only a relayed connection to the relay");
      const stream = await connection.newStream(HOP_PROTOCOL, { signal: t.signal });
      const pb = pbStream(stream, { maxDataLength: MAX_RELAY_MESSAGE }).pb(HopCodec);
      await pb.write({ type: HopType.RESERVE }, { signal: t.signal });
      const answer = await pb.read({ signal: t.signal });
      await stream.close({ signal: t.signal }).catch(() => stream.abort(new Error("closed")));
      if (answer.status !== RelayStatus.OK || answer.reservation === undefined) {
        this.#counters.refused++;
        this.#log.info("relay refused a reservation", { relay: peer, status: answer.status });
        this.#backOff(peer);
        return;
      }
      if (!this.#running) return;
      this.#granted(peer, connection, answer.reservation, answer.limit, isStatic);
    } catch (e) {
      this.#counters.failed++;
      this.#log.debug("cannot reserve a relay slot", { relay: peer, error: errorMessage(e) });
      this.#backOff(peer);
    } finally {
      t.clear();
      this.#pending.delete(peer);
    }
  }

  #granted(
    peer: string,
    connection: Connection,
    reservation: { expire?: bigint; addrs: Uint8Array[] },
    limit: RelayLimit | undefined,
    isStatic: boolean,
  ): void {
    this.#retry.delete(peer);
    const previous = this.#held.get(peer);
    if (previous) this.#release(peer);
    const base = new Map<string, Multiaddr>();
    // The address we reached the relay at always counts; its other loopback ones never do.
    const add = (ma: Multiaddr, used = false) => {
      const plain = ma.getComponents().filter((c) => c.name !== "p2p");
      if (plain.some((c) => c.name === "p2p-circuit")) return;
      const ip = plain.find((c) => c.name === "ip4" || c.name === "ip6")?.value;
      if (ip === undefined || (!used && (ip.startsWith("127.") || ip === "::1"))) return;
      const stripped = multiaddr(plain);
      base.set(stripped.toString(), stripped);
    };
    add(connection.remoteAddr, true);
    for (const bytes of reservation.addrs) {
      try {
        add(multiaddr(bytes));
      } catch {
        continue;
      }
    }
    const addrs = [...base.values()].map((m) => m.encapsulate(`/p2p/${peer}/p2p-circuit`));
    const now = Date.now();
    const expiresAt = reservation.expire !== undefined
      ? Number(reservation.expire) * 1000
      : now + 3_600_000;
    const lifetime = Math.max(30_000, expiresAt - now);
    for (const a of addrs) this.#book.confirmObservedAddr(a, { type: "transport", ttl: lifetime });
    // Refresh once three quarters of the slot's lifetime have passed.
    const timer = setTimeout(() => {
      const held = this.#held.get(peer);
      if (held === undefined) return;
      this.#release(peer);
      void this.#reserve(peer, this.#static.find((s) => s.peer === peer)?.addr, isStatic);
    }, clampTimerMs(lifetime * 0.75));
    this.#held.set(peer, {
      slot: {
        relay: peer,
        addrs: addrs.map(String),
        expiresAt,
        limit: limit === undefined ? undefined : {
          durationSeconds: limit.duration,
          dataBytes: limit.data === undefined ? undefined : Number(limit.data),
        },
        static: isStatic,
      },
      connectionId: connection.id,
      addrs,
      timer,
    });
    this.#counters.granted++;
    this.#log.info("holding a relay slot", { relay: peer, addrs: addrs.map(String) });
  }

  #release(peer: string): void {
    const held = this.#held.get(peer);
    if (held === undefined) return;
    this.#held.delete(peer);
    clearTimeout(held.timer);
    for (const a of held.addrs) this.#book.removeObservedAddr(a);
  }

  #backOff(peer: string): void {
    const wait = Math.min((this.#retry.get(peer)?.wait ?? FIRST_RETRY_MS / 2) * 2, MAX_RETRY_MS);
    this.#retry.set(peer, { at: Date.now() + wait, wait });
    if (this.#retry.size > 4096) this.#retry.delete(this.#retry.keys().next().value!);
  }

  #directConnection(peer: PeerId): Connection | undefined {
    return this.#libp2p.getConnections(peer).find((c) => c.status === "open" && !isRelayed(c));
  }

  #onClose = (e: CustomEvent<Connection>): void => {
    const peer = e.detail.remotePeer.toString();
    const held = this.#held.get(peer);
    if (held === undefined || held.connectionId !== e.detail.id) return;
    this.#counters.lost++;
    this.#release(peer);
    this.#log.info("lost a relay slot", { relay: peer });
    this.#schedule(FIRST_RETRY_MS);
  };

  #onIdentify = (e: CustomEvent<{ protocols: string[] }>): void => {
    if (this.#options.staticOnly || !e.detail.protocols.includes(HOP_PROTOCOL)) return;
    const dynamic = [...this.#held.values()].filter((h) => !h.slot.static).length;
    if (dynamic < this.#options.desiredRelays) this.#schedule(0);
  };
}

/** Whether a connection goes through a relay. */
export function isRelayed(c: Connection): boolean {
  return c.remoteAddr.getComponents().some((x) => x.name === "p2p-circuit");
}
