/**
 * The quiet sync protocol: who answers a peer's digest or block with our full block, when, and
 * how blocks and digests go out (one send at a time, the encoded block cached per head).
 */

import type { Clock } from "../util/clock.ts";
import { errorMessage } from "../util/errors.ts";
import type { Logger } from "../util/logger.ts";
import { type Block, sameStorage, type Storage } from "./block.ts";
import { type Entry, sameEntry } from "./entry.ts";
import { changedKeys } from "./limits.ts";
import { compareGoStrings } from "./json.ts";
import type { OwnershipMode } from "./policy.ts";
import { type Digest, encodeBlockMessage, encodeDeltaMessage, encodeDigest } from "./wire.ts";

/** Counters the sync protocol keeps (part of the ledger's counters). */
export interface SyncCounters {
  fullBlocksSent: number;
  digestsSent: number;
  /** Full blocks sent to answer a differing head. */
  repliesSent: number;
  /** Answers withheld by the divergence backoff. */
  repliesSuppressed: number;
  bytesSent: number;
  /** Local writes whose broadcast joined a later one (see `sendFullSoon`). */
  broadcastsCoalesced: number;
  /** Sends the transport refused (e.g. a block above the network's message size). */
  sendFailures: number;
  /** Deltas sent instead of our full block after local writes. */
  deltasSent: number;
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
 * ```ts ignore
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
 * ```ts ignore
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
 * ```ts ignore
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

/** First wait before the same divergence is answered again (then twice as long each time). */
export const DIVERGENCE_RETRY_FIRST_MS = 2_000;

/**
 * Default least time between a full block we sent and a reply: a reply is a broadcast, so one
 * answers every peer that diverged meanwhile. Without it, ten nodes joining at once (each digest
 * a new divergence) had every established node send its block of a thousand entries several
 * times a second, which starved a shared machine until the joiners never got the ledger.
 */
export const REPLY_MIN_INTERVAL_MS = 2_000;

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
  /** Longest wait before the same divergence is answered again. */
  backoffMs: number;
  /** Least time between our last full block and a reply; default {@link REPLY_MIN_INTERVAL_MS}. */
  replyIntervalMs?: number;
  /**
   * Least time between two broadcasts after local writes ({@link SyncSender.sendFullSoon}):
   * a burst of writes becomes one broadcast per interval. 0 sends after every write.
   */
  minBroadcastIntervalMs?: number;
  /** Whether local writes may go out as deltas ({@link SyncSender.sendFullSoon}). */
  deltas?: boolean;
}

/**
 * Sends our blocks and digests in order, one at a time, and schedules replies: one pending
 * reply at most, after a random delay (so that one peer answers for all) and not within
 * the reply interval ({@link REPLY_MIN_INTERVAL_MS}) of our last full block; the same divergence
 * is answered again after {@link DIVERGENCE_RETRY_FIRST_MS}, then twice as long each time, up
 * to the backoff: a reply lost on the way (a peer whose gossip link was down, a topic rotating
 * under it) is made good within seconds, and a peer that cannot use our block is answered only
 * once a backoff.
 *
 * @example
 * ```ts ignore
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
  /** Divergences answered: when last, and how many times in a row. */
  readonly #answered = new Map<string, { at: number; times: number }>();
  #stopped = false;
  /** When our last full block or delta left, and the head it carried. */
  #lastFull = { at: -Infinity, hash: "" };
  /** When our last full block left (deltas aside): replies are paced from it. */
  #lastFullBlockAt = -Infinity;
  /** The storage our last broadcast carried (what a delta is taken against). */
  #lastSentStorage?: Storage;
  /** The broadcast that the writes of the current interval wait for. */
  #soon?: unknown;

  constructor(components: SyncSenderComponents) {
    this.#c = components;
  }

  /** The gzip message of `block` (kept: the next full send of that block reuses it). */
  encodeFull(block: Block): Promise<Uint8Array> {
    if (this.#fullCache?.hash !== block.hash) {
      this.#fullCache = { hash: block.hash, bytes: encodeBlockMessage(block) };
    }
    return this.#fullCache.bytes;
  }

  /** Sends our head as a full block (cancelling any pending reply: this is it). */
  sendFull(): void {
    if (this.#stopped) return;
    this.cancelReply();
    const block = this.#c.head();
    this.#lastFull = { at: this.#c.now(), hash: block.hash };
    this.#lastFullBlockAt = this.#lastFull.at;
    this.#lastSentStorage = block.storage;
    const bytes = this.encodeFull(block);
    this.#c.counters.fullBlocksSent++;
    this.#enqueue(bytes);
  }

  /**
   * Broadcasts our head after a local write: at once when no full block left within the
   * minimum interval, else once that interval ends, carrying every write made meanwhile.
   */
  sendFullSoon(): void {
    if (this.#stopped) return;
    if (this.#soon !== undefined) {
      this.#c.counters.broadcastsCoalesced++;
      return;
    }
    const wait = this.#lastFull.at + (this.#c.minBroadcastIntervalMs ?? 0) - this.#c.now();
    if (wait <= 0) {
      this.#sendChanges();
      return;
    }
    this.#c.counters.broadcastsCoalesced++;
    this.#soon = this.#c.clock.setTimeout(() => {
      this.#soon = undefined;
      // A reply may have carried this head already.
      if (this.#c.head().hash !== this.#lastFull.hash) this.#sendChanges();
    }, wait);
  }

  /**
   * Sends what changed since our last broadcast: a delta when deltas are on and it holds at
   * most half our entries, else the full block. Keys only removed (pruned) need no delta: a
   * peer prunes them by the same rule.
   */
  #sendChanges(): void {
    const head = this.#c.head();
    const base = this.#lastSentStorage;
    if (!this.#c.deltas || base === undefined) return this.sendFull();
    const changed = changedKeys(base, head.storage);
    let total = 0;
    for (const bucket of head.storage.values()) total += bucket.size;
    if (changed.length === 0 || changed.length > total / 2) return this.sendFull();
    const storage = new Map<string, Map<string, Entry>>();
    for (const [bucket, key] of changed) {
      let kv = storage.get(bucket);
      if (kv === undefined) storage.set(bucket, kv = new Map());
      kv.set(key, head.storage.get(bucket)!.get(key)!);
    }
    this.#lastFull = { at: this.#c.now(), hash: head.hash };
    this.#lastSentStorage = head.storage;
    this.#c.counters.deltasSent++;
    // Index 0 and no hash: a Go node in ownership off (whole-block adoption) never adopts it.
    this.#enqueue(
      encodeDeltaMessage(
        { index: 0, timestamp: head.timestamp, storage, hash: "", prevHash: "" },
        head,
      ),
    );
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
    const answered = this.#answered.get(key);
    if (answered !== undefined && now() - answered.at < this.#retryAfter(answered.times)) {
      this.#c.counters.repliesSuppressed++;
      return;
    }
    // Not sooner than the reply interval after our last full block, whatever it answered.
    const paced = this.#lastFullBlockAt + (this.#c.replyIntervalMs ?? REPLY_MIN_INTERVAL_MS) -
      now();
    const timer = clock.setTimeout(() => {
      this.#reply = undefined;
      if (this.#answered.size >= 1024) this.#answered.clear();
      // A divergence seen again long after its last answer starts over at the first wait.
      const recent = answered !== undefined && now() - answered.at < 2 * this.#c.backoffMs;
      this.#answered.set(key, { at: now(), times: recent ? answered.times + 1 : 1 });
      this.#c.counters.repliesSent++;
      this.sendFull();
    }, Math.max(paced, random() * this.#c.replyDelayMs));
    this.#reply = { timer, key };
  }

  /** How long a divergence answered `times` times in a row waits before the next answer. */
  #retryAfter(times: number): number {
    return Math.min(this.#c.backoffMs, DIVERGENCE_RETRY_FIRST_MS * 2 ** Math.min(times - 1, 30));
  }

  /** Drops a pending reply. */
  cancelReply(): void {
    if (this.#reply) this.#c.clock.clearTimeout(this.#reply.timer);
    this.#reply = undefined;
  }

  /** Sends a pending coalesced broadcast, then nothing more; resolves once all is sent. */
  async stop(): Promise<void> {
    if (this.#soon !== undefined) {
      // Writes that returned wait for this broadcast: it leaves now.
      this.#c.clock.clearTimeout(this.#soon);
      this.#soon = undefined;
      if (this.#c.head().hash !== this.#lastFull.hash) this.#sendChanges();
    }
    this.#stopped = true;
    this.cancelReply();
    await this.#chain;
  }

  #enqueue(bytes: Promise<Uint8Array>): void {
    this.#chain = this.#chain.then(async () => {
      const b = await bytes;
      this.#c.counters.bytesSent += b.length;
      await this.#c.send(b);
    }).catch((e) => {
      this.#c.counters.sendFailures++;
      this.#c.log.warn("ledger: send failed", { error: errorMessage(e) });
    });
  }
}
