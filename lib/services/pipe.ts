/** Copies bytes both ways between a peer's stream and a TCP connection: services, egress, proxy. */
import type { NodeStream } from "../node/stream.ts";
import { clampTimerMs } from "../util/timer.ts";

/** Largest read from the connection unless asked otherwise (see {@link PipeOptions.readBytes}). */
const READ_BYTES = 64 * 1024;
/** A larger read for streams that mostly carry bulk data (exposed services). */
export const BULK_READ_BYTES = 256 * 1024;
/** How long a finished pipe waits for the peer to end the stream before resetting it. */
const LINGER_MS = 10_000;

/** What a finished pipe moved, and whether it ended without an error. */
export interface PipeResult {
  /** Bytes read from the connection and written to the stream. */
  toStream: number;
  /** Bytes read from the stream and written to the connection. */
  toConn: number;
  /** False when either side failed (the stream was then reset). */
  clean: boolean;
}

/** Options of {@link pipeStream}. */
export interface PipeOptions {
  /**
   * Bytes that go to the connection before anything read from the stream (those already read
   * with a header, or a request head to forward).
   */
  toConnFirst?: Uint8Array;
  /** Bytes that go to the stream before anything read from the connection. */
  toStreamFirst?: Uint8Array;
  /** The stream's iterator, when the caller has already read from it. */
  reader?: AsyncIterator<Uint8Array>;
  /**
   * When the pipe is over: `both` (default) once both directions ended, each end passed on as
   * a half-close (TCP FIN ↔ stream close), so a client that shuts down its writing side still
   * gets the whole answer; `stream` as soon as the stream ends (an HTTP response relayed to a
   * client); `conn` as soon as the connection ends (a destination's response relayed to a peer).
   */
  until?: "both" | "stream" | "conn";
  /**
   * Largest read from the connection (default 64 KiB): one write to the stream carries at most
   * this much.
   */
  readBytes?: number;
  /** Aborting ends the pipe at once: the stream is reset and the connection closed. */
  signal?: AbortSignal;
}

/**
 * Moves bytes between `stream` and `conn` until the pipe is over (see
 * {@link PipeOptions.until}), then closes the connection. Writes wait for the other side to
 * drain, so a slow reader slows the writer instead of filling memory. An error on either side
 * resets the stream and closes the connection; a clean end waits for the peer to end the stream
 * (see {@link lingerThenReset}).
 *
 * @example
 * ```ts ignore
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: 22 });
 * const { toStream, toConn } = await pipeStream(stream, conn);
 * ```
 */
export async function pipeStream(
  stream: NodeStream,
  conn: Deno.Conn,
  options: PipeOptions = {},
): Promise<PipeResult> {
  const result: PipeResult = { toStream: 0, toConn: 0, clean: true };
  const until = options.until ?? "both";
  let over = false;
  // A direction still blocked when the pipe is over (a read of the side that did not decide
  // the end) finishes by itself once its side is closed or reset.
  const { promise: ended, resolve: overSignal } = Promise.withResolvers<void>();
  let connClosed = false;
  const closeConn = () => {
    if (connClosed) return;
    connClosed = true;
    try {
      conn.close();
    } catch { /* already closed */ }
  };
  const fail = () => {
    if (over) return;
    over = true;
    result.clean = false;
    stream.reset();
    closeConn();
    overSignal();
  };
  // The side that decides the end has ended: stop the other direction without an error.
  const finish = () => {
    if (over) return;
    over = true;
    closeConn();
    overSignal();
  };
  const onAbort = () => fail();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) fail();
  if ("setNoDelay" in conn) {
    try {
      (conn as Deno.TcpConn).setNoDelay(true);
      (conn as Deno.TcpConn).setKeepAlive(true);
    } catch { /* closed already: the reads below fail */ }
  }

  const up = async () => {
    try {
      if (options.toStreamFirst !== undefined && options.toStreamFirst.length > 0) {
        await stream.write(options.toStreamFirst);
        result.toStream += options.toStreamFirst.length;
      }
      const buffer = new Uint8Array(options.readBytes ?? READ_BYTES);
      while (!over) {
        const n = await conn.read(buffer);
        if (n === null) break;
        await stream.write(buffer.slice(0, n));
        result.toStream += n;
      }
      if (over) return;
      await stream.close();
      if (until === "conn") finish();
    } catch {
      fail();
    }
  };
  const down = async () => {
    const reader = options.reader ?? stream[Symbol.asyncIterator]();
    try {
      if (options.toConnFirst !== undefined && options.toConnFirst.length > 0) {
        await writeAll(conn, options.toConnFirst);
        result.toConn += options.toConnFirst.length;
      }
      while (!over) {
        const next = await reader.next();
        if (next.done) break;
        await writeAll(conn, next.value);
        result.toConn += next.value.length;
      }
    } catch {
      fail();
      return;
    }
    if (over) return;
    if (until === "stream") {
      await stream.close().catch(() => {});
      finish();
      return;
    }
    try {
      await conn.closeWrite();
    } catch {
      // The connection is gone for writing (the other end closed it entirely): nothing is left
      // to pass on; the reading side ends by itself.
    }
  };
  void Promise.all([up(), down()]).then(() => overSignal());
  try {
    await ended;
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    closeConn();
  }
  if (result.clean) await lingerThenReset(stream);
  return result;
}

/**
 * Waits for the peer to finish a stream whose writing side we closed, resetting it when the
 * peer has not ended its side after `lingerMs`: a peer that never does must not keep the
 * stream open forever.
 *
 * @example
 * ```ts ignore
 * await stream.close();
 * await lingerThenReset(stream);
 * ```
 */
export async function lingerThenReset(stream: NodeStream, lingerMs = LINGER_MS): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), clampTimerMs(lingerMs));
  });
  try {
    if (await Promise.race([stream.closed, late]) === "late") stream.reset();
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Writes all of `bytes` to `conn` (a TCP write may take only part).
 *
 * @example
 * ```ts ignore
 * await writeAll(conn, new TextEncoder().encode("hello"));
 * ```
 */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await conn.write(bytes.subarray(at));
}
