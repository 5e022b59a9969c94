/** Go-compatible AES-256-GCM sealing of gossip payloads: hex(nonce ‖ ciphertext ‖ tag). */
import { InputError } from "../util/errors.ts";

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const encoder = new TextEncoder();
const aesKeys = new Map<string, Promise<CryptoKey>>();
const AES_KEY_CACHE_LIMIT = 16;

/**
 * Seals `plaintext` under the seal-key string (its ASCII bytes, zero-padded or cut to 32, are
 * the AES-256 key) with a random nonce; returns lowercase hex, as Go EdgeVPN's `AESEncrypt`.
 *
 * @example
 * ```ts
 * const hex = await seal("a89467c668bac45b14921cf589c02fb8", new TextEncoder().encode("foo"));
 * hex.length; // 62
 * ```
 */
export async function seal(
  key: string,
  plaintext: Uint8Array,
  nonce: Uint8Array = crypto.getRandomValues(new Uint8Array(NONCE_BYTES)),
): Promise<string> {
  return toHex(await sealRaw(key, plaintext, nonce));
}

/**
 * {@link seal} without the hex: nonce ‖ ciphertext ‖ tag as bytes (for writers that put the
 * hex straight into a larger buffer).
 *
 * @example
 * ```ts
 * const raw = await sealRaw("a89467c668bac45b14921cf589c02fb8", new Uint8Array(3));
 * raw.length; // 31
 * ```
 */
export async function sealRaw(
  key: string,
  plaintext: Uint8Array,
  nonce: Uint8Array = crypto.getRandomValues(new Uint8Array(NONCE_BYTES)),
): Promise<Uint8Array> {
  const ct = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: nonce as BufferSource },
      await aesKey(key),
      plaintext as BufferSource,
    ),
  );
  const out = new Uint8Array(NONCE_BYTES + ct.length);
  out.set(nonce);
  out.set(ct, NONCE_BYTES);
  return out;
}

/**
 * Opens a sealed hex string; throws {@link InputError} (code `SEAL_INVALID`) for odd-length,
 * non-hex, truncated or tampered input, or a wrong key.
 *
 * @example
 * ```ts
 * const key = "a89467c668bac45b14921cf589c02fb8";
 * const bytes = await openSealed(key, await seal(key, new Uint8Array([1, 2])));
 * ```
 */
export async function openSealed(key: string, sealed: string): Promise<Uint8Array> {
  return await openSealedRaw(key, fromHex(sealed));
}

/**
 * Opens nonce ‖ ciphertext ‖ tag bytes (a sealed message with its hex already decoded, see
 * {@link hexBytesToBytes}); throws {@link InputError} `SEAL_INVALID` as {@link openSealed}.
 *
 * @example
 * ```ts
 * const key = "a89467c668bac45b14921cf589c02fb8";
 * await openSealedRaw(key, await sealRaw(key, new Uint8Array([1]))); // Uint8Array [1]
 * ```
 */
export async function openSealedRaw(key: string, bytes: Uint8Array): Promise<Uint8Array> {
  if (bytes.length < NONCE_BYTES + TAG_BYTES) {
    throw new InputError(
      "SEAL_INVALID",
      `Cannot open sealed message: expected at least ${
        NONCE_BYTES + TAG_BYTES
      } bytes, got ${bytes.length}`,
    );
  }
  try {
    return new Uint8Array(
      await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: bytes.subarray(0, NONCE_BYTES) as BufferSource },
        await aesKey(key),
        bytes.subarray(NONCE_BYTES) as BufferSource,
      ),
    );
  } catch {
    throw new InputError(
      "SEAL_INVALID",
      "Cannot open sealed message: authentication failed (tampered, or sealed with another key)",
    );
  }
}

/**
 * Lowercase hex of bytes.
 *
 * @example
 * ```ts
 * toHex(new Uint8Array([0, 255])); // "00ff"
 * ```
 */
export function toHex(bytes: Uint8Array): string {
  // Hex digits as ASCII bytes, decoded in one call: string concatenation of a multi-megabyte
  // block took seconds (and blocked the event loop).
  const out = new Uint8Array(bytes.length * 2);
  writeHex(bytes, out, 0);
  return utf8.decode(out);
}

/**
 * Writes the lowercase hex digits of `bytes` as ASCII into `out` from `at`.
 *
 * @example
 * ```ts
 * const out = new Uint8Array(4);
 * writeHex(new Uint8Array([0, 255]), out, 0); // out holds "00ff"
 * ```
 */
export function writeHex(bytes: Uint8Array, out: Uint8Array, at: number): void {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    out[at + 2 * i] = HEX_DIGITS[b >> 4];
    out[at + 2 * i + 1] = HEX_DIGITS[b & 15];
  }
}

/**
 * Strict hex decoding (either case); throws {@link InputError} `SEAL_INVALID` on bad input.
 *
 * @example
 * ```ts
 * fromHex("00ff"); // Uint8Array [0, 255]
 * ```
 */
export function fromHex(text: string): Uint8Array<ArrayBuffer> {
  if (text.length % 2 !== 0) {
    throw new InputError(
      "SEAL_INVALID",
      `Cannot open sealed message: expected even-length hex, got ${text.length} characters`,
    );
  }
  // A non-ASCII character becomes a multi-byte sequence with no hex digit in it.
  return hexBytesToBytes(encoder.encode(text));
}

/**
 * Strict hex decoding of ASCII bytes; throws {@link InputError} `SEAL_INVALID` on bad input.
 *
 * @example
 * ```ts
 * hexBytesToBytes(new TextEncoder().encode("00ff")); // Uint8Array [0, 255]
 * ```
 */
export function hexBytesToBytes(chars: Uint8Array): Uint8Array<ArrayBuffer> {
  if (chars.length % 2 !== 0) {
    throw new InputError(
      "SEAL_INVALID",
      `Cannot open sealed message: expected even-length hex, got ${chars.length} characters`,
    );
  }
  const out = new Uint8Array(chars.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = NIBBLE[chars[2 * i]];
    const lo = NIBBLE[chars[2 * i + 1]];
    if ((hi | lo) < 0) {
      throw new InputError(
        "SEAL_INVALID",
        `Cannot open sealed message: expected hex, got a non-hex character near offset ${2 * i}`,
      );
    }
    out[i] = hi << 4 | lo;
  }
  return out;
}

const utf8 = new TextDecoder();
const HEX_DIGITS = encoder.encode("0123456789abcdef");
/** ASCII code → hex digit value, -1 for anything else. */
const NIBBLE = Int8Array.from({ length: 256 }, (_, c) => {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
});

function aesKey(key: string): Promise<CryptoKey> {
  let k = aesKeys.get(key);
  if (!k) {
    const raw = new Uint8Array(32);
    raw.set(encoder.encode(key).subarray(0, 32));
    if (aesKeys.size >= AES_KEY_CACHE_LIMIT) aesKeys.clear();
    k = crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
    aesKeys.set(key, k);
  }
  return k;
}
