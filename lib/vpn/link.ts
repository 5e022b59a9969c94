/** The sending side towards one peer: a fast stream with a bounded queue, or `/edgevpn/0.1`. */
import type { NodeStream } from "../node/stream.ts";
import { errorMessage } from "../util/errors.ts";
import { traceMark, tracing } from "../util/trace.ts";
import type { Logger } from "../util/logger.ts";
import { BatchQueue } from "./batch_queue.ts";
import type { VpnNode } from "./components.ts";
import type { DataPlane } from "./config.ts";
import { peerTraffic, type Traffic, type VpnCounters } from "./counters.ts";
import {
  FAST_GSO_PROTOCOL,
  FAST_PROTOCOL,
  FrameDecoder,
  LEGACY_PROTOCOL,
  MAX_FRAME_PACKET,
} from "./frame.ts";
import { forEachPacket, VIRTIO_NET_HDR_LENGTH } from "./gso.ts";

/** Which protocol a link sends with. */
export type LinkProtocol = "fast-gso" | "fast" | "legacy";

/**
 * A snapshot of a link, for the API.
 *
 * @example
 * ```ts ignore
 * vpn.links().filter((l) => l.protocol === "legacy").map((l) => l.peerId);
 * ```
 */
export interface LinkInfo {
  peerId: string;
  /** `connecting` while the fast stream is being opened, `down` during a back-off. */
  state: "idle" | "connecting" | "open" | "down" | "closed";
  /** The protocol packets go out with; null until one is chosen. */
  protocol: LinkProtocol | null;
  /** Bytes waiting in the fast queue. */
  queuedBytes: number;
  /** `/edgevpn/0.1` streams open now. */
  legacyStreams: number;
}

/** What every link shares: the node, counters, settings and a segmentation buffer. */
export interface LinkContext {
  readonly node: VpnNode;
  readonly counters: VpnCounters;
  readonly log: Logger;
  /** Frames read from the interface carry a virtio header. */
  readonly tunOffload: boolean;
  readonly dataPlane: DataPlane;
  readonly queueBytes: number;
  readonly legacyInflight: number;
  readonly streamTimeoutMs: number;
  readonly fallbackRetryMs: number;
  /** Scratch space for segmenting one super-packet (segments are consumed synchronously). */
  readonly scratch: Uint8Array;
  now(): number;
}

const IDLE = 0;
const CONNECTING = 1;
const FAST_GSO = 2;
const FAST = 3;
const LEGACY = 4;
const DOWN = 5;
const CLOSED = 6;
type Mode =
  | typeof IDLE
  | typeof CONNECTING
  | typeof FAST_GSO
  | typeof FAST
  | typeof LEGACY
  | typeof DOWN
  | typeof CLOSED;

/** A fast stream that dies sooner than this counts as a failure (back-off grows). */
const HEALTHY_STREAM_MS = 5_000;
const MAX_BACKOFF_MS = 10_000;
const FIRST_BACKOFF_MS = 250;
const FAST_PROTOCOLS = [FAST_GSO_PROTOCOL, FAST_PROTOCOL] as const;
const GENERATION_MS = 1_000;

interface Generation {
  controller: AbortController;
  started: number;
  pending: number;
}

/**
 * Everything we send to one peer. With the `auto` data plane the first packet opens a fast
 * stream (`fast-gso` or `fast`, chosen by the peer); packets queue meanwhile. A peer that
 * supports neither gets `/edgevpn/0.1` until `fallbackRetryMs` has passed, then we ask again.
 *
 * {@link send} never blocks and never awaits: frames are copied into the bounded queue (or a
 * legacy stream is started) and the owner calls {@link flush} after each read batch. A peer that
 * stops reading fills its own queue and loses its own packets, nobody else's.
 *
 * @example
 * ```ts ignore
 * const link = new PeerLink(peerId, context);
 * for (const [frame, length] of batch) link.send(frame, length);
 * link.flush();
 * ```
 */
export class PeerLink {
  readonly peerId: string;
  /** Set by the owner while the link waits in its flush list. */
  dirty = false;
  readonly #ctx: LinkContext;
  readonly #queue: BatchQueue;
  readonly #lifetime = new AbortController();
  #mode: Mode;
  #stream: NodeStream | undefined;
  #streamOpenedAt = 0;
  #waitingDrain = false;
  #failures = 0;
  #retryAt = 0;
  #legacyOpen = 0;
  #legacyUntil = 0;
  #generations: Generation[] = [];
  #probing = false;
  #legacySent = false;
  /** A fast stream is being opened on a direct connection to replace a relayed one. */
  #moving = false;

  constructor(peerId: string, context: LinkContext) {
    this.peerId = peerId;
    this.#ctx = context;
    this.#queue = new BatchQueue(context.queueBytes);
    if (context.dataPlane === "legacy") {
      this.#mode = LEGACY;
      this.#legacyUntil = Infinity;
    } else {
      this.#mode = IDLE;
    }
  }

  /**
   * Sends one frame read from the interface (`frame[0, length)`, with its virtio header when
   * the interface has offload). Copies what it keeps; `frame` may be reused at once.
   */
  send(frame: Uint8Array, length: number): void {
    switch (this.#mode) {
      case FAST_GSO:
      case CONNECTING:
        this.#pushGso(frame, length);
        return;
      case FAST:
        this.#pushPlain(frame, length);
        return;
      case LEGACY:
        this.#forEachPacket(frame, length, this.#sendLegacy);
        if (!this.#probing && this.#ctx.now() >= this.#legacyUntil) this.#probe();
        return;
      case IDLE:
        this.#connect();
        this.#pushGso(frame, length);
        return;
      case DOWN:
        if (this.#ctx.now() < this.#retryAt) {
          this.#ctx.counters.dropped.linkDown++;
          return;
        }
        this.#connect();
        this.#pushGso(frame, length);
        return;
      default:
        this.#ctx.counters.dropped.linkDown++;
    }
  }

  /**
   * Writes queued batches to the stream until it needs to drain (then resumes on drain), and
   * sends them at once: the caller has nothing more for this peer in this task, so a lone
   * packet does not wait for the end of it.
   */
  flush(): void {
    if (this.#legacySent) {
      this.#legacySent = false;
      this.#ctx.node.flushSends(this.peerId);
    }
    const stream = this.#stream;
    if (stream === undefined || this.#waitingDrain) return;
    const queue = this.#queue;
    const traffic = this.#mode === FAST_GSO
      ? this.#ctx.counters.sent.fastGso
      : this.#ctx.counters.sent.fast;
    const peer = peerTraffic(this.#ctx.counters, this.peerId).sent;
    let wrote = false;
    for (;;) {
      const batch = queue.take();
      if (batch === null) break;
      if (tracing) traceMark("link.write");
      const written = stream.write(batch);
      wrote = true;
      const bytes = batch.length - queue.lastBatchFrames * this.#frameOverhead();
      traffic.batches++;
      traffic.packets += queue.lastBatchFrames;
      traffic.bytes += bytes;
      peer.packets += queue.lastBatchFrames;
      peer.bytes += bytes;
      if (stream.needsDrain) {
        this.#waitingDrain = true;
        written.then(() => this.#drained(stream), ignore);
        break;
      }
      written.catch(ignore);
    }
    if (wrote) stream.flush();
  }

  /**
   * Moves the fast stream to a direct connection when it travels over a relayed one (call
   * when a direct connection to the peer opens, e.g. after hole punching). Packets keep
   * queueing meanwhile and go out on the new stream; the old one is closed once replaced, so
   * the TCP flows inside the tunnel go on (a packet in flight at the switch may be lost or
   * arrive late, as on any path change).
   */
  moveToDirect(): void {
    const old = this.#stream;
    if (old === undefined || !old.relayed || this.#moving) return;
    if (this.#mode !== FAST && this.#mode !== FAST_GSO) return;
    this.#moving = true;
    this.#ctx.counters.links.moves++;
    this.#ctx.node.dialProtocol(this.peerId, [old.protocol], {
      signal: this.#lifetime.signal,
      timeoutMs: this.#ctx.streamTimeoutMs,
    }).then(
      (stream) => this.#moved(stream),
      (e) => {
        this.#moving = false;
        this.#ctx.log.debug("cannot move the fast link", {
          peer: this.peerId,
          error: errorMessage(e),
        });
        if (this.#stream === undefined && this.#mode !== CLOSED) this.#lostStream();
      },
    );
  }

  #moved(stream: NodeStream): void {
    this.#moving = false;
    if (this.#mode === CLOSED || stream.relayed) {
      stream.reset();
      if (this.#stream === undefined && this.#mode !== CLOSED) this.#lostStream();
      return;
    }
    const previous = this.#stream;
    this.#stream = stream;
    this.#streamOpenedAt = this.#ctx.now();
    this.#waitingDrain = false;
    stream.closed.then(() => this.#streamClosed(stream));
    previous?.close().catch(() => previous.reset());
    this.#ctx.log.debug("fast link moved to a direct connection", { peer: this.peerId });
    this.flush();
  }

  /** Closes the fast stream, forgets queued packets and stops every pending open. */
  close(): void {
    if (this.#mode === CLOSED) return;
    this.#mode = CLOSED;
    this.#lifetime.abort(new Error("VPN link closed"));
    for (const g of this.#generations) g.controller.abort(new Error("VPN link closed"));
    this.#stream?.reset();
    this.#stream = undefined;
    this.#queue.clear();
  }

  /** A snapshot for the API. */
  info(): LinkInfo {
    const mode = this.#mode;
    return {
      peerId: this.peerId,
      state: mode === IDLE
        ? "idle"
        : mode === CONNECTING
        ? "connecting"
        : mode === DOWN
        ? "down"
        : mode === CLOSED
        ? "closed"
        : "open",
      protocol: mode === FAST_GSO
        ? "fast-gso"
        : mode === FAST
        ? "fast"
        : mode === LEGACY
        ? "legacy"
        : null,
      queuedBytes: this.#queue.bytes,
      legacyStreams: this.#legacyOpen,
    };
  }

  // ---- fast protocols ---------------------------------------------------------------------

  #frameOverhead(): number {
    return this.#mode === FAST_GSO ? 2 + VIRTIO_NET_HDR_LENGTH : 2;
  }

  // Queues the frame in fast-gso form (the form also kept while connecting).
  #pushGso(frame: Uint8Array, length: number): void {
    const offload = this.#ctx.tunOffload;
    const packetLength = offload ? length - VIRTIO_NET_HDR_LENGTH : length;
    if (packetLength > MAX_FRAME_PACKET) {
      this.#ctx.counters.dropped.tooBig++;
      return;
    }
    const queued = offload
      ? this.#queue.push(packetLength, 0, frame, 0, length)
      : this.#queue.push(packetLength, VIRTIO_NET_HDR_LENGTH, frame, 0, length);
    if (!queued) this.#ctx.counters.dropped.queueFull++;
  }

  #pushPlain(frame: Uint8Array, length: number): void {
    if (!this.#ctx.tunOffload) {
      if (length > MAX_FRAME_PACKET) this.#ctx.counters.dropped.tooBig++;
      else if (!this.#queue.push(length, 0, frame, 0, length)) {
        this.#ctx.counters.dropped.queueFull++;
      }
      return;
    }
    this.#forEachPacket(frame, length, this.#pushPacket);
  }

  #pushPacket = (packet: Uint8Array): void => {
    if (packet.length > MAX_FRAME_PACKET) this.#ctx.counters.dropped.tooBig++;
    else if (!this.#queue.push(packet.length, 0, packet, 0, packet.length)) {
      this.#ctx.counters.dropped.queueFull++;
    }
  };

  // Hands `sink` the plain packets of an interface frame: the frame itself without offload,
  // else its packet with the checksum completed, or the segments of a super-packet.
  #forEachPacket(frame: Uint8Array, length: number, sink: (packet: Uint8Array) => void): void {
    if (!this.#ctx.tunOffload) {
      sink(frame.subarray(0, length));
      return;
    }
    this.#segment(frame.subarray(0, length), sink);
  }

  #segment(gsoFrame: Uint8Array, sink: (packet: Uint8Array) => void): void {
    try {
      forEachPacket(gsoFrame, this.#ctx.scratch, sink);
    } catch {
      this.#ctx.counters.dropped.badOffload++;
    }
  }

  #connect(): void {
    this.#mode = CONNECTING;
    this.#ctx.counters.links.dials++;
    this.#ctx.node.dialProtocol(this.peerId, FAST_PROTOCOLS, {
      signal: this.#lifetime.signal,
      timeoutMs: this.#ctx.streamTimeoutMs,
    }).then(
      (stream) => this.#opened(stream),
      (e) => this.#connectFailed(e),
    );
  }

  #opened(stream: NodeStream): void {
    if (this.#mode === CLOSED) {
      stream.reset();
      return;
    }
    this.#stream = stream;
    this.#streamOpenedAt = this.#ctx.now();
    this.#waitingDrain = false;
    stream.closed.then(() => this.#streamClosed(stream));
    const wasLegacy = this.#mode === LEGACY;
    if (stream.protocol === FAST_GSO_PROTOCOL) {
      this.#mode = FAST_GSO;
    } else {
      this.#mode = FAST;
      if (!wasLegacy) this.#requeue(this.#pushPacket);
    }
    this.#ctx.log.debug("fast link open", { peer: this.peerId, protocol: stream.protocol });
    this.flush();
  }

  #connectFailed(e: unknown): void {
    if (this.#mode === CLOSED) return;
    if ((e as { code?: string })?.code === "PROTOCOL_UNSUPPORTED") {
      this.#ctx.counters.links.fallbacks++;
      this.#ctx.log.debug("peer has no fast protocol: using /edgevpn/0.1", { peer: this.peerId });
      this.#mode = LEGACY;
      this.#legacyUntil = this.#ctx.now() + this.#ctx.fallbackRetryMs;
      this.#requeue(this.#sendLegacy);
      return;
    }
    this.#ctx.counters.links.dialFailures++;
    this.#ctx.log.debug("cannot open fast link", { peer: this.peerId, error: errorMessage(e) });
    this.#ctx.counters.dropped.linkDown += this.#queue.clear();
    this.#backOff();
  }

  #streamClosed(stream: NodeStream): void {
    if (stream !== this.#stream) return;
    this.#stream = undefined;
    this.#waitingDrain = false;
    this.#ctx.counters.links.streamsClosed++;
    // The relayed connection closes as soon as hole punching succeeds: packets wait for the
    // stream on the direct connection instead of being dropped.
    if (this.#moving) return;
    this.#lostStream();
  }

  #lostStream(): void {
    this.#ctx.counters.dropped.linkDown += this.#queue.clear();
    if (this.#mode === CLOSED) return;
    if (this.#ctx.now() - this.#streamOpenedAt >= HEALTHY_STREAM_MS) {
      this.#failures = 0;
      this.#mode = IDLE;
    } else {
      this.#backOff();
    }
  }

  #backOff(): void {
    this.#failures++;
    this.#mode = DOWN;
    this.#retryAt = this.#ctx.now() +
      Math.min(FIRST_BACKOFF_MS * 2 ** (this.#failures - 1), MAX_BACKOFF_MS);
  }

  #drained(stream: NodeStream): void {
    if (stream !== this.#stream) return;
    this.#waitingDrain = false;
    this.flush();
  }

  // Re-sends what was queued in fast-gso form while connecting, in the form now chosen.
  #requeue(sink: (packet: Uint8Array) => void): void {
    if (this.#queue.frames === 0) return;
    const batches: Uint8Array[] = [];
    for (let b; (b = this.#queue.take()) !== null;) batches.push(b);
    const decoder = new FrameDecoder(VIRTIO_NET_HDR_LENGTH);
    const onFrame = (frame: Uint8Array) => this.#segment(frame, sink);
    for (const batch of batches) decoder.push(batch, onFrame);
  }

  // ---- /edgevpn/0.1 -----------------------------------------------------------------------

  #sendLegacy = (packet: Uint8Array): void => {
    if (this.#legacyOpen >= this.#ctx.legacyInflight) {
      this.#ctx.counters.dropped.inflightFull++;
      return;
    }
    this.#legacyOpen++;
    const generation = this.#generation();
    generation.pending++;
    const length = packet.length;
    if (tracing) traceMark("legacy.send");
    this.#legacySent = true;
    this.#ctx.node.sendOnce(this.peerId, LEGACY_PROTOCOL, packet, {
      signal: generation.controller.signal,
      timeoutMs: this.#ctx.streamTimeoutMs,
    }).then(() => {
      countTraffic(this.#ctx.counters.sent.legacy, length);
      countTraffic(peerTraffic(this.#ctx.counters, this.peerId).sent, length);
    }, () => {
      this.#ctx.counters.dropped.legacyFailed++;
    }).finally(() => {
      this.#legacyOpen--;
      generation.pending--;
    });
  };

  // Streams opened within the same second share one abort signal, aborted by `sweep` once the
  // oldest of them has been open for the stream timeout: no timer per packet.
  #generation(): Generation {
    const now = this.#ctx.now();
    let g = this.#generations[this.#generations.length - 1];
    if (g === undefined || now - g.started >= GENERATION_MS) {
      g = { controller: new AbortController(), started: now, pending: 0 };
      this.#generations.push(g);
    }
    return g;
  }

  /** Aborts `/edgevpn/0.1` streams open longer than the stream timeout; call once a second. */
  sweep(now: number): void {
    const timeout = this.#ctx.streamTimeoutMs;
    this.#generations = this.#generations.filter((g) => {
      if (g.pending > 0 && now - g.started < timeout) return true;
      if (g.pending > 0) g.controller.abort(new Error(`no answer in ${timeout} ms`));
      return now - g.started < GENERATION_MS;
    });
  }

  // While on /edgevpn/0.1, asks again whether the peer now speaks a fast protocol.
  #probe(): void {
    this.#probing = true;
    this.#ctx.node.dialProtocol(this.peerId, FAST_PROTOCOLS, {
      signal: this.#lifetime.signal,
      timeoutMs: this.#ctx.streamTimeoutMs,
    }).then(
      (stream) => {
        this.#probing = false;
        if (this.#mode !== LEGACY) {
          stream.reset();
          return;
        }
        this.#ctx.counters.links.dials++;
        this.#opened(stream);
      },
      () => {
        this.#probing = false;
        this.#legacyUntil = this.#ctx.now() + this.#ctx.fallbackRetryMs;
      },
    );
  }
}

function countTraffic(traffic: Traffic, bytes: number): void {
  traffic.packets++;
  traffic.bytes += bytes;
}

function ignore(): void {}
