/** Ledger entries (Go `SignedData`): both wire forms, canonical signing bytes, sign and verify. */

import { verifyPeerSignature } from "../crypto/identity.ts";
import { InputError } from "../util/errors.ts";
import {
  base64ToBytes,
  bytesToBase64,
  compareBytes,
  goFieldName,
  goQuote,
  JsonNumber,
  JsonObject,
  type JsonValue,
} from "./json.ts";

/** Largest uint64, the range of `Version`. */
export const UINT64_MAX = (1n << 64n) - 1n;
/** Range of `UpdatedAt` (int64). */
export const INT64_MIN = -(1n << 63n);
/** Range of `UpdatedAt` (int64). */
export const INT64_MAX = (1n << 63n) - 1n;

/**
 * One ledger entry, field for field Go's `SignedData`. Entries are immutable values: other
 * peers' entries are kept exactly as received so they re-encode byte for byte.
 */
export interface Entry {
  /** The value's JSON text (Go `Data`); `""` in tombstones. */
  readonly value: string;
  /** Base58 peer ID of the author, `""` when unsigned. */
  readonly owner: string;
  /** uint64 version, 0 when unsigned. */
  readonly version: bigint;
  /** int64 unix seconds of the write. */
  readonly updatedAt: bigint;
  /** Signed tombstone marker. */
  readonly deleted: boolean;
  /** Signature bytes; `null` is Go's nil slice (distinct from an empty one on the wire). */
  readonly sig: Uint8Array | null;
}

/** Signs canonical entry bytes; an {@link Identity} fits. */
export interface EntrySigner {
  readonly peerId: string;
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/** Checks a signature against the key inlined in a peer ID. */
export type SignatureVerifier = (
  peerId: string,
  data: Uint8Array,
  signature: Uint8Array,
) => Promise<boolean>;

/**
 * An unsigned (legacy) entry holding `value` text.
 *
 * @example
 * ```ts
 * unsignedEntry('"1"').version; // 0n
 * ```
 */
export function unsignedEntry(value: string): Entry {
  return { value, owner: "", version: 0n, updatedAt: 0n, deleted: false, sig: null };
}

/**
 * True when Go encodes the entry in the legacy form (a bare JSON string).
 *
 * @example
 * ```ts
 * isLegacyForm(unsignedEntry("x")); // true
 * ```
 */
export function isLegacyForm(e: Entry): boolean {
  return e.owner === "" && e.sig === null && !e.deleted && e.version === 0n;
}

/**
 * True when the entry carries a signature to check (a non-empty `Sig`).
 *
 * @example
 * ```ts
 * isSigned(unsignedEntry("x")); // false
 * ```
 */
export function isSigned(e: Entry): boolean {
  return e.sig !== null && e.sig.length > 0;
}

/**
 * Go's `json.Marshal(SignedData)`: a JSON string in legacy form, else the six-field object.
 *
 * @example
 * ```ts
 * encodeEntry(unsignedEntry('{"PeerID":"x"}')); // '"{\\"PeerID\\":\\"x\\"}"'
 * ```
 */
export function encodeEntry(e: Entry): string {
  if (isLegacyForm(e)) return goQuote(e.value);
  const sig = e.sig === null ? "null" : `"${bytesToBase64(e.sig)}"`;
  return `{"Value":${goQuote(e.value)},"Owner":${goQuote(e.owner)},"Version":${e.version},` +
    `"UpdatedAt":${e.updatedAt},"Deleted":${e.deleted},"Sig":${sig}}`;
}

const ENTRY_FIELDS = ["Value", "Owner", "Version", "UpdatedAt", "Deleted", "Sig"] as const;

/**
 * Decodes a parsed entry as Go's `SignedData.UnmarshalJSON`: an object is the signed form, a
 * string (or null) the legacy form; members are matched case-insensitively, null leaves a
 * field at its zero value, the last duplicate wins.
 *
 * @throws {InputError} `TYPE_INVALID` or `NUMBER_INVALID` where Go reports an error.
 * @example
 * ```ts
 * decodeEntry("\"1\"").value; // '"1"'
 * ```
 */
export function decodeEntry(json: JsonValue): Entry {
  if (typeof json === "string") return unsignedEntry(json);
  if (json === null) return unsignedEntry("");
  if (!(json instanceof JsonObject)) {
    throw new InputError(
      "TYPE_INVALID",
      `Entry must be a JSON string or object, got ${kind(json)}`,
    );
  }
  let value = "";
  let owner = "";
  let version = 0n;
  let updatedAt = 0n;
  let deleted = false;
  let sig: Uint8Array | null = null;
  for (const [key, v] of json.entries) {
    const field = goFieldName(key, ENTRY_FIELDS);
    if (field === undefined) continue;
    if (v === null) {
      if (field === "Sig") sig = null;
      continue;
    }
    switch (field) {
      case "Value":
        value = expectString(v, field);
        break;
      case "Owner":
        owner = expectString(v, field);
        break;
      case "Version":
        version = parseInteger(v, field, 0n, UINT64_MAX);
        break;
      case "UpdatedAt":
        updatedAt = parseInteger(v, field, INT64_MIN, INT64_MAX);
        break;
      case "Deleted":
        if (typeof v !== "boolean") throw typeError(field, "a boolean", v);
        deleted = v;
        break;
      case "Sig":
        sig = decodeSig(v);
        break;
    }
  }
  return { value, owner, version, updatedAt, deleted, sig };
}

function decodeSig(v: JsonValue): Uint8Array {
  if (typeof v === "string") {
    const bytes = base64ToBytes(v);
    if (!bytes) throw new InputError("TYPE_INVALID", "Entry Sig: expected standard base64");
    return bytes;
  }
  // Go decodes a JSON array of small integers into []byte as well.
  if (Array.isArray(v)) {
    return Uint8Array.from(v, (item) => Number(parseInteger(item, "Sig", 0n, 255n)));
  }
  throw typeError("Sig", "a base64 string", v);
}

/**
 * Parses a JSON integer within [min, max] as Go's `strconv.ParseInt/ParseUint` would.
 *
 * @throws {InputError} `NUMBER_INVALID` for fractions, exponents or out-of-range values.
 * @example
 * ```ts
 * parseInteger(new JsonNumber("18446744073709551615"), "Version", 0n, UINT64_MAX);
 * ```
 */
export function parseInteger(v: JsonValue, field: string, min: bigint, max: bigint): bigint {
  if (!(v instanceof JsonNumber)) throw typeError(field, "an integer", v);
  if (!/^-?(0|[1-9][0-9]*)$/.test(v.text)) {
    throw new InputError(
      "NUMBER_INVALID",
      `${field}: expected an integer, got ${v.text.slice(0, 40)}`,
    );
  }
  const n = BigInt(v.text);
  if (n < min || n > max) {
    throw new InputError("NUMBER_INVALID", `${field}: ${v.text.slice(0, 40)} is out of range`);
  }
  return n;
}

function expectString(v: JsonValue, field: string): string {
  if (typeof v !== "string") throw typeError(field, "a string", v);
  return v;
}

function typeError(field: string, expected: string, got: JsonValue): InputError {
  return new InputError(
    "TYPE_INVALID",
    `Entry ${field}: expected ${expected}, got ${kind(got)}`,
  );
}

/**
 * A short name for a parsed value's JSON type, for error messages.
 *
 * @example
 * ```ts
 * kind([]); // "array"
 * ```
 */
export function kind(v: JsonValue): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (v instanceof JsonObject) return "object";
  if (v instanceof JsonNumber) return "number";
  return typeof v;
}

/**
 * True when two entries are identical in every field (Go's `sameEntry`).
 *
 * @example
 * ```ts
 * sameEntry(unsignedEntry("a"), unsignedEntry("a")); // true
 * ```
 */
export function sameEntry(a: Entry, b: Entry): boolean {
  if (a === b) return true;
  return a.owner === b.owner && a.version === b.version && a.updatedAt === b.updatedAt &&
    a.deleted === b.deleted && a.value === b.value &&
    compareBytes(a.sig ?? EMPTY, b.sig ?? EMPTY) === 0;
}

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();

/**
 * The bytes an entry's signature covers (Go `canonical`): length-prefixed bucket, key, owner,
 * u64be version, u64be updatedAt (two's complement), deleted byte, length-prefixed value.
 *
 * @example
 * ```ts
 * canonicalBytes("machines", "10.1.0.1", { ...unsignedEntry("hello"), owner: "peerX", version: 1n, updatedAt: 100n });
 * ```
 */
export function canonicalBytes(bucket: string, key: string, e: Entry): Uint8Array {
  const parts = [encoder.encode(bucket), encoder.encode(key), encoder.encode(e.owner)];
  const value = encoder.encode(e.value);
  let size = 8 + 8 + 1 + 8 + value.length;
  for (const p of parts) size += 8 + p.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  const field = (bytes: Uint8Array) => {
    view.setBigUint64(at, BigInt(bytes.length));
    out.set(bytes, at + 8);
    at += 8 + bytes.length;
  };
  for (const p of parts) field(p);
  view.setBigUint64(at, e.version);
  view.setBigInt64(at + 8, e.updatedAt);
  out[at + 16] = e.deleted ? 1 : 0;
  at += 17;
  field(value);
  return out;
}

/**
 * Returns `e` with `owner` set to the signer and `sig` over its canonical bytes.
 *
 * @example
 * ```ts
 * const id = await generateIdentity();
 * const e = await signEntry(id, "b", "k", { ...unsignedEntry('"v"'), version: 1n, updatedAt: 1n });
 * ```
 */
export async function signEntry(
  signer: EntrySigner,
  bucket: string,
  key: string,
  e: Omit<Entry, "owner" | "sig">,
): Promise<Entry> {
  const unsigned: Entry = { ...e, owner: signer.peerId, sig: null };
  const sig = await signer.sign(canonicalBytes(bucket, key, unsigned));
  return { ...unsigned, sig };
}

/**
 * True when the entry's signature verifies under the key inlined in its `owner` (Go `Verify`).
 *
 * @example
 * ```ts
 * await verifyEntry("b", "k", unsignedEntry("x")); // false
 * ```
 */
export async function verifyEntry(
  bucket: string,
  key: string,
  e: Entry,
  verify: SignatureVerifier = verifyPeerSignature,
): Promise<boolean> {
  if (e.sig === null || e.sig.length === 0 || e.owner === "") return false;
  return await verify(e.owner, canonicalBytes(bucket, key, e), e.sig);
}

/**
 * Go `versionAfter`: `max(prev + 1, now in ns)`, with Go's uint64 wrap-around.
 *
 * @example
 * ```ts
 * versionAfter(5n, 3n); // 6n
 * ```
 */
export function versionAfter(prev: bigint, nowNs: bigint): bigint {
  const next = (prev + 1n) & UINT64_MAX;
  const now = BigInt.asUintN(64, nowNs);
  return now > next ? now : next;
}

/**
 * Our entry for `value` under `bucket`/`key`: unsigned without a signer (off mode); else the
 * previous entry when we already own it with the same value, or a new signed version.
 *
 * @example
 * ```ts
 * const e = await ownEntry(identity, "machines", "10.1.0.1", '{"PeerID":"…"}', undefined, nowNs);
 * ```
 */
export async function ownEntry(
  signer: EntrySigner | undefined,
  bucket: string,
  key: string,
  value: string,
  prev: Entry | undefined,
  nowNs: bigint,
): Promise<Entry> {
  if (!signer) return unsignedEntry(value);
  if (
    prev && prev.owner === signer.peerId && !prev.deleted && prev.value === value &&
    prev.sig !== null
  ) {
    return prev;
  }
  return await signEntry(signer, bucket, key, {
    value,
    version: versionAfter(prev?.version ?? 0n, nowNs),
    updatedAt: nowNs / 1_000_000_000n,
    deleted: false,
  });
}

/**
 * Our signed tombstone replacing `prev` (a delete in the signed modes).
 *
 * @example
 * ```ts
 * const t = await ownTombstone(identity, "machines", "10.1.0.1", prev, nowNs);
 * t.deleted; // true
 * ```
 */
export async function ownTombstone(
  signer: EntrySigner,
  bucket: string,
  key: string,
  prev: Entry,
  nowNs: bigint,
): Promise<Entry> {
  return await signEntry(signer, bucket, key, {
    value: "",
    version: versionAfter(prev.version, nowNs),
    updatedAt: nowNs / 1_000_000_000n,
    deleted: true,
  });
}
