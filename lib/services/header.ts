/** Reads the small header that opens a stream of our protocols, with a deadline. */
import type { NodeStream } from "../node/stream.ts";
import { concatBytes } from "../util/bytes.ts";
import { InputError } from "../util/errors.ts";
import { clampTimerMs } from "../util/timer.ts";

/**
 * Reads from `reader` until `parse` recognises a header at the start of what arrived, and
 * returns it with the bytes after it (`length`: how many bytes the header took). The stream is reset if that takes longer than
 * `timeoutMs`.
 *
 * @throws {InputError} `HEADER_MISSING` when the stream ends first, `HEADER_TOO_LONG` past
 * `maxBytes`; whatever `parse` throws; the stream's error after a reset.
 * @example
 * ```ts ignore
 * const reader = stream[Symbol.asyncIterator]();
 * const { value, rest } = await readHeader(stream, reader, parseServiceRequest, 10_000, 257);
 * ```
 */
export async function readHeader<T extends { length: number }>(
  stream: Pick<NodeStream, "reset">,
  reader: AsyncIterator<Uint8Array>,
  parse: (bytes: Uint8Array) => T | undefined,
  timeoutMs: number,
  maxBytes: number,
): Promise<{ value: T; rest: Uint8Array }> {
  let buffered: Uint8Array = new Uint8Array(0);
  const timer = setTimeout(() => stream.reset(), clampTimerMs(timeoutMs));
  try {
    while (true) {
      const value = parse(buffered);
      if (value !== undefined) {
        return { value, rest: buffered.subarray(value.length) };
      }
      if (buffered.length > maxBytes) {
        throw new InputError("HEADER_TOO_LONG", `Header longer than ${maxBytes} bytes`);
      }
      const next = await reader.next();
      if (next.done) throw new InputError("HEADER_MISSING", "The stream ended before its header");
      buffered = buffered.length === 0 ? next.value : concatBytes([buffered, next.value]);
    }
  } finally {
    clearTimeout(timer);
  }
}
