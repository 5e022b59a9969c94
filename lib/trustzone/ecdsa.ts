/**
 * Go EdgeVPN's ECDSA trust-zone keys and signatures (P-521) in its exact text formats:
 * base64url (padded) of PEM "EC PRIVATE KEY" (SEC1), "EC PUBLIC KEY" (PKIX) and "SIGNATURE"
 * (ASN.1 SEQUENCE{R, S}); the signed "hash" is the 64 ASCII bytes of the hex SHA-256 of the data.
 */
import { p521 } from "@noble/curves/nist.js";
import { InputError } from "../util/errors.ts";

/** secp521r1 (1.3.132.0.35) and id-ecPublicKey (1.2.840.10045.2.1), DER-encoded. */
const OID_P521 = Uint8Array.of(0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23);
const OID_EC_PUBLIC_KEY = Uint8Array.of(0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01);
const SCALAR_BYTES = 66;
const POINT_BYTES = 133;
/** Longest key or signature text accepted (a P-521 private key is ~400 characters). */
const MAX_TEXT = 4096;

/**
 * A new key pair, as `edgevpn peergater ecdsa-genkey` prints it.
 *
 * @example
 * ```ts
 * const { privateKey, publicKey } = generateEcdsaKeys();
 * ```
 */
export function generateEcdsaKeys(): { privateKey: string; publicKey: string } {
  const secretKey = p521.utils.randomSecretKey();
  const point = p521.getPublicKey(secretKey, false);
  const sec1 = der(0x30, [
    der(0x02, [Uint8Array.of(1)]),
    der(0x04, [secretKey]),
    der(0xa0, [OID_P521]),
    der(0xa1, [der(0x03, [Uint8Array.of(0), point])]),
  ]);
  return {
    privateKey: armor("EC PRIVATE KEY", sec1),
    publicKey: armor("EC PUBLIC KEY", pkix(point)),
  };
}

/**
 * Signs `data` as Go's provider does (`sign(privkey, data)`).
 *
 * @throws {InputError} `TRUSTZONE_KEY_INVALID` when `privateKey` is not such a key.
 * @example
 * ```ts ignore
 * const sig = signEcdsa(privateKey, new TextEncoder().encode("challenge"));
 * ```
 */
export function signEcdsa(privateKey: string, data: Uint8Array): Promise<string> {
  const secret = parsePrivateKey(privateKey);
  return digestInput(data).then((input) => {
    const sig = p521.sign(input, secret, { prehash: false, lowS: false, format: "der" });
    return armor("SIGNATURE", sig);
  });
}

/**
 * Whether `signature` (Go's text form) signs `data` under `publicKey` (Go's text form); false
 * for anything malformed.
 *
 * @example
 * ```ts ignore
 * await verifyEcdsa(publicKey, sig, new TextEncoder().encode("challenge")); // true
 * ```
 */
export async function verifyEcdsa(
  publicKey: string,
  signature: string,
  data: Uint8Array,
): Promise<boolean> {
  let point: Uint8Array;
  let sig: Uint8Array;
  try {
    point = parsePublicKey(publicKey);
    sig = unarmor(signature, "SIGNATURE");
  } catch {
    return false;
  }
  try {
    return p521.verify(sig, await digestInput(data), point, {
      prehash: false,
      lowS: false,
      format: "der",
    });
  } catch {
    return false;
  }
}

/**
 * The public key (Go's text form) of a private key (Go's text form).
 *
 * @throws {InputError} `TRUSTZONE_KEY_INVALID`.
 * @example
 * ```ts
 * publicKeyOf(generateEcdsaKeys().privateKey);
 * ```
 */
export function publicKeyOf(privateKey: string): string {
  return armor("EC PUBLIC KEY", pkix(p521.getPublicKey(parsePrivateKey(privateKey), false)));
}

// Go hashes with SHA-256 and hands the lowercase hex text (64 bytes) to ecdsa.Sign as the hash.
async function digestInput(data: Uint8Array): Promise<Uint8Array> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", data as BufferSource));
  const hex = Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
  return new TextEncoder().encode(hex);
}

function pkix(point: Uint8Array): Uint8Array {
  return der(0x30, [
    der(0x30, [OID_EC_PUBLIC_KEY, OID_P521]),
    der(0x03, [Uint8Array.of(0), point]),
  ]);
}

function parsePrivateKey(text: string): Uint8Array {
  const body = unarmor(text, "EC PRIVATE KEY");
  const seq = readDer(body, 0, 0x30);
  const version = readDer(body, seq.start, 0x02);
  const key = readDer(body, version.end, 0x04);
  if (key.end - key.start !== SCALAR_BYTES) throw invalidKey("not a P-521 private key");
  return body.slice(key.start, key.end);
}

function parsePublicKey(text: string): Uint8Array {
  const body = unarmor(text, "EC PUBLIC KEY");
  const seq = readDer(body, 0, 0x30);
  const alg = readDer(body, seq.start, 0x30);
  const curve = body.subarray(alg.start, alg.end);
  if (!endsWith(curve, OID_P521)) throw invalidKey("not a P-521 public key");
  const bits = readDer(body, alg.end, 0x03);
  const point = body.subarray(bits.start + 1, bits.end);
  if (point.length !== POINT_BYTES || point[0] !== 4) throw invalidKey("bad point");
  return point.slice();
}

function endsWith(a: Uint8Array, b: Uint8Array): boolean {
  return a.length >= b.length && b.every((x, i) => a[a.length - b.length + i] === x);
}

function der(tag: number, parts: Uint8Array[]): Uint8Array {
  const length = parts.reduce((n, p) => n + p.length, 0);
  const head = length < 0x80
    ? [tag, length]
    : length < 0x100
    ? [tag, 0x81, length]
    : [tag, 0x82, length >> 8, length & 0xff];
  const out = new Uint8Array(head.length + length);
  out.set(head);
  let at = head.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function readDer(buf: Uint8Array, at: number, tag: number): { start: number; end: number } {
  if (buf[at] !== tag) throw invalidKey(`expected DER tag ${tag}`);
  let length = buf[at + 1];
  let start = at + 2;
  if (length === 0x81) {
    length = buf[at + 2];
    start = at + 3;
  } else if (length === 0x82) {
    length = (buf[at + 2] << 8) | buf[at + 3];
    start = at + 4;
  } else if (length >= 0x80) throw invalidKey("unsupported DER length");
  if (length === undefined || start + length > buf.length) throw invalidKey("truncated DER");
  return { start, end: start + length };
}

/** base64url(PEM(type, body)), with padding, as Go's `base64.URLEncoding`. */
function armor(type: string, body: Uint8Array): string {
  const b64 = btoa(String.fromCharCode(...body));
  const lines = b64.match(/.{1,64}/g) ?? [];
  const pem = `-----BEGIN ${type}-----\n${lines.join("\n")}\n-----END ${type}-----\n`;
  return btoa(pem).replaceAll("+", "-").replaceAll("/", "_");
}

function unarmor(text: string, type: string): Uint8Array {
  if (text.length > MAX_TEXT) throw invalidKey(`${text.length} characters`);
  let pem: string;
  try {
    pem = atob(text.trim().replaceAll("-", "+").replaceAll("_", "/"));
  } catch {
    throw invalidKey("not base64url");
  }
  const m = pem.match(
    new RegExp(`-----BEGIN ${type}-----\\r?\\n([A-Za-z0-9+/=\\r\\n]+)-----END ${type}-----`),
  );
  if (!m) throw invalidKey(`no PEM block of type ${type}`);
  try {
    return Uint8Array.from(atob(m[1].replace(/\s/g, "")), (c) => c.charCodeAt(0));
  } catch {
    throw invalidKey("bad PEM body");
  }
}

function invalidKey(why: string): InputError {
  return new InputError("TRUSTZONE_KEY_INVALID", `Cannot read a trust-zone ECDSA key: ${why}`);
}
