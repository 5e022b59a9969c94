/** EdgeVPN's TOTP variant (HMAC-SHA-256, base64 of the whole MAC, truncated) and MD5 hex. */
import { createHash } from "node:crypto";

/** Length of base64 of a 32-byte MAC: the longest code the primitive can produce. */
export const MAX_OTP_LENGTH = 44;
const DEFAULT_DIGITS = 6;

/**
 * One rotating secret: `key` is the raw TOTP secret, `interval` its step in seconds and
 * `length` the number of characters kept from the code.
 *
 * @example
 * ```ts
 * const dht: OtpSettings = { interval: 360, key: "k1", length: 43 };
 * ```
 */
export interface OtpSettings {
  interval: number;
  key: string;
  length: number;
}
const encoder = new TextEncoder();
const hmacKeys = new Map<string, Promise<CryptoKey>>();
const HMAC_KEY_CACHE_LIMIT = 64;

/**
 * The time-step counter of a TOTP window: `floor(unixSeconds / interval)`.
 *
 * @example
 * ```ts
 * otpCounter(1700000000, 360); // 4722222
 * ```
 */
export function otpCounter(unixSeconds: number, intervalSeconds: number): number {
  return Math.floor(Math.floor(unixSeconds) / intervalSeconds);
}

/**
 * Computes Go EdgeVPN's TOTP code: HMAC-SHA-256 keyed by the raw UTF-8 key string over the
 * big-endian 64-bit counter, standard base64 of the full MAC, first `digits` characters
 * (`digits <= 0` means 6).
 *
 * @example
 * ```ts
 * await totp("key", 43, 9000, 0); // "FWxpHJEHjHtUosx+20ypNJXYCE3aqFMsjtGGk1F7rK8"
 * ```
 */
export async function totp(
  key: string,
  digits: number,
  intervalSeconds: number,
  unixSeconds: number,
): Promise<string> {
  if (!(intervalSeconds > 0)) {
    throw new RangeError(`OTP interval must be > 0 seconds, got ${intervalSeconds}`);
  }
  const counter = otpCounter(unixSeconds, intervalSeconds);
  const message = new Uint8Array(8);
  new DataView(message.buffer).setBigUint64(0, BigInt(counter));
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(key), message));
  const code = btoa(String.fromCharCode(...mac));
  const n = digits <= 0 ? DEFAULT_DIGITS : Math.min(digits, MAX_OTP_LENGTH);
  return code.slice(0, n);
}

/**
 * Lowercase hex MD5 of the UTF-8 bytes of `text` (Go's `crypto.MD5`).
 *
 * @example
 * ```ts
 * md5Hex(""); // "d41d8cd98f00b204e9800998ecf8427e"
 * ```
 */
export function md5Hex(text: string): string {
  return createHash("md5").update(text, "utf8").digest("hex");
}

function hmacKey(key: string): Promise<CryptoKey> {
  let k = hmacKeys.get(key);
  if (!k) {
    if (hmacKeys.size >= HMAC_KEY_CACHE_LIMIT) hmacKeys.clear();
    k = crypto.subtle.importKey(
      "raw",
      encoder.encode(key),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    hmacKeys.set(key, k);
  }
  return k;
}
