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
 * is. Streams that open with the exact header of a registered protocol are answered and
 * collected here; every other stream is handed back, bytes and all, to libp2p.
 */
import type { Connection, Stream } from "@libp2p/interface";
import { EdgeVpnError } from "../util/errors.ts";
import { concatBytes } from "../util/bytes.ts";

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

interface Pending {
  stream: Stream;
  started: number;
}

/** Inbound streams being read at once, beyond which new ones are reset. */
const MAX_PENDING = 4096;

/** The `Connection` internals this relies on (libp2p 3.3's `Connection` class). */
interface ConnectionShape {
  muxer?: {
    addEventListener(type: "stream", listener: (evt: CustomEvent<Stream>) => void): void;
    removeEventListener(type: "stream", listener: (evt: CustomEvent<Stream>) => void): void;
  };
  onIncomingStream?: (evt: CustomEvent<Stream>) => void;
}

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
  readonly #pending = new Set<Pending>();
  readonly #attached = new WeakSet<Connection>();
  #sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(counters: MessageStreamCounters, timeoutMs: number) {
    this.#counters = counters;
    this.#timeoutMs = timeoutMs;
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
   * Takes over the inbound streams of `connection` (when its internals are the expected
   * ones, and it is direct: limited connections keep libp2p's refusal).
   */
  attach(connection: Connection): void {
    const c = connection as unknown as ConnectionShape;
    const muxer = c.muxer;
    const original = c.onIncomingStream;
    if (
      connection.limits !== undefined || muxer === undefined || typeof original !== "function" ||
      typeof muxer.removeEventListener !== "function" || this.#attached.has(connection)
    ) return;
    this.#attached.add(connection);
    const peer = connection.remotePeer.toString();
    muxer.removeEventListener("stream", original);
    muxer.addEventListener("stream", (evt) => this.#incoming(evt, original, peer));
  }

  /** Resets the streams still being collected and stops the timeout sweep. */
  stop(): void {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    for (const p of this.#pending) p.stream.abort(new EdgeVpnError("NODE_STOPPED", "Node stopped"));
    this.#pending.clear();
  }

  #incoming(evt: CustomEvent<Stream>, original: (evt: CustomEvent<Stream>) => void, peer: string) {
    const stream = evt.detail;
    if (this.#routes.size === 0 || stream.protocol !== "") return original(evt);
    if (this.#pending.size >= MAX_PENDING) {
      stream.abort(new EdgeVpnError("TOO_MANY_STREAMS", "Too many inbound streams being read"));
      return;
    }
    const chunks: Uint8Array[] = [];
    let bytes = 0;
    let route: MessageRoute | undefined;
    let done = false;
    const entry: Pending = { stream, started: Date.now() };
    this.#pending.add(entry);
    this.#sweep();
    const detach = () => {
      done = true;
      stream.removeEventListener("message", onMessage);
      stream.removeEventListener("remoteCloseWrite", onEnd);
      stream.removeEventListener("close", detach);
      this.#pending.delete(entry);
    };
    const fail = (code: string, message: string) => {
      detach();
      stream.abort(new EdgeVpnError(code, message));
    };
    // Not one of ours: libp2p negotiates it from the same bytes.
    const handBack = () => {
      detach();
      original(evt);
      if (bytes > 0) redeliver(stream, concatBytes(chunks, bytes));
    };
    const decide = (ended: boolean) => {
      const head = chunks.length === 1 ? chunks[0] : concatBytes(chunks, bytes);
      for (const r of this.#routes.values()) {
        if (startsWith(head, r.header)) return take(r, head);
      }
      if (!ended && [...this.#routes.values()].some((r) => startsWith(r.header, head))) {
        chunks.length = 0;
        chunks.push(head);
        return;
      }
      handBack();
    };
    const take = (r: MessageRoute, head: Uint8Array) => {
      if (!r.admits(peer)) {
        this.#counters.nonMember++;
        return fail("NOT_A_MEMBER", `Peer ${peer} is not a network member`);
      }
      route = r;
      this.#counters.inbound++;
      this.#counters.messages++;
      stream.protocol = r.protocol;
      stream.send(r.header);
      chunks.length = 0;
      bytes = head.length - r.header.length;
      if (bytes > 0) chunks.push(head.subarray(r.header.length));
      if (stream.remoteWriteStatus === "closed") finish();
    };
    const finish = () => {
      if (done) return;
      detach();
      const r = route!;
      if (bytes > r.maxBytes) return fail("MESSAGE_TOO_LARGE", `${r.protocol} message too large`);
      if (r.deliver(peer, chunks.length === 1 ? chunks[0] : concatBytes(chunks, bytes)) === false) {
        return fail("BAD_MESSAGE", `Bad ${r.protocol} message`);
      }
      stream.close().catch(() => {});
    };
    const onMessage = (e: Event) => {
      const data = (e as Event & { data: Uint8Array | { subarray(): Uint8Array } }).data;
      const chunk = data instanceof Uint8Array ? data : data.subarray();
      chunks.push(chunk);
      bytes += chunk.length;
      if (route === undefined) decide(false);
      else if (bytes > route.maxBytes) {
        fail("MESSAGE_TOO_LARGE", `${route.protocol} message too large`);
      }
    };
    const onEnd = () => {
      if (route === undefined) decide(true);
      else finish();
    };
    stream.addEventListener("message", onMessage);
    stream.addEventListener("remoteCloseWrite", onEnd);
    stream.addEventListener("close", detach);
  }

  // One interval for every stream being collected, running only while some are.
  #sweep(): void {
    if (this.#sweeper !== undefined) return;
    this.#sweeper = setInterval(() => {
      const oldest = Date.now() - this.#timeoutMs;
      for (const p of this.#pending) {
        if (p.started > oldest) continue;
        this.#pending.delete(p);
        p.stream.abort(
          new EdgeVpnError("STREAM_TIMEOUT", "Stream timed out before its message ended"),
        );
      }
      if (this.#pending.size === 0) {
        clearInterval(this.#sweeper);
        this.#sweeper = undefined;
      }
    }, Math.max(100, Math.min(this.#timeoutMs / 4, 5_000)));
  }
}

/**
 * Gives `data` back to the stream's new reader (libp2p's multistream-select, attached by
 * `onIncomingStream` before its first await) while the chunk that brought it is still being
 * processed. `unshift` would deliver it a tick later, after a FIN in the same chunk: libp2p
 * 3.3 then closes the readable end once the buffer is drained and multistream-select fails to
 * put back the bytes that follow the protocol line.
 */
function redeliver(stream: Stream, data: Uint8Array): void {
  const s = stream as unknown as {
    readBuffer?: { append(data: Uint8Array): void };
    dispatchReadBuffer?: () => void;
  };
  if (s.readBuffer === undefined || typeof s.dispatchReadBuffer !== "function") {
    return stream.unshift(data);
  }
  s.readBuffer.append(data);
  s.dispatchReadBuffer();
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}
