/**
 * Ledger messages on the wire: gzip(JSON(block)) as Go sends them, and the digest our nodes add.
 *
 * The digest is gzip(JSON) `{"EdgeVPNDenoDigest/1":[<index>,"<block hash>","<content hash>"]}`,
 * the content hash being SHA-256 of the storage's `%v` text (equal on every node holding the
 * same entries, whatever their blocks).
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
import {
  type Block,
  type BlockLimits,
  decodeBlock,
  DEFAULT_BLOCK_LIMITS,
  encodeBlock,
  MAX_BLOCK_INDEX,
} from "./block.ts";
import { JsonNumber, JsonObject, parseJson } from "./json.ts";

/** The one member of a digest message; no Go block has it, and Go skips it as unknown. */
export const DIGEST_MARKER = "EdgeVPNDenoDigest/1";

/** Limits on a received ledger message. */
export interface MessageLimits extends BlockLimits {
  /** Largest gzip message accepted (Go token `max_message_size` is 20 MiB). */
  maxMessageBytes: number;
  /** Largest inflated JSON accepted (zip-bomb guard, enforced while inflating). */
  maxInflatedBytes: number;
}

/** Defaults for {@link MessageLimits}. */
export const DEFAULT_MESSAGE_LIMITS: Readonly<MessageLimits> = {
  ...DEFAULT_BLOCK_LIMITS,
  maxMessageBytes: 20 * 1024 * 1024,
  maxInflatedBytes: 64 * 1024 * 1024,
};

/** A peer's head as announced by a digest. */
export interface Digest {
  /** Index of its last block. */
  readonly index: number;
  /** Hash of its last block (compared in off mode, where blocks are adopted whole). */
  readonly hash: string;
  /** {@link storageHash} of its last block (compared in observe/enforce, where entries merge). */
  readonly contentHash: string;
}

/** A decoded ledger message. */
export type LedgerMessage =
  | { readonly kind: "block"; readonly block: Block }
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

// Input is fed in small slices so that one slice can inflate to at most ~4 MiB (deflate's
// ratio is bounded by ~1032:1) before the running total is checked.
const INFLATE_SLICE = 4096;

/**
 * Gunzips `data`, failing as soon as the output exceeds `maxBytes`.
 *
 * @throws {InputError} `GZIP_INVALID` or `INFLATED_TOO_LARGE`.
 * @example
 * ```ts
 * await gunzip(await gzip(new Uint8Array([1])), 1024); // Uint8Array [1]
 * ```
 */
export async function gunzip(data: Uint8Array, maxBytes: number): Promise<Uint8Array> {
  const stream = new DecompressionStream("gzip");
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  const feeding = (async () => {
    for (let at = 0; at < data.length; at += INFLATE_SLICE) {
      await writer.write(data.slice(at, at + INFLATE_SLICE));
    }
    await writer.close();
  })();
  feeding.catch(() => {});
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > maxBytes) {
        await reader.cancel();
        throw new InputError("INFLATED_TOO_LARGE", `Gzip message inflates past ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
    await feeding;
  } catch (e) {
    await reader.cancel().catch(() => {});
    await writer.abort().catch(() => {});
    await feeding.catch(() => {});
    if (e instanceof InputError) throw e;
    throw new InputError("GZIP_INVALID", `Cannot gunzip message: ${(e as Error).message}`);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

const HEX64 = /^[0-9a-f]{64}$/;
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

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
  const inflated = await gunzip(bytes, limits.maxInflatedBytes);
  let text: string;
  try {
    text = utf8.decode(inflated);
  } catch {
    throw new InputError("UTF8_INVALID", "Ledger message is not valid UTF-8");
  }
  const json = parseJson(text);
  const digestBody = json instanceof JsonObject
    ? json.entries.find(([name]) => name === DIGEST_MARKER)?.[1]
    : undefined;
  if (digestBody !== undefined) {
    const [index, hash, contentHash] = Array.isArray(digestBody) ? digestBody : [];
    if (
      !Array.isArray(digestBody) || digestBody.length !== 3 || !(index instanceof JsonNumber) ||
      !/^(0|[1-9][0-9]{0,15})$/.test(index.text) || Number(index.text) > MAX_BLOCK_INDEX ||
      typeof hash !== "string" || !HEX64.test(hash) ||
      typeof contentHash !== "string" || !HEX64.test(contentHash)
    ) {
      throw new InputError("DIGEST_INVALID", "Malformed ledger digest");
    }
    return { kind: "digest", digest: { index: Number(index.text), hash, contentHash } };
  }
  return { kind: "block", block: decodeBlock(json, limits) };
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
 * gzip of the digest object (see the file comment for why Go ignores it).
 *
 * @example
 * ```ts
 * const h = "0".repeat(64);
 * const bytes = await encodeDigest({ index: 3, hash: h, contentHash: h });
 * ```
 */
export async function encodeDigest(digest: Digest): Promise<Uint8Array> {
  return await gzip(
    new TextEncoder().encode(
      JSON.stringify({ [DIGEST_MARKER]: [digest.index, digest.hash, digest.contentHash] }),
    ),
  );
}
