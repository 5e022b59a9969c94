/** Copies bytes both ways between a peer's stream and a TCP connection, half-closes included. */
import type { NodeStream } from "../node/stream.ts";

/** Largest read from the TCP side: one write to the stream carries at most this much. */
const READ_BYTES = 256 * 1024;

/** What a finished pipe moved, and whether both directions ended without an error. */
export interface PipeResult {
  /** Bytes read from the TCP connection and written to the stream. */
  toStream: number;
  /** Bytes read from the stream and written to the TCP connection. */
  toConn: number;
  /** False when either side failed and the stream was reset. */
  clean: boolean;
}

/** Options of {@link pipeStream}. */
export interface PipeOptions {
  /** Bytes already read from the stream (after a header) that go to the connection first. */
  head?: Uint8Array;
  /** The stream's iterator, when the caller has already read from it. */
  reader?: AsyncIterator<Uint8Array>;
  /** Aborting ends the pipe at once: the stream is reset and the connection closed. */
  signal?: AbortSignal;
}

/**
 * Moves bytes between `stream` and `conn` until both directions have ended, then closes the
 * connection. The end of one direction is passed on as a half-close (TCP FIN ↔ stream
 * close), so a client that shuts down its writing side still gets the whole answer. Writes
 * wait for the other side to drain, so a slow reader slows the writer instead of filling
 * memory. An error on either side resets the stream and closes the connection.
 *
 * @example
 * ```ts ignore
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: 22 });
 * const { toStream, toConn } = await pipeStream(stream, conn);
 * ```
 */
export async function pipeStream(
  stream: NodeStream,
  conn: Deno.TcpConn,
  options: PipeOptions = {},
): Promise<PipeResult> {
  const result: PipeResult = { toStream: 0, toConn: 0, clean: true };
  let connClosed = false;
  const closeConn = () => {
    if (connClosed) return;
    connClosed = true;
    try {
      conn.close();
    } catch { /* already closed */ }
  };
  const fail = () => {
    if (!result.clean) return;
    result.clean = false;
    stream.reset();
    closeConn();
  };
  const onAbort = () => fail();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) fail();
  try {
    conn.setNoDelay(true);
    conn.setKeepAlive(true);
  } catch { /* closed already: the reads below fail */ }

  const up = async () => {
    const buffer = new Uint8Array(READ_BYTES);
    try {
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) break;
        await stream.write(buffer.slice(0, n));
        result.toStream += n;
      }
      await stream.close();
    } catch {
      fail();
    }
  };
  const down = async () => {
    const reader = options.reader ?? stream[Symbol.asyncIterator]();
    try {
      if (options.head !== undefined && options.head.length > 0) {
        await writeAll(conn, options.head);
        result.toConn += options.head.length;
      }
      while (true) {
        const next = await reader.next();
        if (next.done) break;
        await writeAll(conn, next.value);
        result.toConn += next.value.length;
      }
    } catch {
      fail();
      return;
    }
    try {
      await conn.closeWrite();
    } catch {
      // The connection is gone for writing (the other end closed it entirely): nothing is
      // left to pass on; the reading side ends by itself.
    }
  };
  try {
    await Promise.all([up(), down()]);
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    closeConn();
  }
  return result;
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
