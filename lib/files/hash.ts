/** Incremental SHA-256 for files streamed from and to disk (Web Crypto hashes only whole buffers). */
import { createSHA256, type IHasher } from "hash-wasm";

/** Bytes read per call when hashing a file. */
const READ_BYTES = 1 << 20;

/**
 * A SHA-256 fed piece by piece.
 *
 * @example
 * ```ts
 * const h = await Sha256.create();
 * h.update(new TextEncoder().encode("abc"));
 * h.digest(); // the 32 bytes of SHA-256("abc"): ba 78 16 bf …
 * ```
 */
export class Sha256 {
  readonly #hasher: IHasher;

  private constructor(hasher: IHasher) {
    this.#hasher = hasher;
  }

  /** A new, empty hash. */
  static async create(): Promise<Sha256> {
    const hasher = await createSHA256();
    hasher.init();
    return new Sha256(hasher);
  }

  /** Adds `bytes`. */
  update(bytes: Uint8Array): void {
    this.#hasher.update(bytes);
  }

  /** The digest of everything added; the hash cannot be fed afterwards. */
  digest(): Uint8Array {
    return this.#hasher.digest("binary");
  }
}

/**
 * Feeds the first `limit` bytes of the file at `path` (all of it by default) to `hash`;
 * returns how many bytes it read.
 *
 * @example
 * ```ts ignore
 * const h = await Sha256.create();
 * await hashFileInto(h, "/etc/hostname");
 * ```
 */
export async function hashFileInto(
  hash: Sha256,
  path: string,
  limit = Number.MAX_SAFE_INTEGER,
  signal?: AbortSignal,
): Promise<number> {
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(READ_BYTES);
  let total = 0;
  while (total < limit) {
    signal?.throwIfAborted();
    const n = await file.read(buffer.subarray(0, Math.min(READ_BYTES, limit - total)));
    if (n === null) break;
    hash.update(buffer.subarray(0, n));
    total += n;
  }
  return total;
}

/**
 * Lower-case hex of `bytes`.
 *
 * @example
 * ```ts
 * toHex(Uint8Array.of(1, 255)); // "01ff"
 * ```
 */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}
