/** Our circuit relay v2 server (hop protocol): members only, per-peer limits, bounded memory. */
import type { Connection, PeerId, Stream } from "@libp2p/interface";
import { peerIdFromMultihash } from "@libp2p/peer-id";
import { pbStream } from "@libp2p/utils";
import * as Digest from "multiformats/hashes/digest";
import { errorMessage } from "../util/errors.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { clampTimerMs } from "../util/timer.ts";
import { timeoutSignal } from "./abort.ts";
import {
  HOP_PROTOCOL,
  HopCodec,
  type HopMessage,
  HopType,
  MAX_RELAY_MESSAGE,
  type RelayLimit,
  RelayStatus,
  STOP_PROTOCOL,
  StopCodec,
  StopType,
} from "./relay_pb.ts";

/**
 * Limits of the relay service. Go EdgeVPN's defaults: 64 circuits per peer, 1 h reservations,
 * 30 min and 1 GiB (per direction) per relayed connection.
 */
export interface RelayServiceOptions {
  /** Reservations held at once (go-libp2p: 128). */
  maxReservations: number;
  /** How long a reservation lasts unless refreshed (Go `--relay-service-reservation-ttl`). */
  reservationTtlMs: number;
  /** Open circuits per peer, as source or destination (Go `--relay-service-max-circuits`). */
  maxCircuitsPerPeer: number;
  /** Open circuits in total. */
  maxCircuits: number;
  /** Lifetime of one relayed connection; 0: none (Go `--relay-service-max-duration`). */
  maxDurationMs: number;
  /** Bytes per direction of one relayed connection; 0: none (Go `--relay-service-max-data`). */
  maxDataBytes: number;
  /**
   * Bytes per second a peer may push through the relay, all its circuits together; 0: no
   * limit. A peer over its rate is paused (backpressure), not cut.
   */
  maxRateBytes: number;
  /** Who may reserve, and be source or destination of a circuit. */
  admits: (peerId: string) => boolean;
}

/** Defaults of {@link RelayServiceOptions} (Go EdgeVPN's, plus our rate and totals). */
export const RELAY_DEFAULTS = {
  maxReservations: 128,
  reservationTtlMs: 3_600_000,
  maxCircuitsPerPeer: 64,
  maxCircuits: 1024,
  maxDurationMs: 1_800_000,
  maxDataBytes: 1 << 30,
  maxRateBytes: 0,
} as const;

/** Bytes and circuits of one peer through this relay. */
export interface RelayPeerStats {
  /** Bytes the peer sent into its circuits. */
  bytesIn: number;
  /** Bytes the relay delivered to the peer. */
  bytesOut: number;
  /** Circuits open now with this peer at one end. */
  circuits: number;
}

/**
 * What the relay did: reservations and circuits granted or refused (by reason), bytes relayed.
 *
 * @example
 * ```ts ignore
 * relay.counters().circuits.refusedNotMember; // 0
 * ```
 */
export interface RelayCounters {
  reservations: { granted: number; refusedNotMember: number; refusedFull: number; active: number };
  circuits: {
    opened: number;
    active: number;
    refusedNotMember: number;
    refusedNoReservation: number;
    refusedLimit: number;
    failed: number;
    /** Circuits ended by the data limit. */
    endedData: number;
    /** Circuits ended by the duration limit. */
    endedDuration: number;
    /** Times a sender was paused for going over its rate. */
    rateLimited: number;
  };
  malformed: number;
  bytesRelayed: number;
}

/** The parts of libp2p the relay uses. */
export interface RelayHost {
  handle(
    protocol: string,
    handler: (stream: Stream, connection: Connection) => void,
    options: { runOnLimitedConnection: boolean; maxInboundStreams: number },
  ): Promise<void>;
  unhandle(protocol: string): Promise<void>;
  getConnections(peer: PeerId): Connection[];
  getMultiaddrs(): { bytes: Uint8Array; toString(): string }[];
}

const HOP_TIMEOUT_MS = 30_000;
const MAX_PEER_STATS = 4096;

interface Reservation {
  expiresAt: number;
}

/** A token bucket of bytes per second with one second of burst. */
class RateBucket {
  #tokens: number;
  #at: number;
  constructor(readonly rate: number, now: number) {
    this.#tokens = rate;
    this.#at = now;
  }

  /** Takes `n` bytes; returns how long the sender should pause, in ms. */
  take(n: number, now: number): number {
    this.#tokens = Math.min(this.rate, this.#tokens + (now - this.#at) * this.rate / 1000);
    this.#at = now;
    this.#tokens -= n;
    return this.#tokens >= 0 ? 0 : Math.ceil(-this.#tokens * 1000 / this.rate);
  }
}

/**
 * The hop side of circuit relay v2, in place of `@libp2p/circuit-relay-v2`'s server, whose
 * 4.2.x limits count both directions together, send the duration in milliseconds where the
 * spec says seconds, have no per-peer circuit limit, and keep about two bytes of memory per
 * relayed byte for the connection's lifetime. Here every byte is forwarded as received, a
 * slow reader pauses its writer (memory stays at a few yamux windows per circuit), limits
 * are per direction and sent in seconds, and per-peer counters show what the relay carries.
 *
 * @example
 * ```ts ignore
 * const relay = new RelayService(libp2p, { ...RELAY_DEFAULTS, admits: (p) => members.has(p) });
 * await relay.start();
 * relay.peerStats().get(peerId)?.bytesIn;
 * ```
 */
export class RelayService {
  readonly #host: RelayHost;
  readonly #options: RelayServiceOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #reservations = new Map<string, Reservation>();
  readonly #stats = new Map<string, RelayPeerStats>();
  readonly #buckets = new Map<string, RateBucket>();
  readonly #circuits = new Set<{ abort(e: Error): void }>();
  readonly #counters: RelayCounters = {
    reservations: { granted: 0, refusedNotMember: 0, refusedFull: 0, active: 0 },
    circuits: {
      opened: 0,
      active: 0,
      refusedNotMember: 0,
      refusedNoReservation: 0,
      refusedLimit: 0,
      failed: 0,
      endedData: 0,
      endedDuration: 0,
      rateLimited: 0,
    },
    malformed: 0,
    bytesRelayed: 0,
  };
  #started = false;

  constructor(
    host: RelayHost,
    options: RelayServiceOptions,
    logger: Logger = silentLogger,
    now: () => number = Date.now,
  ) {
    this.#host = host;
    this.#options = options;
    this.#log = logger;
    this.#now = now;
  }

  /** Serves the hop protocol. */
  async start(): Promise<void> {
    if (this.#started) return;
    await this.#host.handle(HOP_PROTOCOL, (stream, connection) => {
      this.#onHop(stream, connection).catch((e) => {
        this.#log.debug("hop stream failed", { error: errorMessage(e) });
        stream.abort(e instanceof Error ? e : new Error(String(e)));
      });
    }, { runOnLimitedConnection: false, maxInboundStreams: 512 });
    this.#started = true;
  }

  /** Stops serving, ends every circuit and forgets reservations. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    await this.#host.unhandle(HOP_PROTOCOL);
    for (const c of this.#circuits) c.abort(new Error("relay stopping"));
    this.#circuits.clear();
    this.#reservations.clear();
  }

  /** A snapshot of the counters. */
  counters(): RelayCounters {
    this.#expire();
    const c = this.#counters;
    return {
      reservations: { ...c.reservations, active: this.#reservations.size },
      circuits: { ...c.circuits, active: this.#circuits.size },
      malformed: c.malformed,
      bytesRelayed: c.bytesRelayed,
    };
  }

  /** Bytes and circuits per peer (peers that used the relay since it started). */
  peerStats(): Map<string, RelayPeerStats> {
    return new Map([...this.#stats].map(([k, v]) => [k, { ...v }]));
  }

  /** Peers holding a reservation now. */
  reservedPeers(): string[] {
    this.#expire();
    return [...this.#reservations.keys()];
  }

  async #onHop(stream: Stream, connection: Connection): Promise<void> {
    const t = timeoutSignal(HOP_TIMEOUT_MS);
    const pb = pbStream(stream, { maxDataLength: MAX_RELAY_MESSAGE }).pb(HopCodec);
    let request: HopMessage;
    try {
      request = await pb.read({ signal: t.signal });
    } catch (e) {
      t.clear();
      this.#counters.malformed++;
      throw e;
    }
    const reply = (m: HopMessage) => pb.write(m, { signal: t.signal });
    const status = (code: number) => reply({ type: HopType.STATUS, status: code });
    try {
      if (connection.remoteAddr.getComponents().some((c) => c.name === "p2p-circuit")) {
        await status(RelayStatus.PERMISSION_DENIED);
        await stream.close({ signal: t.signal });
        return;
      }
      if (request.type === HopType.RESERVE) {
        await this.#reserve(connection.remotePeer.toString(), reply, status);
        await stream.close({ signal: t.signal });
      } else if (request.type === HopType.CONNECT) {
        const piped = await this.#connect(connection, request, pb, reply, status, t.signal);
        if (!piped) await stream.close({ signal: t.signal });
      } else {
        this.#counters.malformed++;
        await status(RelayStatus.UNEXPECTED_MESSAGE);
        await stream.close({ signal: t.signal });
      }
    } finally {
      t.clear();
    }
  }

  async #reserve(
    peer: string,
    reply: (m: HopMessage) => Promise<void>,
    status: (code: number) => Promise<void>,
  ): Promise<void> {
    if (!this.#options.admits(peer)) {
      this.#counters.reservations.refusedNotMember++;
      this.#log.debug("reservation refused: not a member", { peer });
      return status(RelayStatus.PERMISSION_DENIED);
    }
    this.#expire();
    if (!this.#reservations.has(peer) && this.#reservations.size >= this.#options.maxReservations) {
      this.#counters.reservations.refusedFull++;
      return status(RelayStatus.RESERVATION_REFUSED);
    }
    const expiresAt = this.#now() + this.#options.reservationTtlMs;
    this.#reservations.set(peer, { expiresAt });
    this.#counters.reservations.granted++;
    const addrs = this.#host.getMultiaddrs()
      .filter((m) => !m.toString().includes("/p2p-circuit"))
      .map((m) => m.bytes);
    await reply({
      type: HopType.STATUS,
      status: RelayStatus.OK,
      reservation: { expire: BigInt(Math.floor(expiresAt / 1000)), addrs },
      limit: this.#limit(),
    });
    this.#log.debug("reservation granted", { peer });
  }

  // Returns true when the hop stream became one half of a circuit.
  async #connect(
    connection: Connection,
    request: HopMessage,
    pb: { unwrap(): { unwrap(): Stream } },
    reply: (m: HopMessage) => Promise<void>,
    status: (code: number) => Promise<void>,
    signal: AbortSignal,
  ): Promise<boolean> {
    const src = connection.remotePeer.toString();
    let dstId: PeerId;
    try {
      if (request.peer === undefined) throw new Error("no peer");
      dstId = peerIdFromMultihash(Digest.decode(request.peer.id));
    } catch {
      this.#counters.malformed++;
      await status(RelayStatus.MALFORMED_MESSAGE);
      return false;
    }
    const dst = dstId.toString();
    if (!this.#options.admits(src) || !this.#options.admits(dst)) {
      this.#counters.circuits.refusedNotMember++;
      this.#log.debug("circuit refused: not a member", { src, dst });
      await status(RelayStatus.PERMISSION_DENIED);
      return false;
    }
    this.#expire();
    if (!this.#reservations.has(dst)) {
      this.#counters.circuits.refusedNoReservation++;
      await status(RelayStatus.NO_RESERVATION);
      return false;
    }
    const max = this.#options.maxCircuitsPerPeer;
    if (
      this.#circuits.size >= this.#options.maxCircuits ||
      this.#stat(src).circuits >= max || this.#stat(dst).circuits >= max
    ) {
      this.#counters.circuits.refusedLimit++;
      await status(RelayStatus.RESOURCE_LIMIT_EXCEEDED);
      return false;
    }
    const dstConnection = this.#host.getConnections(dstId).find((c) =>
      c.status === "open" && !c.remoteAddr.getComponents().some((x) => x.name === "p2p-circuit")
    );
    if (dstConnection === undefined) {
      this.#counters.circuits.refusedNoReservation++;
      await status(RelayStatus.NO_RESERVATION);
      return false;
    }
    const limit = this.#limit();
    let dstStream: Stream | undefined;
    try {
      const s = await dstConnection.newStream(STOP_PROTOCOL, { signal });
      const stop = pbStream(s, { maxDataLength: MAX_RELAY_MESSAGE }).pb(StopCodec);
      await stop.write({
        type: StopType.CONNECT,
        peer: { id: connection.remotePeer.toMultihash().bytes, addrs: [] },
        limit,
      }, { signal });
      const answer = await stop.read({ signal });
      if (answer.type !== StopType.STATUS || answer.status !== RelayStatus.OK) {
        s.abort(new Error(`destination answered status ${answer.status}`));
      } else {
        dstStream = stop.unwrap().unwrap();
      }
    } catch (e) {
      this.#log.debug("cannot open stop stream", { dst, error: errorMessage(e) });
    }
    if (dstStream === undefined) {
      this.#counters.circuits.failed++;
      await status(RelayStatus.CONNECTION_FAILED);
      return false;
    }
    await reply({ type: HopType.STATUS, status: RelayStatus.OK, limit });
    this.#splice(src, pb.unwrap().unwrap(), dst, dstStream);
    return true;
  }

  #limit(): RelayLimit | undefined {
    const { maxDurationMs, maxDataBytes } = this.#options;
    if (maxDurationMs <= 0 && maxDataBytes <= 0) return undefined;
    return {
      duration: maxDurationMs > 0 ? Math.max(1, Math.round(maxDurationMs / 1000)) : undefined,
      data: maxDataBytes > 0 ? BigInt(maxDataBytes) : undefined,
    };
  }

  // Joins the two streams: bytes go through as they arrive, each side paused while the other
  // cannot take more or its sender is over its rate.
  #splice(src: string, a: Stream, dst: string, b: Stream): void {
    const srcStats = this.#stat(src);
    const dstStats = this.#stat(dst);
    srcStats.circuits++;
    dstStats.circuits++;
    this.#counters.circuits.opened++;
    let ended = false;
    const circuit = {
      abort: (e: Error) => {
        if (ended) return;
        ended = true;
        clearTimeout(timer);
        a.abort(e);
        b.abort(e);
        finish();
      },
    };
    const finish = () => {
      if (!this.#circuits.delete(circuit)) return;
      srcStats.circuits--;
      dstStats.circuits--;
    };
    this.#circuits.add(circuit);
    const duration = this.#options.maxDurationMs;
    const timer = duration > 0
      ? setTimeout(() => {
        this.#counters.circuits.endedDuration++;
        circuit.abort(new Error(`relayed connection duration limit of ${duration} ms reached`));
      }, clampTimerMs(duration))
      : undefined;
    const forward = (
      from: Stream,
      to: Stream,
      sender: string,
      from_: RelayPeerStats,
      to_: RelayPeerStats,
    ) => {
      let remaining = this.#options.maxDataBytes > 0 ? this.#options.maxDataBytes : Infinity;
      let holds = 0;
      const hold = () => {
        if (holds++ === 0) from.pause();
      };
      const release = () => {
        if (--holds === 0 && !ended) from.resume();
      };
      from.addEventListener("message", (e) => {
        if (ended) return;
        const n = e.data.byteLength;
        remaining -= n;
        if (remaining < 0) {
          this.#counters.circuits.endedData++;
          circuit.abort(new Error("relayed connection data limit reached"));
          return;
        }
        from_.bytesIn += n;
        to_.bytesOut += n;
        this.#counters.bytesRelayed += n;
        let accepted: boolean;
        try {
          accepted = to.send(e.data);
        } catch (err) {
          circuit.abort(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        if (!accepted) {
          hold();
          to.onDrain().then(release, () => {});
        }
        const wait = this.#bucket(sender)?.take(n, this.#now()) ?? 0;
        if (wait > 0) {
          this.#counters.circuits.rateLimited++;
          hold();
          setTimeout(release, clampTimerMs(wait));
        }
      });
      from.addEventListener("remoteCloseWrite", () => {
        to.close().catch(() => {});
      });
      from.addEventListener("close", (e) => {
        if (e.error !== undefined) circuit.abort(e.error);
        else if (a.status !== "open" && b.status !== "open") {
          ended = true;
          clearTimeout(timer);
          finish();
        }
      });
    };
    forward(a, b, src, srcStats, dstStats);
    forward(b, a, dst, dstStats, srcStats);
    this.#log.debug("circuit open", { src, dst });
  }

  #bucket(peer: string): RateBucket | undefined {
    const rate = this.#options.maxRateBytes;
    if (rate <= 0) return undefined;
    let bucket = this.#buckets.get(peer);
    if (bucket === undefined) {
      if (this.#buckets.size >= MAX_PEER_STATS) this.#buckets.clear();
      bucket = new RateBucket(rate, this.#now());
      this.#buckets.set(peer, bucket);
    }
    return bucket;
  }

  #stat(peer: string): RelayPeerStats {
    let s = this.#stats.get(peer);
    if (s === undefined) {
      if (this.#stats.size >= MAX_PEER_STATS) {
        for (const [k, v] of this.#stats) {
          if (v.circuits === 0) {
            this.#stats.delete(k);
            break;
          }
        }
      }
      s = { bytesIn: 0, bytesOut: 0, circuits: 0 };
      this.#stats.set(peer, s);
    }
    return s;
  }

  #expire(): void {
    const now = this.#now();
    for (const [peer, r] of this.#reservations) {
      if (r.expiresAt <= now) this.#reservations.delete(peer);
    }
  }
}
