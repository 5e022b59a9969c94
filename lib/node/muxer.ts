/** Yamux with coalesced writes: a tick's frames leave in one Noise message and one socket write. */
import { yamux } from "@chainsafe/libp2p-yamux";
import type { Stream, StreamMuxer, StreamMuxerFactory } from "@libp2p/interface";
import { EdgeVpnError } from "../util/errors.ts";
import { type ByteChunk, concatBytes } from "../util/bytes.ts";
import { traceMark, tracing } from "../util/trace.ts";
import {
  holdStreamsUntilListened,
  joinSocketWrites,
  muxerInternals,
  onNewStream,
  traceConnection,
  updateWindowsAtHalf,
  yamuxOpener,
} from "./workarounds.ts";

/** What `yamux()` accepts (its `Config` type is not exported from the package root). */
type YamuxInit = Parameters<typeof yamux>[0];

/** Flush at once past this many pending bytes instead of waiting for the end of the tick. */
const MAX_PENDING_BYTES = 256 * 1024;

/**
 * `yamux(init)` whose muxers coalesce their writes. Stock yamux 8.0.x hands every frame (a
 * 12-byte window update, a multistream-select line, a FIN) to Noise separately, and the TCP
 * transport writes Noise's length prefix and ciphertext with two socket writes: a stream per
 * packet (Go's `/edgevpn/0.1`) cost ten syscalls and ten encryptions per packet. Here the frames
 * sent during one tick (until the microtask queue drains, or 256 KiB) are concatenated and sent
 * as one message, and each Noise message goes out in one socket write.
 *
 * Guarded: a muxer or connection without the expected shape is left stock.
 *
 * @example
 * ```ts
 * createLibp2p({ streamMuxers: [coalescingYamux()] });
 * ```
 */
export function coalescingYamux(init: YamuxInit = {}): () => StreamMuxerFactory {
  const base = yamux(init);
  return () => {
    const factory = base();
    const create = factory.createStreamMuxer.bind(factory);
    factory.createStreamMuxer = (maConn) => {
      const muxer = create(maConn);
      onNewStream(muxer, (stream) => streamMuxers.set(stream, muxer));
      updateWindowsAtHalf(muxer);
      coalesce(muxer);
      holdStreamsUntilListened(muxer);
      if (tracing) traceConnection(muxer);
      return muxer;
    };
    return factory;
  };
}

/** The muxer of each stream a coalescing yamux muxer made. */
const streamMuxers = new WeakMap<object, object>();

/**
 * The muxer a stream belongs to (streams of libp2p 3.3 do not name their connection), or
 * undefined for streams of other muxers.
 *
 * @example
 * ```ts
 * const muxer = muxerOfStream(stream); // the `connection.muxer` it travels on
 * ```
 */
export function muxerOfStream(stream: object): object | undefined {
  return streamMuxers.get(stream);
}

/** The muxers `coalesce` patched, with whether their connection is saturated. */
const coalesced = new WeakMap<object, { saturated(): boolean; flush(): void }>();

function coalesce(muxer: StreamMuxer): void {
  const m = muxerInternals(muxer);
  if (m === undefined) return;
  const conn = m.maConn;
  joinSocketWrites(conn);
  let pending: ByteChunk[] = [];
  let pendingBytes = 0;
  let scheduled = false;
  let saturated = false;
  conn.addEventListener("drain", () => saturated = false);
  coalesced.set(muxer, { saturated: () => saturated, flush: () => flushLater() });
  const flush = (): boolean => {
    scheduled = false;
    if (pending.length === 0) return !saturated;
    const chunks = pending;
    const bytes = pendingBytes;
    pending = [];
    pendingBytes = 0;
    if (tracing) traceMark("muxer.flush");
    const ok = conn.send(chunks.length === 1 ? chunks[0] : concatBytes(chunks, bytes));
    if (!ok) {
      saturated = true;
      for (const s of m.streams) s.onMuxerNeedsDrain();
    }
    return ok;
  };
  // A flush at the end of the tick has no caller to throw to: a connection that started
  // closing meanwhile takes the pending frames with it, and its streams learn it closed.
  const flushLater = () => {
    if (pending.length === 0) return;
    try {
      flush();
    } catch {
      pending = [];
      pendingBytes = 0;
    }
  };
  m.send = (data: ByteChunk): boolean => {
    pending.push(data);
    pendingBytes += data.byteLength;
    if (pendingBytes >= MAX_PENDING_BYTES) return flush();
    if (!scheduled) {
      scheduled = true;
      queueMicrotask(flushLater);
    }
    return !saturated;
  };
}

/** Yamux frame header: version, type, flags, stream ID, length (12 bytes, big-endian). */
export const YAMUX_HEADER = 12;
/** Yamux frame types and flags. */
export const YAMUX = { DATA: 0, WINDOW_UPDATE: 1, SYN: 1, ACK: 2, FIN: 4, RST: 8 } as const;
const { DATA, WINDOW_UPDATE, SYN, FIN } = YAMUX;

/**
 * One yamux frame: a data frame carrying `body`, or a window update (length 0) with `flags`.
 *
 * @example
 * ```ts
 * yamuxFrame(YAMUX.WINDOW_UPDATE, YAMUX.RST, 3); // resets stream 3
 * ```
 */
export function yamuxFrame(type: number, flags: number, id: number, body?: Uint8Array): Uint8Array {
  const frame = new Uint8Array(YAMUX_HEADER + (body?.length ?? 0));
  writeHeader(frame, 0, type, flags, id, body?.length ?? 0);
  if (body) frame.set(body, YAMUX_HEADER);
  return frame;
}

// Version 0 (the zero byte left as is), type, flags, stream ID and length, big-endian.
function writeHeader(
  frame: Uint8Array,
  at: number,
  type: number,
  flags: number,
  id: number,
  length: number,
): void {
  frame[at + 1] = type;
  frame[at + 2] = flags >>> 8;
  frame[at + 3] = flags;
  frame[at + 4] = id >>> 24;
  frame[at + 5] = id >>> 16;
  frame[at + 6] = id >>> 8;
  frame[at + 7] = id;
  frame[at + 8] = length >>> 24;
  frame[at + 9] = length >>> 16;
  frame[at + 10] = length >>> 8;
  frame[at + 11] = length;
}

/**
 * Sends what `muxer` holds for the end of the tick now: the caller knows nothing else is
 * coming, and a lone packet should not wait for the rest of the task. No effect on other
 * muxers or when nothing is pending.
 *
 * @example
 * ```ts
 * stream.send(batch);
 * flushMuxer(muxer); // one Noise message and socket write, now
 * ```
 */
export function flushMuxer(muxer: unknown): void {
  coalesced.get(muxer as object)?.flush();
}

/** Whether `muxer` is a coalescing yamux muxer (see {@link coalescingYamux}). */
export function isCoalescingYamux(muxer: unknown): boolean {
  return coalesced.has(muxer as object);
}

/**
 * Opens a yamux stream on `muxer`, sends `parts` on it and half-closes it, in one write and
 * without a stream object: the frames go out as a yamux stream opener would send them (SYN,
 * data, FIN). Meant for one-shot protocols whose dialer selects lazily and expects nothing back
 * (Go EdgeVPN's `/edgevpn/0.1`); whatever the peer answers on that stream (its multistream
 * answer, its FIN, a reset) is dropped by the muxer as frames of an unknown stream, exactly as
 * for a stream that was closed. Returns `unsupported` for a muxer that is not a coalescing
 * yamux one or is going away, and `saturated`, sending nothing, while its connection is not
 * draining.
 *
 * @example
 * ```ts
 * sendOneShot(muxer, [header, packet]); // "sent"
 * ```
 */
export function sendOneShot(
  muxer: unknown,
  parts: readonly Uint8Array[],
): "sent" | "saturated" | "unsupported" {
  const state = coalesced.get(muxer as object);
  const m = yamuxOpener(muxer);
  if (
    state === undefined || m === undefined || m.status !== "open" ||
    m.localGoAway !== undefined || m.remoteGoAway !== undefined
  ) return "unsupported";
  if (state.saturated()) return "saturated";
  const id = m.nextStreamID;
  m.nextStreamID += 2;
  let length = 0;
  for (const p of parts) length += p.length;
  const frames = new Uint8Array(3 * YAMUX_HEADER + length);
  writeHeader(frames, 0, WINDOW_UPDATE, SYN, id, 0);
  writeHeader(frames, YAMUX_HEADER, DATA, 0, id, length);
  let at = 2 * YAMUX_HEADER;
  for (const p of parts) {
    frames.set(p, at);
    at += p.length;
  }
  writeHeader(frames, at, WINDOW_UPDATE, FIN, id, 0);
  m.send(frames);
  return "sent";
}

/** A muxer that can open streams: what {@link sendOnce} falls back to. */
export interface StreamOpener {
  createStream(options: object): Promise<Stream>;
}

/** Hooks of {@link sendOnce}. */
export interface SendOnceOptions {
  /** Aborts the stream of the fallback path. */
  signal?: AbortSignal;
  /** Called once the data is handed to the connection (count it). */
  sent?: () => void;
  /** Told of the stream the fallback path opens (`true`) and once it closed (`false`). */
  track?: (stream: Stream, open: boolean) => void;
  /** The peer, for the error message. */
  peer?: string;
}

/**
 * The one-shot stream path: sends `data` as a new stream of `protocol` on `muxer` and closes
 * it, without waiting for the peer to confirm the protocol (the multistream-select lines, the
 * data and the FIN leave together: go-libp2p's "lazy" negotiation). On a coalescing yamux muxer
 * the frames are written without a stream object ({@link sendOneShot}) and it resolves at once,
 * or throws `CONNECTION_SATURATED`, sending nothing, while the connection is not draining; on
 * other muxers it opens a stream and resolves once the stream is finished in both directions
 * (rejecting if `signal` aborts first).
 *
 * @example
 * ```ts
 * await sendOnce(muxer, "/edgevpn/0.1", packet);
 * ```
 */
export async function sendOnce(
  muxer: StreamOpener,
  protocol: string,
  data: Uint8Array,
  options: SendOnceOptions = {},
): Promise<void> {
  const header = lazySelectHeader(protocol);
  const sent = sendOneShot(muxer, [header, data]);
  if (sent === "sent") {
    options.sent?.();
    return;
  }
  if (sent === "saturated") {
    throw new EdgeVpnError(
      "CONNECTION_SATURATED",
      `The connection to ${options.peer ?? "the peer"} is not draining`,
    );
  }
  const message = concatBytes([header, data]);
  const stream = await muxer.createStream({});
  options.track?.(stream, true);
  const signal = options.signal;
  const onAbort = () => stream.abort(signal?.reason ?? new Error("aborted"));
  const closed = new Promise<void>((resolve, reject) => {
    stream.addEventListener("close", (e) => {
      options.track?.(stream, false);
      signal?.removeEventListener("abort", onAbort);
      if (e.error && e.local) reject(e.error);
      else resolve();
    }, { once: true });
  });
  signal?.addEventListener("abort", onAbort, { once: true });
  stream.send(message);
  options.sent?.();
  await stream.close();
  return closed;
}

const lazyHeaders = new Map<string, Uint8Array>();

/**
 * `/multistream/1.0.0` and `protocol` as the dialer's multistream-select lines: what a lazy
 * dialer sends ahead of its data.
 *
 * @example
 * ```ts
 * lazySelectHeader("/edgevpn/0.1"); // varint 19, "/multistream/1.0.0\n", varint 13, "/edgevpn/0.1\n"
 * ```
 */
export function lazySelectHeader(protocol: string): Uint8Array {
  let header = lazyHeaders.get(protocol);
  if (header === undefined) {
    const lines = ["/multistream/1.0.0\n", `${protocol}\n`].map((l) => new TextEncoder().encode(l));
    header = concatBytes(lines.flatMap((l) => [varint(l.length), l]));
    lazyHeaders.set(protocol, header);
  }
  return header;
}

function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Uint8Array.from(out);
}
