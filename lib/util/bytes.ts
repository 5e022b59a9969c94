/** Byte helpers shared by the transport and the data planes. */

/** A byte chunk: a `Uint8Array`, or a list of them that flattens (`Uint8ArrayList`). */
export type ByteChunk = Uint8Array | { readonly byteLength: number; subarray(): Uint8Array };

/**
 * Joins `chunks` into one new array; `bytes` is their total length when the caller knows it.
 *
 * @example
 * ```ts
 * concatBytes([Uint8Array.of(1), Uint8Array.of(2, 3)]); // Uint8Array [1, 2, 3]
 * ```
 */
export function concatBytes(
  chunks: readonly ByteChunk[],
  bytes = chunks.reduce((n, c) => n + c.byteLength, 0),
): Uint8Array {
  const out = new Uint8Array(bytes);
  let at = 0;
  for (const c of chunks) {
    const b = c instanceof Uint8Array ? c : c.subarray();
    out.set(b, at);
    at += b.length;
  }
  return out;
}
