/** Yamux with coalesced writes: a tick's frames leave in one Noise message and one socket write. */
import { yamux } from "@chainsafe/libp2p-yamux";
import type { StreamMuxer, StreamMuxerFactory } from "@libp2p/interface";
import { type ByteChunk, concatBytes } from "../util/bytes.ts";
import { traceMark, tracing } from "../util/trace.ts";
import { boundFrames } from "./frame_limits.ts";

/** What `yamux()` accepts (its `Config` type is not exported from the package root). */
type YamuxInit = Parameters<typeof yamux>[0];

/** Flush at once past this many pending bytes instead of waiting for the end of the tick. */
const MAX_PENDING_BYTES = 256 * 1024;

/** The parts of `@libp2p/utils` 7.x `AbstractStreamMuxer` the patch relies on. */
interface MuxerShape {
  send(data: ByteChunk): boolean;
  maConn: ConnShape;
  streams: { onMuxerNeedsDrain(): void }[];
}

/** The encrypted connection under the muxer (Noise), and the TCP connection under that. */
interface ConnShape {
  send(data: ByteChunk): boolean;
  addEventListener(type: "drain", listener: () => void): void;
  stream?: { sendData?: (data: Iterable<Uint8Array>) => unknown; socket?: unknown };
}

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
      boundFrames(muxer);
      tagStreams(muxer);
      updateWindowsAtHalf(muxer);
      coalesce(muxer);
      holdStreamsUntilListened(muxer);
      if (tracing) traceConnection(muxer);
      return muxer;
    };
    return factory;
  };
}

/** Yamux 8.0.x stream states (`StreamState`) that decide the flags of a window update. */
const STREAM_INIT = 0;
const STREAM_SYN_RECEIVED = 2;
const STREAM_PAUSED = 5;

/** The yamux 8.0.x stream fields the window-update patch reads. */
interface YamuxStreamShape {
  state: number;
  recvWindow: number;
  recvWindowCapacity: number;
  sendWindowUpdate(): void;
}

let windowsPatched = false;

/**
 * Yamux 8.0.x answers every data frame with a window update: a second frame, Noise message and
 * socket write for each packet, sent before the packet is even handed to its reader, and one
 * more message the peer must decrypt before the next one. Go's yamux (and the spec's intent)
 * updates once half the receive window is consumed; so do we, on the stream class shared by
 * every muxer (patched once, through the first stream created). Updates that carry a SYN or an
 * ACK, and resumes after a pause, go out as before.
 */
function updateWindowsAtHalf(muxer: StreamMuxer): void {
  if (windowsPatched) return;
  const m = muxer as unknown as { _newStream?: (...args: unknown[]) => unknown };
  const newStream = m._newStream;
  if (typeof newStream !== "function") return;
  m._newStream = function (...args: unknown[]) {
    const stream = newStream.apply(this, args);
    m._newStream = newStream;
    patchStreamClass(stream);
    return stream;
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

function tagStreams(muxer: StreamMuxer): void {
  const m = muxer as unknown as { _newStream?: (...args: unknown[]) => object };
  const create = m._newStream;
  if (typeof create !== "function") return;
  m._newStream = function (...args: unknown[]) {
    const stream = create.apply(this, args);
    streamMuxers.set(stream, muxer);
    return stream;
  };
}

function patchStreamClass(stream: unknown): void {
  if (windowsPatched) return;
  const proto = Object.getPrototypeOf(stream) as Partial<YamuxStreamShape> | null;
  const s = stream as Partial<YamuxStreamShape>;
  const update = proto?.sendWindowUpdate;
  if (
    typeof update !== "function" || typeof s.state !== "number" ||
    typeof s.recvWindow !== "number" || typeof s.recvWindowCapacity !== "number"
  ) return;
  windowsPatched = true;
  proto!.sendWindowUpdate = function (this: YamuxStreamShape) {
    const state = this.state;
    if (
      state !== STREAM_INIT && state !== STREAM_SYN_RECEIVED && state !== STREAM_PAUSED &&
      this.recvWindow - this.recvWindowCapacity < this.recvWindow / 2
    ) return;
    update.call(this);
  };
}

/** The muxers `coalesce` patched, with whether their connection is saturated. */
const coalesced = new WeakMap<object, { saturated(): boolean; flush(): void }>();

function coalesce(muxer: StreamMuxer): void {
  const m = muxer as unknown as Partial<MuxerShape>;
  const conn = m.maConn;
  if (
    typeof m.send !== "function" || !Array.isArray(m.streams) || conn === undefined ||
    typeof conn.send !== "function" || typeof conn.addEventListener !== "function"
  ) return;
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
      for (const s of m.streams!) s.onMuxerNeedsDrain();
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

/** The yamux 8.0.x muxer fields {@link sendOneShot} relies on. */
interface YamuxShape {
  nextStreamID?: number;
  status?: string;
  localGoAway?: unknown;
  remoteGoAway?: unknown;
  send(data: ByteChunk): boolean;
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
  const m = muxer as YamuxShape;
  if (
    state === undefined || typeof m.nextStreamID !== "number" || m.status !== "open" ||
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

/** Stream frames (and their bytes) held before the connection listens; later ones are dropped. */
const MAX_HELD_FRAMES = 1024;
const MAX_HELD_BYTES = 1 << 20;

/**
 * libp2p 3.3 starts the muxer, then awaits the connection gater, and only then creates the
 * connection that listens for the muxer's new streams: a stream the peer opens at once (a
 * packet sent as soon as its dial completed) raises its event before anyone listens and is
 * lost. Stream frames are held until the first `stream` listener is added, then handled in
 * order (in a microtask, once the connection's constructor has finished).
 */
function holdStreamsUntilListened(muxer: StreamMuxer): void {
  const m = muxer as unknown as {
    handleStreamMessage?: (frame: unknown) => void;
    addEventListener(type: string, ...rest: unknown[]): void;
  };
  const handle = m.handleStreamMessage;
  if (typeof handle !== "function" || typeof m.addEventListener !== "function") return;
  let held: unknown[] | undefined = [];
  let heldBytes = 0;
  m.handleStreamMessage = function (frame: unknown) {
    if (held === undefined) return handle.call(this, frame);
    const header = (frame as { header?: { type?: number; length?: number } }).header;
    if (header?.type === DATA) heldBytes += header.length ?? 0;
    if (held.length < MAX_HELD_FRAMES && heldBytes <= MAX_HELD_BYTES) held.push(frame);
  };
  const add = m.addEventListener;
  m.addEventListener = function (type: string, ...rest: unknown[]) {
    add.call(this, type, ...rest);
    if (type !== "stream" || held === undefined) return;
    m.addEventListener = add;
    queueMicrotask(() => {
      const frames = held!;
      held = undefined;
      for (const f of frames) handle.call(m, f);
    });
  };
}

// The TCP connection writes each chunk of a message separately (Noise: 2-byte length, then
// ciphertext); join them so one message is one write.
function joinSocketWrites(conn: ConnShape): void {
  const tcp = conn.stream;
  const sendData = tcp?.sendData;
  if (typeof sendData !== "function" || tcp?.socket === undefined) return;
  tcp.sendData = function (data: Iterable<Uint8Array>) {
    const list = data as unknown as { bufs?: unknown[]; subarray(): Uint8Array };
    const joined = Array.isArray(list.bufs) && list.bufs.length > 1 ? [list.subarray()] : data;
    if (tracing) traceMark("socket.write");
    return sendData.call(this, joined);
  };
}

// Stamps the receiving side of a connection: ciphertext read from the socket, then the
// decrypted bytes reaching yamux (only connections opened while tracing).
function traceConnection(muxer: StreamMuxer): void {
  const m = muxer as unknown as {
    onData?: (data: unknown) => void;
    maConn?: { stream?: { socket?: { prependListener?(e: string, f: () => void): void } } };
  };
  m.maConn?.stream?.socket?.prependListener?.("data", () => traceMark("socket.data"));
  const onData = m.onData;
  if (typeof onData !== "function") return;
  m.onData = function (data: unknown) {
    traceMark("yamux.data");
    return onData.call(this, data);
  };
}
