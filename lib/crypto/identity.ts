/** Ed25519 node identity in libp2p's formats (protobuf keys, peer IDs) on Web Crypto alone. */
import { base58btc } from "multiformats/bases/base58";
import { EdgeVpnError, InputError } from "../util/errors.ts";

const ED25519_KEY_TYPE = 1;
/** PKCS#8 prefix of an Ed25519 private key; the 32-byte seed follows it. */
const PKCS8_ED25519_PREFIX = Uint8Array.from([
  0x30,
  0x2e,
  0x02,
  0x01,
  0x00,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x04,
  0x22,
  0x04,
  0x20,
]);
/** Identity multihash (0x00, length 36) then the public-key protobuf header (type 1, 32 bytes). */
const PEER_ID_PREFIX = Uint8Array.from([0x00, 0x24, 0x08, 0x01, 0x12, 0x20]);

/**
 * A node's Ed25519 identity: signs ledger entries and becomes the libp2p host key.
 *
 * @example
 * ```ts
 * const id = await generateIdentity();
 * const sig = await id.sign(new TextEncoder().encode("hi"));
 * await verifyPeerSignature(id.peerId, new TextEncoder().encode("hi"), sig); // true
 * ```
 */
export interface Identity {
  /** Base58btc peer ID, `12D3KooW…`. */
  readonly peerId: string;
  /** 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** libp2p protobuf of the private key (the format of Go's `privkey` cache file). */
  readonly privateKeyProtobuf: Uint8Array;
  /** Plain 64-byte Ed25519 signature of `data`. */
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/**
 * Creates a fresh random Ed25519 identity.
 *
 * @example
 * ```ts
 * const id = await generateIdentity();
 * id.peerId.startsWith("12D3KooW"); // true
 * ```
 */
export async function generateIdentity(): Promise<Identity> {
  const seed = crypto.getRandomValues(new Uint8Array(32));
  return await identityFromSeed(seed);
}

/**
 * Builds the identity of a 32-byte Ed25519 seed (deterministic).
 *
 * @example
 * ```ts
 * const id = await identityFromSeed(new Uint8Array(32));
 * ```
 */
export async function identityFromSeed(seed: Uint8Array): Promise<Identity> {
  if (seed.length !== 32) {
    throw new EdgeVpnError("KEY_INVALID", `Ed25519 seed must be 32 bytes, got ${seed.length}`);
  }
  const pkcs8 = new Uint8Array(PKCS8_ED25519_PREFIX.length + 32);
  pkcs8.set(PKCS8_ED25519_PREFIX);
  pkcs8.set(seed, PKCS8_ED25519_PREFIX.length);
  const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, [
    "sign",
  ]);
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  const publicKey = base64UrlDecode(jwk.x ?? "");
  const raw = new Uint8Array(64);
  raw.set(seed);
  raw.set(publicKey, 32);
  const peerId = peerIdFromPublicKey(publicKey);
  return {
    peerId,
    publicKey,
    privateKeyProtobuf: encodeKeyProtobuf(raw),
    sign: async (data) =>
      new Uint8Array(await crypto.subtle.sign("Ed25519", privateKey, data as BufferSource)),
  };
}

/**
 * Reads a libp2p protobuf private key (Go's `privkey` cache file); only Ed25519 is supported.
 *
 * @example
 * ```ts
 * const id = await generateIdentity();
 * const same = await identityFromProtobuf(id.privateKeyProtobuf);
 * same.peerId === id.peerId; // true
 * ```
 */
export async function identityFromProtobuf(bytes: Uint8Array): Promise<Identity> {
  // Fields: 1 = key type (varint), 2 = key data (bytes); Go writes them in that order.
  if (
    bytes.length !== 68 || bytes[0] !== 0x08 || bytes[2] !== 0x12 || bytes[3] !== 0x40
  ) {
    throw new EdgeVpnError(
      "KEY_INVALID",
      `Cannot read private key: expected a 68-byte libp2p Ed25519 protobuf, got ${bytes.length} bytes`,
    );
  }
  if (bytes[1] !== ED25519_KEY_TYPE) {
    throw new EdgeVpnError(
      "KEY_INVALID",
      `Cannot read private key: expected key type Ed25519 (1), got ${bytes[1]}`,
    );
  }
  const identity = await identityFromSeed(bytes.slice(4, 36));
  const storedPublic = bytes.slice(36, 68);
  if (!equalBytes(storedPublic, identity.publicKey)) {
    throw new EdgeVpnError(
      "KEY_INVALID",
      "Cannot read private key: its public half does not match its seed",
    );
  }
  return identity;
}

/**
 * The peer ID (`12D3KooW…`) of a 32-byte Ed25519 public key.
 *
 * @example
 * ```ts
 * peerIdFromPublicKey(new Uint8Array(32)).length; // 52
 * ```
 */
export function peerIdFromPublicKey(publicKey: Uint8Array): string {
  const mh = new Uint8Array(PEER_ID_PREFIX.length + 32);
  mh.set(PEER_ID_PREFIX);
  mh.set(publicKey, PEER_ID_PREFIX.length);
  return base58btc.baseEncode(mh);
}

/**
 * Extracts the Ed25519 public key inlined in a peer ID.
 *
 * @throws {InputError} when the text is not an Ed25519 peer ID (RSA and hashed IDs included).
 * @example
 * ```ts
 * const id = await generateIdentity();
 * publicKeyFromPeerId(id.peerId); // id.publicKey
 * ```
 */
export function publicKeyFromPeerId(peerId: string): Uint8Array {
  // Base58 decoding takes time quadratic in the length (5 000 characters: 50 ms): Ed25519 peer
  // IDs have 52, so anything much longer is refused before decoding.
  if (peerId.length > MAX_PEER_ID_LENGTH) {
    throw new InputError(
      "PEER_ID_INVALID",
      `Cannot decode peer ID: expected at most ${MAX_PEER_ID_LENGTH} characters, got ${peerId.length}`,
    );
  }
  let mh: Uint8Array;
  try {
    mh = base58btc.baseDecode(peerId);
  } catch {
    throw new InputError("PEER_ID_INVALID", `Cannot decode peer ID ${JSON.stringify(peerId)}`);
  }
  if (mh.length !== 38 || !equalBytes(mh.subarray(0, PEER_ID_PREFIX.length), PEER_ID_PREFIX)) {
    throw new InputError(
      "PEER_ID_INVALID",
      `Peer ID ${JSON.stringify(peerId)} does not inline an Ed25519 public key`,
    );
  }
  return mh.slice(PEER_ID_PREFIX.length);
}

/** Longest text taken for a peer ID (an Ed25519 one has 52 characters). */
const MAX_PEER_ID_LENGTH = 128;

const verifyKeyCache = new Map<string, CryptoKey>();
const VERIFY_KEY_CACHE_LIMIT = 4096;

/**
 * Verifies an Ed25519 signature made by the owner of `peerId`; false for any malformed input.
 *
 * @example
 * ```ts
 * const id = await generateIdentity();
 * const data = new Uint8Array([1, 2, 3]);
 * await verifyPeerSignature(id.peerId, data, await id.sign(data)); // true
 * ```
 */
export async function verifyPeerSignature(
  peerId: string,
  data: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  if (signature.length !== 64) return false;
  let key = verifyKeyCache.get(peerId);
  if (!key) {
    let raw: Uint8Array;
    try {
      raw = publicKeyFromPeerId(peerId);
    } catch {
      return false;
    }
    try {
      key = await crypto.subtle.importKey("raw", raw as BufferSource, { name: "Ed25519" }, false, [
        "verify",
      ]);
    } catch {
      return false;
    }
    if (verifyKeyCache.size >= VERIFY_KEY_CACHE_LIMIT) verifyKeyCache.clear();
    verifyKeyCache.set(peerId, key);
  }
  try {
    return await crypto.subtle.verify(
      "Ed25519",
      key,
      signature as BufferSource,
      data as BufferSource,
    );
  } catch {
    return false;
  }
}

/**
 * True when `text` is a syntactically valid Ed25519 peer ID.
 *
 * @example
 * ```ts
 * isEd25519PeerId("hello"); // false
 * ```
 */
export function isEd25519PeerId(text: string): boolean {
  try {
    publicKeyFromPeerId(text);
    return true;
  } catch {
    return false;
  }
}

function encodeKeyProtobuf(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + data.length);
  out.set([0x08, ED25519_KEY_TYPE, 0x12, data.length]);
  out.set(data, 4);
  return out;
}

function base64UrlDecode(text: string): Uint8Array {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const padded = b64 + "=".repeat((4 - b64.length % 4) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
