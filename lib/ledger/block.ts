/** Blocks: Go-identical JSON, the `%v` hash record, genesis, and decoding of untrusted blocks. */

import { goTimeString } from "../util/gotime.ts";
import { InputError } from "../util/errors.ts";
import type { Slicer } from "../util/slicer.ts";
import {
  decodeEntry,
  encodeEntry,
  type Entry,
  INT64_MAX,
  INT64_MIN,
  kind,
  parseInteger,
  sameEntry,
} from "./entry.ts";
import { compareGoStrings, goFieldName, goQuote, JsonObject, type JsonValue } from "./json.ts";

/** Bucket name → key → entry. Treated as immutable once inside a block. */
export type Storage = ReadonlyMap<string, ReadonlyMap<string, Entry>>;

/** One block, field for field Go's `blockchain.Block`. */
export interface Block {
  readonly index: number;
  readonly timestamp: string;
  readonly storage: Storage;
  readonly hash: string;
  readonly prevHash: string;
}

/** SHA-256 of `0map[]`: the hash of Go's zero block, which every genesis block carries. */
export const GENESIS_HASH = "993c923422cd134b6aad0235ebfd4290a7b27b83d1bcd6b1fb2addc4b45b2fa6";

/** Highest block index accepted from peers; leaves room to count on without losing precision. */
export const MAX_BLOCK_INDEX = 2 ** 52;

/** Size limits on decoded blocks (all counts, lengths in UTF-16 code units). */
export interface BlockLimits {
  /** Most buckets in one block. */
  maxBuckets: number;
  /** Most entries over all buckets. */
  maxEntries: number;
  /** Longest bucket name or key. */
  maxNameLength: number;
  /** Longest entry value text. */
  maxValueLength: number;
  /** Longest owner peer ID. */
  maxOwnerLength: number;
  /** Longest signature in bytes. */
  maxSigBytes: number;
  /** Longest Timestamp string. */
  maxTimestampLength: number;
}

/** Defaults for {@link BlockLimits}: far above what a real network holds. */
export const DEFAULT_BLOCK_LIMITS: Readonly<BlockLimits> = {
  maxBuckets: 4096,
  maxEntries: 200_000,
  maxNameLength: 4096,
  maxValueLength: 1 << 20,
  maxOwnerLength: 256,
  maxSigBytes: 1024,
  maxTimestampLength: 256,
};

/**
 * The genesis block a fresh ledger starts with (Go `newGenesis`): its hash is that of the zero
 * block, so every node's genesis compares equal.
 *
 * @example
 * ```ts
 * genesisBlock(0n).hash === GENESIS_HASH; // true
 * ```
 */
export function genesisBlock(nowNs: bigint): Block {
  return {
    index: 0,
    timestamp: goTimeString(nowNs),
    storage: new Map(),
    hash: GENESIS_HASH,
    prevHash: "",
  };
}

/**
 * True for a well-formed genesis block (index 0, empty storage, the zero-block hash).
 *
 * @example
 * ```ts
 * isGenesis(genesisBlock(0n)); // true
 * ```
 */
export function isGenesis(b: Block): boolean {
  return b.index === 0 && b.hash === GENESIS_HASH && b.prevHash === "" && b.storage.size === 0;
}

/**
 * The block after `prev` holding `storage` (Go `NewBlock`), timestamped `t.UTC().String()`.
 * `index` defaults to `prev.index + 1`.
 *
 * @example
 * ```ts
 * const b = await nextBlock(genesisBlock(0n), new Map(), 1767225600000000000n);
 * b.index; // 1
 * ```
 */
export async function nextBlock(
  prev: Block,
  storage: Storage,
  nowNs: bigint,
  index = prev.index + 1,
): Promise<Block> {
  const partial = { index, timestamp: goTimeString(nowNs), storage, prevHash: prev.hash };
  return { ...partial, hash: await checksum(partial) };
}

/**
 * Go's `fmt.Sprint(Index, Timestamp, Storage, PrevHash)`: the text a block hash covers.
 *
 * @example
 * ```ts
 * hashRecord({ index: 0, timestamp: "", storage: new Map(), prevHash: "" }); // "0map[]"
 * ```
 */
export function hashRecord(b: Omit<Block, "hash">): string {
  return `${b.index}${b.timestamp}${formatStorage(b.storage)}${b.prevHash}`;
}

/**
 * Go's `%v` of `map[string]map[string]SignedData`: keys sorted bytewise, entries as
 * `{Value Owner Version UpdatedAt Deleted [sig bytes]}`.
 *
 * @example
 * ```ts
 * formatStorage(new Map([["b", new Map()]])); // "map[b:map[]]"
 * ```
 */
export function formatStorage(storage: Storage): string {
  const buckets = [...storage.keys()].sort(compareGoStrings).map((name) => {
    const bucket = storage.get(name)!;
    const entries = [...bucket.keys()].sort(compareGoStrings).map((key) => {
      const e = bucket.get(key)!;
      const sig = e.sig ? e.sig.join(" ") : "";
      return `${key}:{${e.value} ${e.owner} ${e.version} ${e.updatedAt} ${e.deleted} [${sig}]}`;
    });
    return `${name}:map[${entries.join(" ")}]`;
  });
  return `map[${buckets.join(" ")}]`;
}

/**
 * Hex SHA-256 of the block's {@link hashRecord} (Go `Checksum`).
 *
 * @example
 * ```ts
 * await checksum({ index: 0, timestamp: "", storage: new Map(), prevHash: "" }); // GENESIS_HASH
 * ```
 */
export async function checksum(b: Omit<Block, "hash">): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(hashRecord(b)));
  return hex(new Uint8Array(digest));
}

/**
 * Hex SHA-256 of the storage's `%v` text: equal for equal content on every node.
 *
 * @example
 * ```ts
 * await storageHash(new Map()); // SHA-256 of "map[]"
 * ```
 */
export async function storageHash(storage: Storage): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(formatStorage(storage)),
  );
  return hex(new Uint8Array(digest));
}

/**
 * Hex of bytes, lowercase.
 *
 * @example
 * ```ts
 * hex(new Uint8Array([255])); // "ff"
 * ```
 */
export function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/**
 * Go's `json.Marshal(Block)`, byte for byte.
 *
 * @example
 * ```ts
 * encodeBlock(genesisBlock(0n)).startsWith('{"Index":0,'); // true
 * ```
 */
export function encodeBlock(b: Block): string {
  return `{"Index":${b.index},"Timestamp":${goQuote(b.timestamp)},"Storage":${
    encodeStorage(b.storage)
  },` +
    `"Hash":${goQuote(b.hash)},"PrevHash":${goQuote(b.prevHash)}}`;
}

/**
 * Go's JSON of a storage map: buckets and keys sorted bytewise.
 *
 * @example
 * ```ts
 * encodeStorage(new Map()); // "{}"
 * ```
 */
export function encodeStorage(storage: Storage): string {
  const buckets = [...storage.keys()].sort(compareGoStrings).map((name) => {
    const bucket = storage.get(name)!;
    const entries = [...bucket.keys()].sort(compareGoStrings)
      .map((key) => `${goQuote(key)}:${encodeEntry(bucket.get(key)!)}`);
    return `${goQuote(name)}:{${entries.join(",")}}`;
  });
  return `{${buckets.join(",")}}`;
}

const BLOCK_FIELDS = ["Index", "Timestamp", "Storage", "Hash", "PrevHash"] as const;

/**
 * Decodes a parsed block as Go's `json.Unmarshal` into `Block` would, then applies size limits.
 * Go's leniencies are kept (case-insensitive member names, unknown members ignored, null
 * leaves a field at zero, last duplicate wins); whatever Go rejects throws.
 *
 * @throws {InputError} codes `TYPE_INVALID`, `TYPE_INVALID`, `NUMBER_INVALID`,
 *   `INDEX_INVALID`, `LIMIT_EXCEEDED`.
 * @example
 * ```ts
 * import { parseJson } from "./json.ts";
 * decodeBlock(parseJson('{"Index":1,"Storage":{"b":{"k":"\\"v\\""}}}')).index; // 1
 * ```
 */
export function decodeBlock(json: JsonValue, limits: BlockLimits = DEFAULT_BLOCK_LIMITS): Block {
  const steps = blockSteps(json, limits);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * {@link decodeBlock} for large untrusted blocks: the same result and errors, pausing between
 * entries whenever `slicer` says its slice is spent.
 *
 * @example
 * ```ts ignore
 * const block = await decodeBlockSliced(json, DEFAULT_BLOCK_LIMITS, new Slicer());
 * ```
 */
export async function decodeBlockSliced(
  json: JsonValue,
  limits: BlockLimits,
  slicer: Slicer,
): Promise<Block> {
  const steps = blockSteps(json, limits);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    if (slicer.due()) await slicer.pause();
  }
}

/** Decodes a block, yielding after each entry (see {@link decodeBlock}). */
function* blockSteps(json: JsonValue, limits: BlockLimits): Generator<void, Block> {
  if (!(json instanceof JsonObject)) {
    throw new InputError("TYPE_INVALID", `Block must be a JSON object, got ${kind(json)}`);
  }
  let index = 0n;
  let timestamp = "";
  let hash = "";
  let prevHash = "";
  let storage = new Map<string, Map<string, Entry>>();
  let entries = 0;
  for (const [key, v] of json.entries) {
    const field = goFieldName(key, BLOCK_FIELDS);
    if (field === undefined) continue;
    if (v === null) {
      if (field === "Storage") storage = new Map();
      continue;
    }
    switch (field) {
      case "Index":
        index = parseInteger(v, "Index", INT64_MIN, INT64_MAX);
        break;
      case "Timestamp":
        timestamp = blockString(v, field);
        if (timestamp.length > limits.maxTimestampLength) {
          throw limit(`Timestamp longer than ${limits.maxTimestampLength}`);
        }
        break;
      case "Hash":
        hash = blockString(v, field);
        break;
      case "PrevHash":
        prevHash = blockString(v, field);
        break;
      case "Storage": {
        if (!(v instanceof JsonObject)) {
          throw new InputError(
            "TYPE_INVALID",
            `Block Storage must be an object, got ${kind(v)}`,
          );
        }
        // A second Storage member decodes into the same Go map, replacing buckets by name.
        for (const [name, bucketJson] of v.entries) {
          const bucket = yield* decodeBucket(name, bucketJson, limits);
          entries += bucket.size - (storage.get(name)?.size ?? 0);
          storage.set(name, bucket);
          if (storage.size > limits.maxBuckets) {
            throw limit(`more than ${limits.maxBuckets} buckets`);
          }
          if (entries > limits.maxEntries) throw limit(`more than ${limits.maxEntries} entries`);
        }
        break;
      }
    }
  }
  if (index < 0n || index > BigInt(MAX_BLOCK_INDEX)) {
    throw new InputError(
      "INDEX_INVALID",
      `Block Index ${index} is outside [0, ${MAX_BLOCK_INDEX}]`,
    );
  }
  return { index: Number(index), timestamp, storage, hash, prevHash };
}

function* decodeBucket(
  name: string,
  json: JsonValue,
  limits: BlockLimits,
): Generator<void, Map<string, Entry>> {
  if (name.length > limits.maxNameLength) {
    throw limit(`bucket name longer than ${limits.maxNameLength}`);
  }
  const bucket = new Map<string, Entry>();
  if (json === null) return bucket;
  if (!(json instanceof JsonObject)) {
    throw new InputError(
      "TYPE_INVALID",
      `Bucket ${JSON.stringify(name.slice(0, 64))} must be an object, got ${kind(json)}`,
    );
  }
  for (const [key, entryJson] of json.entries) {
    if (key.length > limits.maxNameLength) throw limit(`key longer than ${limits.maxNameLength}`);
    if (bucket.size >= limits.maxEntries) throw limit(`more than ${limits.maxEntries} entries`);
    const e = decodeEntry(entryJson);
    if (e.value.length > limits.maxValueLength) {
      throw limit(`value longer than ${limits.maxValueLength}`);
    }
    if (e.owner.length > limits.maxOwnerLength) {
      throw limit(`owner longer than ${limits.maxOwnerLength}`);
    }
    if (e.sig && e.sig.length > limits.maxSigBytes) {
      throw limit(`signature longer than ${limits.maxSigBytes} bytes`);
    }
    bucket.set(key, e);
    yield;
  }
  return bucket;
}

function blockString(v: JsonValue, field: string): string {
  if (typeof v !== "string") {
    throw new InputError("TYPE_INVALID", `Block ${field} must be a string, got ${kind(v)}`);
  }
  return v;
}

function limit(what: string): InputError {
  return new InputError("LIMIT_EXCEEDED", `Block exceeds limits: ${what}`);
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Checks a decoded block's chain fields: a genesis must be the canonical one, any other block
 * must carry a 64-hex PrevHash and a Hash equal to its checksum. Go never checks this on
 * receipt, but every block a correct Go node emits passes.
 *
 * @throws {InputError} `HASH_INVALID` or `INDEX_INVALID`.
 * @example
 * ```ts
 * await verifyBlockHash(genesisBlock(0n)); // resolves
 * ```
 */
export async function verifyBlockHash(b: Block): Promise<void> {
  if (b.index === 0) {
    if (!isGenesis(b)) {
      throw new InputError("INDEX_INVALID", "A block with Index 0 must be an empty genesis block");
    }
    return;
  }
  if (!HEX64.test(b.prevHash)) {
    throw new InputError("HASH_INVALID", "Block PrevHash must be 64 lowercase hex digits");
  }
  const want = await checksum(b);
  if (b.hash !== want) {
    throw new InputError("HASH_INVALID", `Block ${b.index} Hash does not match its content`);
  }
}

/**
 * True when both storages hold the same buckets (empty ones included), keys and entries.
 *
 * @example
 * ```ts
 * sameStorage(new Map(), new Map()); // true
 * ```
 */
export function sameStorage(a: Storage, b: Storage): boolean {
  if (a === b) return true;
  if (a.size !== b.size) return false;
  for (const [name, bucket] of a) {
    const other = b.get(name);
    if (!other || other.size !== bucket.size) return false;
    if (other === bucket) continue;
    for (const [key, e] of bucket) {
      const o = other.get(key);
      if (!o || !sameEntry(e, o)) return false;
    }
  }
  return true;
}

/**
 * A copy-on-write view of a storage map for building the next block.
 *
 * @example
 * ```ts ignore
 * const d = new StorageDraft(new Map());
 * d.set("b", "k", unsignedEntry('"v"'));
 * d.result().get("b")?.size; // 1
 * ```
 */
export class StorageDraft {
  readonly #map: Map<string, ReadonlyMap<string, Entry>>;
  readonly #copied = new Set<string>();

  constructor(base: Storage) {
    this.#map = new Map(base);
  }

  get(bucket: string, key: string): Entry | undefined {
    return this.#map.get(bucket)?.get(key);
  }

  bucket(name: string): ReadonlyMap<string, Entry> | undefined {
    return this.#map.get(name);
  }

  buckets(): IterableIterator<[string, ReadonlyMap<string, Entry>]> {
    return this.#map.entries();
  }

  /** Makes sure the bucket exists (possibly empty), as Go's `cur[b] = map{}`. */
  ensureBucket(name: string): Map<string, Entry> {
    if (this.#copied.has(name)) return this.#map.get(name) as Map<string, Entry>;
    const copy = new Map(this.#map.get(name) ?? []);
    this.#map.set(name, copy);
    this.#copied.add(name);
    return copy;
  }

  set(bucket: string, key: string, e: Entry): void {
    this.ensureBucket(bucket).set(key, e);
  }

  deleteKey(bucket: string, key: string): void {
    if (this.#map.get(bucket)?.has(key)) this.ensureBucket(bucket).delete(key);
  }

  deleteBucket(name: string): void {
    this.#map.delete(name);
    this.#copied.delete(name);
  }

  result(): Storage {
    return this.#map;
  }
}
