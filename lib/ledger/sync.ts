/**
 * The quiet sync protocol: who answers a peer's digest or block with our full block, when, and
 * how blocks and digests go out (one send at a time, the encoded block cached per head).
 */

import type { Clock } from "../util/clock.ts";
import { errorMessage } from "../util/errors.ts";
import type { Logger } from "../util/logger.ts";
import { type Block, sameStorage, type Storage } from "./block.ts";
import { sameEntry } from "./entry.ts";
import { compareGoStrings } from "./json.ts";
import type { OwnershipMode } from "./policy.ts";
import { type Digest, encodeBlockMessage, encodeDigest } from "./wire.ts";

/** Counters the sync protocol keeps (part of the ledger's counters). */
export interface SyncCounters {
  fullBlocksSent: number;
  digestsSent: number;
  /** Full blocks sent to answer a differing head. */
  repliesSent: number;
  /** Answers withheld by the divergence backoff. */
  repliesSuppressed: number;
  bytesSent: number;
}

/**
 * The legacy adoption order, which also picks who answers: higher index, or equal index and
 * greater hash.
 *
 * @example
 * ```ts
 * better({ index: 3, hash: "a" }, { index: 2, hash: "f" }); // true
 * ```
 */
export function better(
  a: Pick<Block, "index" | "hash">,
  b: Pick<Block, "index" | "hash">,
): boolean {
  return a.index > b.index || (a.index === b.index && compareGoStrings(a.hash, b.hash) > 0);
}

/**
 * How to treat a peer's digest: whether its state differs from ours, and the divergence to
 * answer with our full block, if we are the side that should (`reply`, a key for the backoff).
 * Off mode adopts whole blocks, so only the better head answers; signed modes merge entries
 * both ways, so either side answers a content difference, and on equal content the better head
 * answers so that heads converge.
 *
 * @example
 * ```ts
 * replyToDigest("enforce", ours, ourContentHash, digest); // { differs: true, reply: "…|…" }
 * ```
 */
export function replyToDigest(
  mode: OwnershipMode,
  ours: Block,
  ourContentHash: string,
  digest: Digest,
): { differs: boolean; reply?: string } {
  if (mode === "off") {
    if (digest.hash === ours.hash) return { differs: false };
    return better(ours, digest)
      ? { differs: true, reply: `${digest.hash}|${ours.hash}` }
      : { differs: true };
  }
  if (digest.contentHash === ourContentHash) {
    return digest.hash !== ours.hash && better(ours, digest)
      ? { differs: false, reply: `${digest.hash}|${ours.hash}` }
      : { differs: false };
  }
  return { differs: true, reply: `${digest.contentHash}|${ourContentHash}` };
}

/**
 * How to treat a peer's full block once it was applied: answer it with ours (`reply`), cancel
 * a pending answer that it made pointless (`cancel`), or nothing.
 *
 * @example
 * ```ts
 * replyToBlock("enforce", ours, theirs, tombstoneTtlNs, nowNs); // { cancel: true } when equal
 * ```
 */
export function replyToBlock(
  mode: OwnershipMode,
  ours: Block,
  theirs: Block,
  tombstoneTtlNs: bigint,
  nowNs: bigint,
): { reply?: string; cancel?: boolean } {
  const same = mode === "off"
    ? ours.hash === theirs.hash
    : sameStorage(ours.storage, theirs.storage);
  if (same) {
    // Same entries on a lower head: send ours so that the heads converge. Otherwise someone
    // already broadcast exactly our state: a pending answer would repeat it.
    if (mode !== "off" && better(ours, theirs)) return { reply: `${theirs.hash}|${ours.hash}` };
    return { cancel: true };
  }
  const answer = mode === "off"
    ? better(ours, theirs)
    : hasEntriesMissingFrom(ours.storage, theirs.storage, tombstoneTtlNs, nowNs);
  return answer ? { reply: `${theirs.hash}|${ours.hash}` } : {};
}

/**
 * True when `ours` holds an entry (other than garbage tombstones) that `theirs` lacks or has
 * otherwise.
 *
 * @example
 * ```ts
 * hasEntriesMissingFrom(ours.storage, theirs.storage, 0n, nowNs); // false when theirs has all
 * ```
 */
export function hasEntriesMissingFrom(
  ours: Storage,
  theirs: Storage,
  tombstoneTtlNs: bigint,
  nowNs: bigint,
): boolean {
  for (const [name, bucket] of ours) {
    const other = theirs.get(name);
    for (const [key, e] of bucket) {
      if (e.deleted && e.updatedAt * 1_000_000_000n + tombstoneTtlNs < nowNs) continue;
      const o = other?.get(key);
      if (!o || !sameEntry(o, e)) return true;
    }
  }
  return false;
}

/** What the sender needs: the transport, the current head, time, jitter and its settings. */
export interface SyncSenderComponents {
  send: (bytes: Uint8Array) => void | Promise<void>;
  /** The block a full send carries: our last block at the time of sending. */
  head: () => Block;
  clock: Clock;
  now: () => number;
  random: () => number;
  log: Logger;
  counters: SyncCounters;
  /** Upper bound of the random delay before a reply. */
  replyDelayMs: number;
  /** How long the same divergence is not answered again. */
  backoffMs: number;
}

/**
 * Sends our blocks and digests in order, one at a time, and schedules replies: one pending
 * reply at most, after a random delay (so that one peer answers for all), not repeated for
 * the same divergence within the backoff.
 *
 * @example
 * ```ts
 * const sender = new SyncSender({ send, head: () => last, clock, now, random, log, counters,
 *   replyDelayMs: 500, backoffMs: 60_000 });
 * sender.scheduleReply("theirs|ours");
 * await sender.stop();
 * ```
 */
export class SyncSender {
  readonly #c: SyncSenderComponents;
  #chain: Promise<void> = Promise.resolve();
  #fullCache?: { hash: string; bytes: Promise<Uint8Array> };
  #reply?: { timer: unknown; key: string };
  readonly #answered = new Map<string, number>();
  #stopped = false;

  constructor(components: SyncSenderComponents) {
    this.#c = components;
  }

  /** Sends our head as a full block (cancelling any pending reply: this is it). */
  sendFull(): void {
    if (this.#stopped) return;
    this.cancelReply();
    const block = this.#c.head();
    if (this.#fullCache?.hash !== block.hash) {
      this.#fullCache = { hash: block.hash, bytes: encodeBlockMessage(block) };
    }
    const bytes = this.#fullCache.bytes;
    this.#c.counters.fullBlocksSent++;
    this.#enqueue(bytes);
  }

  /** Sends a digest of one of our blocks: its index, hash and content hash. */
  async sendDigest(digest: Digest): Promise<void> {
    if (this.#stopped) return;
    const bytes = await encodeDigest(digest);
    this.#c.counters.digestsSent++;
    this.#enqueue(Promise.resolve(bytes));
  }

  /** Answers the divergence `key` with our full block after a random delay, unless backed off. */
  scheduleReply(key: string): void {
    if (this.#reply || this.#stopped) return;
    const { clock, now, random } = this.#c;
    const answeredAt = this.#answered.get(key);
    if (answeredAt !== undefined && now() - answeredAt < this.#c.backoffMs) {
      this.#c.counters.repliesSuppressed++;
      return;
    }
    const timer = clock.setTimeout(() => {
      this.#reply = undefined;
      if (this.#answered.size >= 1024) this.#answered.clear();
      this.#answered.set(key, now());
      this.#c.counters.repliesSent++;
      this.sendFull();
    }, random() * this.#c.replyDelayMs);
    this.#reply = { timer, key };
  }

  /** Drops a pending reply. */
  cancelReply(): void {
    if (this.#reply) this.#c.clock.clearTimeout(this.#reply.timer);
    this.#reply = undefined;
  }

  /** Sends nothing more and resolves once what was queued is sent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.cancelReply();
    await this.#chain;
  }

  #enqueue(bytes: Promise<Uint8Array>): void {
    this.#chain = this.#chain.then(async () => {
      const b = await bytes;
      this.#c.counters.bytesSent += b.length;
      await this.#c.send(b);
    }).catch((e) => this.#c.log.warn("ledger: send failed", { error: errorMessage(e) }));
  }
}
