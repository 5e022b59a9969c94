/**
 * Inbound one-message streams (Go's `/edgevpn/0.1`: one IP packet per stream) served beside
 * libp2p's stream machinery instead of through it.
 *
 * For every inbound stream, js-libp2p 3.3 arms a timer, runs multistream-select through a byte
 * stream wrapper, merges the protocol into the peer store, counts the connection's streams and
 * runs a middleware chain of promises before the handler sees a byte: several times the cost
 * of the packet itself, and garbage that outlives the young generation. Dialers that select
 * the protocol lazily (go-libp2p's `NewStream` with one protocol, and ours) send the
 * multistream header and the message in one go, so the first bytes of the stream say what it
 * is. Here the frames of a new inbound yamux stream are held until those bytes arrive: a
 * stream that opens with the exact header of a registered protocol is answered and collected
 * without ever becoming a stream object; any other has its frames replayed to yamux, and
 * libp2p takes it as usual.
 */
import type { Connection } from "@libp2p/interface";
import { concatBytes } from "../util/bytes.ts";
import { clampTimerMs } from "../util/timer.ts";
import { isCoalescingYamux, YAMUX, yamuxFrame } from "./muxer.ts";
import type { TrafficMeter } from "./traffic.ts";
import {
  connectionMuxer,
  type YamuxFrame,
  type YamuxFrameInternals,
  yamuxFrames,
} from "./workarounds.ts";

/** What a registered protocol does with its messages. */
export interface MessageRoute {
  protocol: string;
  /** The dialer's lazy multistream-select lines, which the listener echoes as its answer. */
  header: Uint8Array;
  admits(peer: string): boolean;
  /** Gets the whole message; `false` resets the stream (bad input). */
  deliver(peer: string, message: Uint8Array): boolean | void;
  maxBytes: number;
}

/** Counters shared with the node. */
export interface MessageStreamCounters {
  inbound: number;
  nonMember: number;
  /** Streams read here (a part of `inbound`). */
  messages: number;
}

/** A stream being read, for the timeout sweep and `stop()`. */
interface Pending {
  started: number;
  /** Resets the stream. */
  abort(): void;
}

/**
 * Inbound message streams being read at once (at most `maxBytes` each); beyond it new streams
 * take libp2p's path, with its own per-connection limits.
 */
const MAX_PENDING = 1024;

/**
 * The registry of message protocols and the interception of inbound streams on connections.
 *
 * @example
 * ```ts
 * const messages = new MessageStreams(counters, 15_000);
 * messages.route({ protocol, header, admits, deliver, maxBytes: 65_575 });
 * libp2p.addEventListener("connection:open", (e) => messages.attach(e.detail));
 * ```
 */
export class MessageStreams {
  readonly #routes = new Map<string, MessageRoute>();
  readonly #counters: MessageStreamCounters;
  readonly #timeoutMs: number;
  readonly #traffic: TrafficMeter | undefined;
  readonly #pending = new Set<Pending>();
  readonly #attached = new WeakSet<Connection>();
  #sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(counters: MessageStreamCounters, timeoutMs: number, traffic?: TrafficMeter) {
    this.#counters = counters;
    this.#timeoutMs = timeoutMs;
    this.#traffic = traffic;
  }

  /** Adds (or replaces) a protocol. */
  route(route: MessageRoute): void {
    this.#routes.set(route.protocol, route);
  }

  /** Removes a protocol: its streams go through libp2p again. */
  unroute(protocol: string): void {
    this.#routes.delete(protocol);
  }

  /**
   * Reads the message streams of `connection` at the frame level (when its muxer is our
   * coalescing yamux and the connection is direct: limited ones keep libp2p's refusal).
   */
  attach(connection: Connection): void {
    const muxer = connectionMuxer(connection);
    if (
      connection.limits !== undefined || !isCoalescingYamux(muxer) || this.#attached.has(connection)
    ) {
      return;
    }
    this.#attached.add(connection);
    this.intercept(muxer!, connection.remotePeer.toString());
  }

  /**
   * What {@link attach} does once it knows the muxer is a yamux 8.0.x one: takes over its
   * `handleStreamMessage` so that frames from `peer` go through the interception first. Open
   * for tests, which drive it with frames of their own.
   */
  intercept(muxer: object, peer: string): void {
    const internals = yamuxFrames(muxer);
    if (internals !== undefined) this.#interceptFrames(internals, peer);
  }

  /** Resets the streams still being collected and stops the timeout sweep. */
  stop(): void {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    for (const p of this.#pending) p.abort();
    this.#pending.clear();
  }

  /**
   * Reads message streams at the frame level, before yamux makes a stream object of them:
   * the frames of a new inbound stream are held until its first bytes tell what it is. A
   * message stream is answered (ACK and the multistream lines), collected until the dialer's
   * FIN, delivered and closed with a FIN of ours; any other stream has its held frames replayed
   * to yamux in order, as if they had just arrived.
   */
  #interceptFrames(muxer: YamuxFrameInternals, peer: string): void {
    const handle = muxer.handleStreamMessage.bind(muxer);
    const streams = new Map<number, {
      frames: YamuxFrame[];
      chunks: Uint8Array[];
      bytes: number;
      ended: boolean;
      route?: MessageRoute;
      entry: Pending;
    }>();
    const reply = (id: number, type: number, flags: number, body?: Uint8Array) =>
      muxer.send(yamuxFrame(type, flags, id, body));
    const forget = (id: number) => {
      const s = streams.get(id);
      if (s === undefined) return;
      streams.delete(id);
      this.#pending.delete(s.entry);
    };
    const reset = (id: number) => {
      forget(id);
      reply(id, YAMUX.WINDOW_UPDATE, YAMUX.RST);
    };
    muxer.handleStreamMessage = (frame: YamuxFrame) => {
      const { streamID: id, flag, type } = frame.header;
      let s = streams.get(id);
      if (s === undefined) {
        if (
          (flag & YAMUX.SYN) === 0 || this.#routes.size === 0 || muxer.localGoAway !== undefined ||
          muxer.client !== (id % 2 === 0) || this.#pending.size >= MAX_PENDING ||
          muxer.streams.some((st) => st.streamId === id)
        ) return handle(frame);
        s = {
          frames: [],
          chunks: [],
          bytes: 0,
          ended: false,
          entry: {
            started: Date.now(),
            abort: () => reset(id),
          },
        };
        streams.set(id, s);
        this.#pending.add(s.entry);
        this.#sweep();
      }
      if ((flag & YAMUX.RST) !== 0) return forget(id);
      if (s.route === undefined) s.frames.push(frame);
      if (type === YAMUX.DATA && frame.data) {
        const chunk = frame.data instanceof Uint8Array ? frame.data : frame.data.subarray();
        s.chunks.push(chunk);
        s.bytes += chunk.length;
      }
      if ((flag & YAMUX.FIN) !== 0) s.ended = true;
      if (s.route === undefined) {
        const head = s.chunks.length === 1 ? s.chunks[0] : concatBytes(s.chunks, s.bytes);
        const route = [...this.#routes.values()].find((r) => startsWith(head, r.header));
        if (route === undefined) {
          if (!s.ended && [...this.#routes.values()].some((r) => couldBecome(head, r.header))) {
            s.chunks = [head];
            return;
          }
          // Not one of ours (or a dialer that waits for the multistream echo before it names
          // the protocol): yamux and libp2p take it from the first frame.
          forget(id);
          for (const f of s.frames) handle(f);
          return;
        }
        if (!route.admits(peer)) {
          this.#counters.nonMember++;
          return reset(id);
        }
        s.route = route;
        s.frames = [];
        this.#counters.inbound++;
        this.#counters.messages++;
        reply(id, YAMUX.DATA, YAMUX.ACK, route.header);
        s.chunks = [head.subarray(route.header.length)];
        s.bytes = head.length - route.header.length;
      }
      if (s.bytes > s.route.maxBytes) return reset(id);
      if (!s.ended) return;
      forget(id);
      const message = s.chunks.length === 1 ? s.chunks[0] : concatBytes(s.chunks, s.bytes);
      this.#traffic?.record(peer, s.route.protocol, "in", message.length);
      let ok: boolean | void = false;
      try {
        ok = s.route.deliver(peer, message);
      } catch {
        // A throwing handler must not take the connection's frame loop with it.
      }
      if (ok === false) return reset(id);
      reply(id, YAMUX.WINDOW_UPDATE, YAMUX.FIN);
    };
  }

  // One interval for every stream being collected, running only while some are.
  #sweep(): void {
    if (this.#sweeper !== undefined) return;
    this.#sweeper = setInterval(() => {
      const oldest = Date.now() - this.#timeoutMs;
      for (const p of this.#pending) {
        if (p.started > oldest) continue;
        this.#pending.delete(p);
        p.abort();
      }
      if (this.#pending.size === 0) {
        clearInterval(this.#sweeper);
        this.#sweeper = undefined;
      }
    }, clampTimerMs(Math.max(100, Math.min(this.#timeoutMs / 4, 5_000))));
  }
}

/**
 * Whether more bytes could still make `head` start with `header`: it is a proper prefix of it
 * that does not end right after the first line (`/multistream/1.0.0`), where a dialer that
 * negotiates step by step stops to wait for the echo.
 *
 * @example
 * ```ts
 * couldBecome(new Uint8Array(0), header); // true: nothing read yet
 * ```
 */
export function couldBecome(head: Uint8Array, header: Uint8Array): boolean {
  return head.length !== header[0] + 1 && startsWith(header, head);
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}
