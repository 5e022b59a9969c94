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
  return toHex(out);
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
  const bytes = fromHex(sealed);
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
        { name: "AES-GCM", iv: bytes.subarray(0, NONCE_BYTES) },
        await aesKey(key),
        bytes.subarray(NONCE_BYTES),
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
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]];
  return s;
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
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = nibble(text.charCodeAt(2 * i));
    const lo = nibble(text.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) {
      throw new InputError(
        "SEAL_INVALID",
        `Cannot open sealed message: expected hex, got a non-hex character near offset ${2 * i}`,
      );
    }
    out[i] = hi << 4 | lo;
  }
  return out;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function nibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

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
