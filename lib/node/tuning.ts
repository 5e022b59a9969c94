/**
 * Transport tuning for the pinned js-libp2p packages: Go-like yamux window updates and one
 * socket write per Noise frame. Both are one-sided (the bytes on the wire are unchanged) and
 * version-guarded: when the library code differs from what they expect they step aside.
 *
 * Why (measured between two Deno processes, see deno-libp2p-notes.md): yamux 8.0.1 sends a
 * window update after every received frame and @libp2p/tcp 11.0.28 makes four `sendto` calls
 * per Noise frame; together they cost ~1.7x throughput on packet-sized writes and, with the
 * stock 16 MiB window, 200–300 ms of queueing under load. go-yamux updates once half the
 * window is consumed.
 */
import { yamux } from "@chainsafe/libp2p-yamux";
import type { MessageStream, StreamMuxer, StreamMuxerFactory } from "@libp2p/interface";

/** What `yamux()` accepts (its `Config` type is not exported from the package root). */
export type YamuxInit = Parameters<typeof yamux>[0];

export interface WindowTuning {
  /**
   * Send a window update only once at least this fraction of the receive window has been
   * consumed (go-yamux and rust-yamux: 0.5). 0 restores the stock every-frame behaviour.
   */
  threshold?: number;
  /**
   * Receive window granted to the remote in our first window update (at most the stream's
   * `maxStreamWindowSize`). Both sides still start from the spec's 256 KiB, so this is safe
   * with peers that do not share our config (unlike `initialStreamWindowSize`). 0 = leave it to
   * the library's RTT-based growth.
   */
  grantWindow?: number;
  /** Called once per muxer when the guard refuses to patch. */
  onSkip?: (reason: string) => void;
}

/** The fields of 8.0.x `YamuxStream` the patch reads or writes (all public JS properties). */
interface YamuxStreamShape {
  state: number;
  recvWindow: number;
  recvWindowCapacity: number;
  maxStreamWindowSize: number;
  sendWindowUpdate(): void;
}

interface YamuxMuxerShape {
  _newStream(streamId: number, state: number, direction: string): YamuxStreamShape;
}

/** Fragments of 8.0.1's compiled `sendWindowUpdate`/`handleData` the patch relies on. */
const SEND_WINDOW_UPDATE_FINGERPRINT = [
  "this.state === StreamState.Paused",
  "const flags = this.getSendFlags()",
  "this.recvWindow = Math.min(this.recvWindow * 2, this.maxStreamWindowSize)",
  "const delta = this.recvWindow - this.recvWindowCapacity",
  "this.recvWindowCapacity = this.recvWindow",
];
const HANDLE_DATA_FINGERPRINT = [
  "this.recvWindowCapacity -= frame.header.length",
  "this.sendWindowUpdate()",
];

/**
 * `yamux(init)` with Go-like window updates: an update is sent only once `threshold` of the
 * window is consumed, and the first one grants `grantWindow`.
 *
 * @example
 * ```ts
 * streamMuxers: [tunedYamux({}, { threshold: 0.5, grantWindow: 4 << 20 })]
 * ```
 */
export function tunedYamux(
  init: YamuxInit = {},
  tuning: WindowTuning = {},
): () => StreamMuxerFactory {
  const base = yamux(init);
  const threshold = tuning.threshold ?? 0.5;
  const grantWindow = tuning.grantWindow ?? 0;
  return () => {
    const factory: StreamMuxerFactory = base();
    const create = factory.createStreamMuxer.bind(factory);
    factory.createStreamMuxer = (maConn: MessageStream): StreamMuxer => {
      const muxer = create(maConn);
      patchMuxer(muxer as unknown as YamuxMuxerShape, threshold, grantWindow, tuning.onSkip);
      return muxer;
    };
    return factory;
  };
}

/** Why the guard refused this stream's class, or undefined when it looks like 8.0.x. */
export function checkYamuxStream(stream: unknown): string | undefined {
  const s = stream as Partial<YamuxStreamShape> & { handleData?: unknown };
  for (const field of ["state", "recvWindow", "recvWindowCapacity", "maxStreamWindowSize"]) {
    if (typeof (s as Record<string, unknown>)[field] !== "number") return `no numeric ${field}`;
  }
  const proto = Object.getPrototypeOf(stream) as Record<string, unknown>;
  const update = proto.sendWindowUpdate, handleData = proto.handleData;
  if (typeof update !== "function" || typeof handleData !== "function") {
    return "no sendWindowUpdate/handleData on the stream class";
  }
  const updateSrc = squash(String(update)), dataSrc = squash(String(handleData));
  const missing = [
    ...SEND_WINDOW_UPDATE_FINGERPRINT.filter((f) => !updateSrc.includes(squash(f))),
    ...HANDLE_DATA_FINGERPRINT.filter((f) => !dataSrc.includes(squash(f))),
  ];
  return missing.length ? `library source changed (missing: ${missing.join(" | ")})` : undefined;
}

const squash = (s: string) => s.replace(/\s+/g, " ");

function patchMuxer(
  muxer: YamuxMuxerShape,
  threshold: number,
  grantWindow: number,
  onSkip: ((reason: string) => void) | undefined,
): void {
  const newStream = muxer._newStream;
  if (typeof newStream !== "function") {
    onSkip?.("muxer has no _newStream");
    return;
  }
  let verdict: string | undefined | null = null; // null = not checked yet
  muxer._newStream = function (streamId, state, direction) {
    const stream = newStream.call(this, streamId, state, direction);
    if (verdict === null) {
      verdict = checkYamuxStream(stream);
      if (verdict) onSkip?.(verdict);
    }
    if (!verdict) patchStream(stream, state, threshold, grantWindow);
    return stream;
  };
}

function patchStream(
  stream: YamuxStreamShape,
  /** The state the stream was created in: Init (outbound) or SYNReceived (inbound). */
  handshakeState: number,
  threshold: number,
  grantWindow: number,
): void {
  const original = Object.getPrototypeOf(stream).sendWindowUpdate as (this: unknown) => void;
  let first = true;
  stream.sendWindowUpdate = function (this: YamuxStreamShape): void {
    if (first) {
      // The first update carries SYN (outbound) or follows the first data frame (inbound):
      // grant the big window here, the way go-yamux announces InitialStreamWindowSize.
      first = false;
      if (grantWindow > this.recvWindow) {
        this.recvWindow = Math.min(grantWindow, this.maxStreamWindowSize);
      }
      return original.call(this);
    }
    // Until the handshake flags are sent the library must run (it sets SYN/ACK).
    if (
      this.state !== handshakeState &&
      this.recvWindow - this.recvWindowCapacity < this.recvWindow * threshold
    ) return;
    original.call(this);
  };
}

/** The raw @libp2p/tcp connection fields {@link patchTcpWrites} uses. */
interface TcpMaConnShape {
  socket?: { write(b: Uint8Array): boolean };
  sendData?: (data: Iterable<Uint8Array> & { subarray(): Uint8Array; byteLength: number }) => {
    sentBytes: number;
    canSendMore: boolean;
  };
}

/** Statement of @libp2p/tcp 11.0.x `sendData` that the patch replaces. */
const TCP_SEND_FINGERPRINT = "canSendMore = this.socket.write(buf)";

/**
 * Makes a new TCP connection write each Noise frame with one `socket.write` (one contiguous
 * copy) instead of one per chunk. Returns false, leaving the connection alone, when it does
 * not look like @libp2p/tcp 11.0.x.
 *
 * @example
 * ```ts
 * libp2p.addEventListener("connection:open", (e) => patchTcpWrites(e.detail));
 * ```
 */
export function patchTcpWrites(connection: unknown): boolean {
  const maConn = (connection as { maConn?: TcpMaConnShape }).maConn;
  const socket = maConn?.socket;
  const original = maConn?.sendData;
  if (!maConn || !socket || typeof original !== "function") return false;
  if (typeof socket.write !== "function") return false;
  if (!String(original).includes(TCP_SEND_FINGERPRINT)) return false;
  maConn.sendData = (data) => {
    const buf = data.subarray(); // copies only when the list holds more than one chunk
    return { sentBytes: buf.byteLength, canSendMore: socket.write(buf) };
  };
  return true;
}
