/** DNS over TCP framing (RFC 1035 §4.2.2): a 16-bit length before each message, read with a size limit. */

/** Something bytes are read from (a `Deno.Conn`). */
export interface ByteReader {
  read(into: Uint8Array): Promise<number | null>;
}

/** Something bytes are written to (a `Deno.Conn`). */
export interface ByteWriter {
  write(bytes: Uint8Array): Promise<number>;
}

/** Why a framed message could not be read. */
export type FrameError = "eof" | "oversize" | "truncated";

/** The result of {@link readFrame}: the message, or why there is none. */
export type FrameResult = { ok: true; message: Uint8Array } | { ok: false; error: FrameError };

/**
 * Reads one length-prefixed message of at most `maxBytes` bytes. A clean end of stream before
 * the length gives `eof`; a zero or too large length gives `oversize` before anything is
 * allocated; an end of stream inside the frame gives `truncated`.
 *
 * @example
 * ```ts ignore
 * const frame = await readFrame(conn, 4096);
 * if (frame.ok) handle(frame.message);
 * ```
 */
export async function readFrame(reader: ByteReader, maxBytes: number): Promise<FrameResult> {
  const head = new Uint8Array(2);
  const got = await readFull(reader, head);
  if (got === 0) return { ok: false, error: "eof" };
  if (got < 2) return { ok: false, error: "truncated" };
  const length = (head[0] << 8) | head[1];
  if (length === 0 || length > maxBytes) return { ok: false, error: "oversize" };
  const message = new Uint8Array(length);
  if (await readFull(reader, message) < length) return { ok: false, error: "truncated" };
  return { ok: true, message };
}

/**
 * A message with its 16-bit length prefix.
 *
 * @example
 * ```ts
 * frame(new Uint8Array(3)); // Uint8Array [0, 3, 0, 0, 0]
 * ```
 */
export function frame(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(message.length + 2);
  out[0] = message.length >> 8;
  out[1] = message.length & 0xff;
  out.set(message, 2);
  return out;
}

/**
 * Writes all of `bytes`.
 *
 * @example
 * ```ts ignore
 * await writeAll(conn, frame(bytes));
 * ```
 */
export async function writeAll(writer: ByteWriter, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await writer.write(bytes.subarray(done));
}

async function readFull(reader: ByteReader, into: Uint8Array): Promise<number> {
  let done = 0;
  while (done < into.length) {
    const n = await reader.read(into.subarray(done));
    if (n === null) break;
    done += n;
  }
  return done;
}
