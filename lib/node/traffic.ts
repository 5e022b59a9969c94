/**
 * Bytes moved per peer and per protocol (Go's libp2p bandwidth counter): fed by a libp2p
 * `metrics` component that wraps every negotiated stream, and by the frame-level paths that
 * bypass streams (one-shot sends, message streams read off the connection).
 */
import type { Metrics, Stream } from "@libp2p/interface";
import { muxerOfStream } from "./muxer.ts";
import { asMetrics, countableStream } from "./workarounds.ts";

/**
 * Totals and rates of one meter: bytes and messages (stream writes sent, data frames
 * received; one packet each on `/edgevpn/0.1`), rates in bytes per second.
 */
export interface TrafficStats {
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
  rateIn: number;
  rateOut: number;
}

/** How often rates are re-estimated, and the time constant of their smoothing. */
const RATE_SAMPLE_MS = 1_000;
const RATE_TAU_MS = 2_000;
/** Peers remembered; the least recently active are forgotten beyond it. */
const MAX_PEERS = 4096;

/**
 * One meter: totals, and rates smoothed exponentially (estimated when read, at most once a
 * second, so an idle node does no work).
 *
 * @example
 * ```ts
 * const m = new Meter();
 * m.in(100);
 * m.stats().bytesIn; // 100
 * ```
 */
export class Meter {
  bytesIn = 0;
  bytesOut = 0;
  messagesIn = 0;
  messagesOut = 0;
  #sampledAt: number;
  #sampledIn = 0;
  #sampledOut = 0;
  #rateIn = 0;
  #rateOut = 0;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
    this.#sampledAt = now();
  }

  /** Counts `bytes` received in one message. */
  in(bytes: number): void {
    this.bytesIn += bytes;
    this.messagesIn++;
  }

  /** Counts `bytes` sent in one message. */
  out(bytes: number): void {
    this.bytesOut += bytes;
    this.messagesOut++;
  }

  /** Totals and current rates. */
  stats(): TrafficStats {
    const now = this.#now();
    const elapsed = now - this.#sampledAt;
    if (elapsed >= RATE_SAMPLE_MS) {
      const weight = 1 - Math.exp(-elapsed / RATE_TAU_MS);
      const instantIn = (this.bytesIn - this.#sampledIn) * 1000 / elapsed;
      const instantOut = (this.bytesOut - this.#sampledOut) * 1000 / elapsed;
      this.#rateIn += weight * (instantIn - this.#rateIn);
      this.#rateOut += weight * (instantOut - this.#rateOut);
      this.#sampledAt = now;
      this.#sampledIn = this.bytesIn;
      this.#sampledOut = this.bytesOut;
    }
    return {
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      rateIn: this.#rateIn,
      rateOut: this.#rateOut,
    };
  }
}

/**
 * The node's traffic: a total meter and one per peer and per protocol. Meters are resolved
 * once per stream, so counting a chunk is a few additions.
 *
 * @example
 * ```ts
 * const traffic = new TrafficMeter();
 * traffic.record("12D3KooW…", "/edgevpn/0.1", "in", 1200);
 * traffic.byProtocol().get("/edgevpn/0.1")?.bytesIn; // 1200
 * ```
 */
export class TrafficMeter {
  readonly total: Meter;
  readonly #peers = new Map<string, Meter>();
  readonly #protocols = new Map<string, Meter>();
  readonly #muxerPeers = new WeakMap<object, string>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
    this.total = new Meter(now);
  }

  /** The meters one stream (or one frame-level route) of `peer` on `protocol` counts into. */
  meters(peer: string, protocol: string): [Meter, Meter, Meter] {
    let p = this.#peers.get(peer);
    if (p === undefined) {
      if (this.#peers.size >= MAX_PEERS) this.#peers.delete(this.#peers.keys().next().value!);
      p = new Meter(this.#now);
      this.#peers.set(peer, p);
    }
    let q = this.#protocols.get(protocol);
    if (q === undefined) {
      q = new Meter(this.#now);
      this.#protocols.set(protocol, q);
    }
    return [this.total, p, q];
  }

  /** Names the peer of a connection's muxer, so its streams are counted under that peer. */
  connectionOpened(muxer: object, peer: string): void {
    this.#muxerPeers.set(muxer, peer);
  }

  /** The peer a stream's connection leads to ("unknown" before the connection opened). */
  peerOfStream(stream: object): string {
    const muxer = muxerOfStream(stream);
    return (muxer && this.#muxerPeers.get(muxer)) ?? "unknown";
  }

  /** Counts one message of `bytes` of `peer` on `protocol`. */
  record(peer: string, protocol: string, direction: "in" | "out", bytes: number): void {
    for (const m of this.meters(peer, protocol)) m[direction](bytes);
  }

  /** Stats per peer ID. */
  byPeer(): Map<string, TrafficStats> {
    return new Map([...this.#peers].map(([k, m]) => [k, m.stats()]));
  }

  /** Stats per protocol ID. */
  byProtocol(): Map<string, TrafficStats> {
    return new Map([...this.#protocols].map(([k, m]) => [k, m.stats()]));
  }

  /**
   * A libp2p `metrics` component counting the bytes of every negotiated stream (what
   * `send()` is given, what the muxer delivers to `onData()`); the metric registrations other
   * components make are accepted and ignored.
   */
  libp2pMetrics(): () => Metrics {
    return () => libp2pMetrics(this);
  }
}

const ignored = {
  update() {},
  increment() {},
  decrement() {},
  reset() {},
  observe() {},
  timer: () => () => {},
};

function libp2pMetrics(traffic: TrafficMeter): Metrics {
  const register = (_name: string, options?: { calculate?: unknown }) =>
    options?.calculate === undefined ? ignored : undefined;
  return asMetrics({
    trackMultiaddrConnection() {},
    trackProtocolStream(stream: Stream) {
      trackStream(traffic, stream);
    },
    registerMetric: register,
    registerMetricGroup: register,
    registerCounter: register,
    registerCounterGroup: register,
    registerHistogram: register,
    registerHistogramGroup: register,
    registerSummary: register,
    registerSummaryGroup: register,
    traceFunction: (_name: string, fn: unknown) => fn,
    createTrace: () => undefined,
  });
}

function trackStream(traffic: TrafficMeter, stream: Stream): void {
  const s = countableStream(stream);
  if (s === undefined) return;
  const send = s.send;
  const onData = s.onData;
  const [total, p, q] = traffic.meters(traffic.peerOfStream(stream), stream.protocol || "unknown");
  s.send = function (data) {
    const n = data.byteLength;
    total.out(n);
    p.out(n);
    q.out(n);
    return send.call(this, data);
  };
  s.onData = function (data) {
    const n = data.byteLength;
    total.in(n);
    p.in(n);
    q.in(n);
    return onData.call(this, data);
  };
}
