/**
 * Ledger messages on the wire: gzip(JSON(block)) as Go sends them, and the digest our nodes add.
 *
 * The digest is gzip(JSON) `{"EdgeVPNDenoDigest/2":[<index>,"<block hash>","<content hash>",
 * "<timestamp>","<previous hash>"]}` (the previous hash is "" for a genesis block), the content hash being SHA-256 of the storage's `%v` text
 * (equal on every node holding the same entries, whatever their blocks). The timestamp and the
 * previous hash are the rest of the block's header: a node holding the same entries rebuilds
 * the block from its own storage, checks the hash and adopts it, without a full block crossing
 * the network (after a partition heals over a slow, lossy link, a full block of a thousand
 * entries takes seconds per hop). `EdgeVPNDenoDigest/1` (the first three members only, sent by
 * earlier versions) is still read.
 *
 * Why Go nodes ignore it harmlessly: Go runs every main-topic message through `Ledger.Update`:
 * gunzip, then `json.Unmarshal` into `Block`. The only member name folds to none of `Index`,
 * `Timestamp`, `Storage`, `Hash`, `PrevHash` (Go matches names case-insensitively, so names like
 * "index" or "hash" are avoided at the top level); unknown members are skipped, so Go gets the
 * zero Block (Index 0, Hash "", nil Storage) with no error. In off mode (every release) it is
 * adopted only if `0 > last.Index` (never: indexes start at 0) or `0 == last.Index && "" >
 * last.Hash` (never: "" is the smallest string, and every genesis carries the same non-empty
 * hash). In observe/enforce mode its nil Storage merges nothing, so no block is appended. A JSON
 * array would be ignored too, but as an UnmarshalTypeError that Go logs at warn level
 * ("handler error") on every sync tick; the object passes silently.
 */

import { InputError } from "../util/errors.ts";
import { Slicer } from "../util/slicer.ts";
import {
  type Block,
  type BlockLimits,
  decodeBlockSliced,
  DEFAULT_BLOCK_LIMITS,
  encodeBlock,
  MAX_BLOCK_INDEX,
} from "./block.ts";
import { JsonNumber, JsonObject, type JsonValue, parseJsonSliced } from "./json.ts";
import { DEFAULT_INFLATE_LIMITS, type InflateLimits, inflationCap } from "./limits.ts";

/** The one member of a digest message; no Go block has it, and Go skips it as unknown. */
export const DIGEST_MARKER = "EdgeVPNDenoDigest/2";
/** The digest member of earlier versions: index, hash and content hash only. */
export const DIGEST_MARKER_V1 = "EdgeVPNDenoDigest/1";

/**
 * A member our nodes add to a block that carries only the entries changed since our last
 * broadcast (a delta). Go skips the unknown member and, under observe/enforce, merges the
 * entries as those of any block (it never checks a block's hash or completeness there); deltas
 * are never sent in ownership `off`, where Go would adopt the partial block whole.
 */
export const DELTA_MARKER = "EdgeVPNDenoDelta/1";

/**
 * Limits on a received ledger message. Inflation is capped while inflating, in proportion to
 * the message's size (see `inflationCap`).
 */
export interface MessageLimits extends BlockLimits, InflateLimits {
  /** Largest gzip message accepted (Go token `max_message_size` is 20 MiB). */
  maxMessageBytes: number;
}

/** Defaults for {@link MessageLimits}. */
export const DEFAULT_MESSAGE_LIMITS: Readonly<MessageLimits> = {
  ...DEFAULT_BLOCK_LIMITS,
  ...DEFAULT_INFLATE_LIMITS,
  maxMessageBytes: 20 * 1024 * 1024,
};

/** A peer's head as announced by a digest. */
export interface Digest {
  /** Index of its last block. */
  readonly index: number;
  /** Hash of its last block (compared in off mode, where blocks are adopted whole). */
  readonly hash: string;
  /** {@link storageHash} of its last block (compared in observe/enforce, where entries merge). */
  readonly contentHash: string;
  /** Its last block's Timestamp and PrevHash (absent in a `EdgeVPNDenoDigest/1` digest). */
  readonly header?: { readonly timestamp: string; readonly prevHash: string };
}

/**
 * The sender's head when it sent a delta: a receiver whose entries then hash to it takes that
 * block as its own, so that heads converge as with full blocks.
 */
export interface DeltaHead {
  readonly index: number;
  readonly timestamp: string;
  readonly hash: string;
  readonly prevHash: string;
}

/** A decoded ledger message. */
export type LedgerMessage =
  | { readonly kind: "block"; readonly block: Block }
  | { readonly kind: "delta"; readonly block: Block; readonly head?: DeltaHead }
  | { readonly kind: "digest"; readonly digest: Digest };

/**
 * Gzips bytes (the header matches Go's `compress/gzip`: `1f8b08000000000000ff`).
 *
 * @example
 * ```ts
 * const gz = await gzip(new TextEncoder().encode("{}"));
 * ```
 */
export async function gzip(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// Input is fed in small slices so that one slice can inflate to at most ~1 MiB (deflate's
// ratio is bounded by ~1032:1) before the running total is checked.
const INFLATE_SLICE = 1024;

/**
 * Gunzips `data`, failing as soon as the output exceeds `maxBytes`.
 *
 * @throws {InputError} `GZIP_INVALID` or `INFLATED_TOO_LARGE`.
 * @example
 * ```ts
 * await gunzip(await gzip(new Uint8Array([1])), 1024); // Uint8Array [1]
 * ```
 */
export async function gunzip(
  data: Uint8Array,
  maxBytes: number,
  slicer: Slicer = new Slicer(),
): Promise<Uint8Array> {
  const stream = new DecompressionStream("gzip");
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  let stopped = false;
  const feeding = (async () => {
    for (let at = 0; at < data.length && !stopped; at += INFLATE_SLICE) {
      await writer.write(data.slice(at, at + INFLATE_SLICE));
    }
    if (!stopped) await writer.close();
  })();
  feeding.catch(() => {});
  // Inflated straight into one buffer, sized from the gzip trailer's length (a hint, within
  // the cap) and grown by doubling: holding the chunks and joining them took twice the memory.
  // The hint is the sender's word: trusted up to 16 × the compressed size only.
  const hint = Math.min(isizeHint(data), 16 * data.length);
  let out = new Uint8Array(Math.min(maxBytes, Math.max(64 << 10, hint)));
  let total = 0;
  try {
    for (;;) {
      // The stream's promises settle as microtasks: without a pause, inflating megabytes
      // would never let a timer or a socket in.
      if (slicer.spent()) await slicer.pause();
      const { done, value } = await reader.read();
      if (done) break;
      if (total + value.length > maxBytes) {
        stopped = true;
        await reader.cancel();
        throw new InputError("INFLATED_TOO_LARGE", `Gzip message inflates past ${maxBytes} bytes`);
      }
      if (total + value.length > out.length) {
        const grown = new Uint8Array(
          Math.min(maxBytes, Math.max(2 * out.length, total + value.length)),
        );
        grown.set(out.subarray(0, total));
        out = grown;
      }
      out.set(value, total);
      total += value.length;
    }
    await feeding;
  } catch (e) {
    await reader.cancel().catch(() => {});
    await writer.abort().catch(() => {});
    await feeding.catch(() => {});
    if (e instanceof InputError) throw e;
    throw new InputError("GZIP_INVALID", `Cannot gunzip message: ${(e as Error).message}`);
  }
  return total === out.length ? out : out.subarray(0, total);
}

/** Strict UTF-8 decoding, a MiB at a time with a pause whenever the slice is spent. */
async function decodeUtf8Sliced(bytes: Uint8Array, slicer: Slicer): Promise<string> {
  const STEP = 1 << 20;
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  const parts: string[] = [];
  try {
    for (let at = 0; at < bytes.length; at += STEP) {
      parts.push(decoder.decode(bytes.subarray(at, at + STEP), { stream: true }));
      if (at + STEP < bytes.length && slicer.spent()) await slicer.pause();
    }
    parts.push(decoder.decode());
  } catch {
    throw new InputError("UTF8_INVALID", "Ledger message is not valid UTF-8");
  }
  return parts.join("");
}

/** The inflated length a gzip member's trailer states (ISIZE: mod 2^32), 0 when too short. */
function isizeHint(data: Uint8Array): number {
  if (data.length < 18) return 0;
  const at = data.length - 4;
  return (data[at] | data[at + 1] << 8 | data[at + 2] << 16) + data[at + 3] * 2 ** 24;
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Decodes a received ledger message: a full block or one of our digests.
 *
 * @throws {InputError} with the code of the first problem (`MESSAGE_TOO_LARGE`, `GZIP_INVALID`,
 *   `INFLATED_TOO_LARGE`, `UTF8_INVALID`, `JSON_INVALID`, `DIGEST_INVALID`, or a block code).
 * @example
 * ```ts
 * const h = "0".repeat(64);
 * const msg = await decodeMessage(await encodeDigest({ index: 1, hash: h, contentHash: h }));
 * msg.kind; // "digest"
 * ```
 */
export async function decodeMessage(
  bytes: Uint8Array,
  limits: MessageLimits = DEFAULT_MESSAGE_LIMITS,
): Promise<LedgerMessage> {
  if (bytes.length > limits.maxMessageBytes) {
    throw new InputError(
      "MESSAGE_TOO_LARGE",
      `Ledger message of ${bytes.length} bytes exceeds ${limits.maxMessageBytes}`,
    );
  }
  // Inflating, decoding, parsing and reading the block of a message of megabytes is long
  // work: it runs in slices, so that the rest of the node keeps its latency meanwhile.
  const slicer = new Slicer();
  const inflated = await gunzip(bytes, inflationCap(bytes.length, limits), slicer);
  const text = await decodeUtf8Sliced(inflated, slicer);
  const json = await parseJsonSliced(text, slicer);
  const digestMember = json instanceof JsonObject
    ? json.entries.find(([name]) => name === DIGEST_MARKER || name === DIGEST_MARKER_V1)
    : undefined;
  if (digestMember !== undefined) {
    const [marker, digestBody] = digestMember;
    const size = marker === DIGEST_MARKER ? 5 : 3;
    const [index, hash, contentHash, timestamp, prevHash] = Array.isArray(digestBody)
      ? digestBody
      : [];
    if (
      !Array.isArray(digestBody) || digestBody.length !== size ||
      !(index instanceof JsonNumber) ||
      !/^(0|[1-9][0-9]{0,15})$/.test(index.text) || Number(index.text) > MAX_BLOCK_INDEX ||
      typeof hash !== "string" || !HEX64.test(hash) ||
      typeof contentHash !== "string" || !HEX64.test(contentHash) ||
      (size === 5 &&
        (typeof timestamp !== "string" || timestamp.length > limits.maxTimestampLength ||
          typeof prevHash !== "string" || !(prevHash === "" || HEX64.test(prevHash))))
    ) {
      throw new InputError("DIGEST_INVALID", "Malformed ledger digest");
    }
    const digest: Digest = { index: Number(index.text), hash, contentHash };
    if (size === 5) {
      return {
        kind: "digest",
        digest: {
          ...digest,
          header: { timestamp: timestamp as string, prevHash: prevHash as string },
        },
      };
    }
    return { kind: "digest", digest };
  }
  const block = await decodeBlockSliced(json, limits, slicer);
  const marker = json instanceof JsonObject
    ? json.entries.findLast(([name]) => name === DELTA_MARKER)
    : undefined;
  if (marker === undefined) return { kind: "block", block };
  return { kind: "delta", block, head: deltaHead(marker[1]) };
}

/** The head a delta names (`[index, timestamp, hash, prevHash]`), when well formed. */
function deltaHead(v: JsonValue): DeltaHead | undefined {
  if (!Array.isArray(v) || v.length !== 4) return undefined;
  const [index, timestamp, hash, prevHash] = v;
  if (
    !(index instanceof JsonNumber) || !/^(0|[1-9][0-9]{0,15})$/.test(index.text) ||
    Number(index.text) > MAX_BLOCK_INDEX || typeof timestamp !== "string" ||
    timestamp.length > DEFAULT_BLOCK_LIMITS.maxTimestampLength || typeof hash !== "string" ||
    !HEX64.test(hash) || typeof prevHash !== "string" || !(prevHash === "" || HEX64.test(prevHash))
  ) return undefined;
  return { index: Number(index.text), timestamp, hash, prevHash };
}

/**
 * gzip(JSON(block)), what Go's ledger broadcasts.
 *
 * @example
 * ```ts
 * import { genesisBlock } from "./block.ts";
 * const bytes = await encodeBlockMessage(genesisBlock(0n));
 * ```
 */
export async function encodeBlockMessage(block: Block): Promise<Uint8Array> {
  return await gzip(new TextEncoder().encode(encodeBlock(block)));
}

/**
 * gzip(JSON) of a delta: a block holding only some entries, with the {@link DELTA_MARKER}
 * member (see there for why Go reads it as an ordinary block).
 *
 * @example
 * ```ts ignore
 * const bytes = await encodeDeltaMessage({ ...genesisBlock(0n), storage: changed }, head);
 * ```
 */
export async function encodeDeltaMessage(block: Block, head: DeltaHead): Promise<Uint8Array> {
  const full = encodeBlock(block);
  const named = JSON.stringify([head.index, head.timestamp, head.hash, head.prevHash]);
  return await gzip(new TextEncoder().encode(`{"${DELTA_MARKER}":${named},${full.slice(1)}`));
}

/**
 * gzip of the digest object (see the file comment for why Go ignores it).
 *
 * @example
 * ```ts
 * const h = "0".repeat(64);
 * const bytes = await encodeDigest({ index: 3, hash: h, contentHash: h });
 * ```
 */
export async function encodeDigest(digest: Digest): Promise<Uint8Array> {
  const body = digest.header
    ? {
      [DIGEST_MARKER]: [
        digest.index,
        digest.hash,
        digest.contentHash,
        digest.header.timestamp,
        digest.header.prevHash,
      ],
    }
    : { [DIGEST_MARKER_V1]: [digest.index, digest.hash, digest.contentHash] };
  return await gzip(new TextEncoder().encode(JSON.stringify(body)));
}
