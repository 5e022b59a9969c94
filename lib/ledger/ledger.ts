/**
 * The ledger: its state (the last block), local writes, and receiving and merging peers' blocks.
 * The quiet sync protocol is in `sync.ts`, periodic jobs in `jobs.ts`, the save queue in
 * `save_queue.ts`.
 */

import { OPTIONS } from "../config/options.ts";
import { verifyPeerSignature } from "../crypto/identity.ts";
import { EdgeVpnError, errorMessage, InputError } from "../util/errors.ts";
import { msToNs } from "../util/gotime.ts";
import { leader } from "../util/leader.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { type Clock, systemClock } from "../util/clock.ts";
import { TypedEventTarget } from "../util/events.ts";
import {
  type Block,
  genesisBlock,
  nextBlock,
  sameStorage,
  type Storage,
  StorageDraft,
  storageHash,
  verifyBlockHash,
} from "./block.ts";
import {
  type EntrySigner,
  ownEntry,
  ownTombstone,
  sameEntry,
  type SignatureVerifier,
  signEntry,
  versionAfter,
} from "./entry.ts";
import { compareGoStrings, goMarshal, parseJson } from "./json.ts";
import {
  entriesToVerify,
  type EntryIgnoreReason,
  type EntryRejectReason,
  mergeStorageSliced,
  planReap,
  pruneTombstones,
  type Violation,
} from "./merge.ts";
import { BUCKETS, healthcheckCodec } from "./buckets.ts";
import {
  defaultRegistry,
  isLive,
  liveValues,
  type OwnershipMode,
  type Registry,
} from "./policy.ts";
import {
  announceDeleteBucket,
  announceDeleteBucketKey,
  announceUpdate,
  type Job,
  JobSet,
  persist,
} from "./jobs.ts";
import {
  DEFAULT_LEDGER_LIMITS,
  enforceQuotas,
  entryBytes,
  LedgerLimitError,
  type LedgerLimits,
  ownerBytes,
} from "./limits.ts";
import { ReceiveQueue } from "./receive_queue.ts";
import { SaveQueue } from "./save_queue.ts";
import { SignatureChecker } from "./signature_cache.ts";
import { better, replyToBlock, replyToDigest, SyncSender } from "./sync.ts";
import type { LedgerStore } from "./store.ts";
import { MemoryStore } from "./store_memory.ts";
import { DEFAULT_TIME_BOUNDS, entriesToRedate, type TimeBounds } from "./time_bounds.ts";
import { ViolationLog } from "./violation_log.ts";
import { Slicer } from "../util/slicer.ts";
import {
  decodeMessage,
  DEFAULT_MESSAGE_LIMITS,
  type DeltaHead,
  type Digest,
  type MessageLimits,
} from "./wire.ts";

export type { Job } from "./jobs.ts";
export { versionAfter } from "./entry.ts";

/** Go's default ownership TTL: 4 × the heartbeat interval (120 s): 480 s. */
export const DEFAULT_OWNERSHIP_TTL_MS = 4 * OPTIONS.alivenessHealthcheckInterval.default * 1000;
/** Tombstones older than this are garbage: 3 × Go's aliveness max-interval (900 s): 2 700 s. */
export const DEFAULT_TOMBSTONE_TTL_MS = 3 * OPTIONS.alivenessHealthcheckMaxInterval.default * 1000;
/** Least time between two broadcasts after local writes. */
export const DEFAULT_BROADCAST_INTERVAL_MS = 1000;
/** Longest random wait before answering a peer whose head differs (lets one peer answer for all). */
export const DEFAULT_REPLY_DELAY_MS = 500;
/**
 * The same (their head, our head) divergence is answered again after 2 s, then after twice as
 * long each time, up to this: a reply lost on the way (a peer whose gossip link was down, a
 * topic rotating under it) is made good within seconds, and a peer that cannot use our block
 * is answered only once a minute.
 */
export const DEFAULT_DIVERGENCE_BACKOFF_MS = 60_000;
export { DIVERGENCE_RETRY_FIRST_MS } from "./sync.ts";

/** Broadcasts bytes to every peer (the hub seals and publishes them on the main topic). */
export type SendFunction = (bytes: Uint8Array) => void | Promise<void>;

/** Components and settings of a ledger; everything but `identity` (for signed modes) is optional. */
export interface LedgerOptions {
  /** Signs our entries under observe/enforce and names us (peer ID) in every mode. */
  identity?: EntrySigner;
  /** Ownership mode; default `off` (Go library default; the CLI passes `enforce`). */
  mode?: OwnershipMode;
  /** Liveness window of owners; default 480 000 ms. */
  ownershipTtlMs?: number;
  /** Age after which tombstones are pruned and no longer imported; default 2 700 000 ms. */
  tombstoneTtlMs?: number;
  /** Bucket policies; default {@link defaultRegistry} of the ownership TTL. */
  registry?: Registry;
  /** Where the last block is kept; default a {@link MemoryStore}. */
  store?: LedgerStore;
  /** Broadcast function; default drops messages. */
  send?: SendFunction;
  logger?: Logger;
  /** Time and timers of every periodic job, sync reply and write timeout; default the system's. */
  clock?: Clock;
  /** Time in epoch milliseconds when it differs from `clock.now` (tests); default `clock.now`. */
  now?: () => number;
  /** Randomness for jitter; default `Math.random`. */
  random?: () => number;
  /** Signature verification; default Ed25519 of the key inlined in the peer ID. */
  verify?: SignatureVerifier;
  limits?: Partial<MessageLimits>;
  /**
   * Quiet gossip (default true): sync ticks send a digest instead of the full block, and the
   * full block is sent only on change or to peers whose head differs. False: Go's behaviour.
   */
  quiet?: boolean;
  /** Upper bound of the random delay before a reply; default 500 ms. */
  replyDelayMs?: number;
  /**
   * Least time between our last full block and a reply (a broadcast answers every diverging
   * peer at once); default 2 000 ms.
   */
  replyIntervalMs?: number;
  /** Longest wait before the same divergence is answered again; default 60 000 ms. */
  divergenceBackoffMs?: number;
  /** How far in the future peers' entries may be; default {@link DEFAULT_TIME_BOUNDS}. */
  timeBounds?: TimeBounds;
  /**
   * Limits of local writes: the largest block a broadcast carries (set it to the hub's
   * `maxPayloadBytes`) and each owner's quota; default {@link DEFAULT_LEDGER_LIMITS}.
   */
  sizeLimits?: Partial<LedgerLimits>;
  /**
   * Least time between two broadcasts after local writes; default 1 000 ms. A burst of writes
   * becomes one broadcast per interval (the first write of a quiet period leaves at once).
   */
  broadcastIntervalMs?: number;
  /**
   * Signed modes: after local writes, send only the entries changed since our last broadcast
   * (a delta, see `wire.ts`) when that is smaller than our block; default true.
   */
  deltas?: boolean;
}

/** What {@link Ledger.receive} did with a message. */
export type ReceiveResult =
  | { readonly kind: "block"; readonly changed: boolean }
  | { readonly kind: "digest"; readonly differs: boolean }
  | { readonly kind: "rejected"; readonly reason: string; readonly message: string }
  | { readonly kind: "stopped" };

/** Why the last block changed. */
export type ChangeCause = "local" | "merge" | "adopt" | "reap" | "prune";

/** Detail of the `change` event. */
export interface ChangeDetail {
  readonly block: Block;
  readonly cause: ChangeCause;
  /** False when only the block changed (off mode adopted a peer's block with equal content). */
  readonly contentChanged: boolean;
}

/** Detail of the `rejected` event: a whole message dropped. */
export interface RejectedDetail {
  readonly reason: string;
  readonly message: string;
}

/** The detail each ledger event carries, by event name. */
export interface LedgerEventDetails {
  change: ChangeDetail;
  violation: Violation;
  rejected: RejectedDetail;
}

/** Events a ledger dispatches. */
export interface LedgerEventMap {
  /** The last block changed (and is being persisted). */
  change: CustomEvent<ChangeDetail>;
  /** An incoming entry broke a bucket policy (dropped under enforce, kept under observe). */
  violation: CustomEvent<Violation>;
  /** A received message was dropped as a whole. */
  rejected: CustomEvent<RejectedDetail>;
}

/** Counters of a ledger, by reason where there is one. */
export interface LedgerCounters {
  messagesReceived: number;
  blocksReceived: number;
  digestsReceived: number;
  /** Deltas received (a peer's changes since its last broadcast). */
  deltasReceived: number;
  /** Deltas sent instead of our full block after local writes. */
  deltasSent: number;
  /** Better heads with our entries adopted from a digest alone (no full block needed). */
  headsAdopted: number;
  /** Received blocks that changed our last block. */
  blocksApplied: number;
  /** Whole messages dropped, by reason (`gzip_invalid`, `hash_invalid`, `limit_exceeded`, …). */
  rejectedMessages: Record<string, number>;
  /** Entries dropped, by {@link EntryRejectReason}. */
  rejectedEntries: Record<string, number>;
  /** Violations accepted anyway in observe mode, by reason. */
  observedViolations: Record<string, number>;
  /** Entries skipped as not newer, by {@link EntryIgnoreReason}. */
  ignoredEntries: Record<string, number>;
  fullBlocksSent: number;
  digestsSent: number;
  /** Full blocks sent to answer a differing head. */
  repliesSent: number;
  /** Answers withheld by the divergence backoff. */
  repliesSuppressed: number;
  bytesSent: number;
  /** Local writes whose broadcast joined a later one (one broadcast per interval at most). */
  broadcastsCoalesced: number;
  /** Sends the transport refused (e.g. a block above the network's message size). */
  sendFailures: number;
  /** Entry signatures verified (cache misses), answered from the cache, left unchecked. */
  signatures: { checked: number; cached: number; skipped: number };
  persistFailures: number;
  /**
   * Off mode: our recent writes that a better block from a peer dropped (a fork: two nodes wrote
   * at once and the whole-block rule kept the other's), written again on top of it.
   */
  ownWritesRestored: number;
}

/** Off mode: how long a local write is watched for being dropped by a fork, in milliseconds. */
const RESTORE_WINDOW_MS = 60_000;
/** Off mode: at most this many recent local writes are watched. */
const RESTORE_MAX_KEYS = 4096;

/**
 * A recent local write in off mode (`value` undefined: a delete), with the values the key held
 * before it and before our earlier writes of it in the window (undefined: absent).
 */
interface RecentWrite {
  bucket: string;
  key: string;
  value?: string;
  previous: (string | undefined)[];
  untilMs: number;
}

/**
 * Creates a ledger: loads the store (starting from genesis when empty or unreadable).
 *
 * @throws {EdgeVpnError} `LEDGER_SIGNER_MISSING` when a signed mode has no identity.
 * @example
 * ```ts ignore
 * const ledger = await createLedger({ identity, mode: "enforce", send: (b) => hub.publish(b) });
 * hub.onMessage((bytes) => ledger.receive(bytes));
 * ledger.startSync(10_000);
 * await ledger.add("machines", { "10.1.0.1": { PeerID: identity.peerId } });
 * await ledger.stop();
 * ```
 */
export async function createLedger(options: LedgerOptions = {}): Promise<Ledger> {
  const mode = options.mode ?? "off";
  if (mode !== "off" && !options.identity) {
    throw new EdgeVpnError(
      "LEDGER_SIGNER_MISSING",
      `Ownership mode ${mode} needs an identity to sign with`,
    );
  }
  const store = options.store ?? new MemoryStore();
  const loaded = await store.load();
  const logger = options.logger ?? silentLogger;
  if (loaded.warning) logger.warn(loaded.warning);
  const clock = options.clock ?? systemClock;
  const now = options.now ?? (() => clock.now());
  const first = loaded.block ?? genesisBlock(msToNs(now()));
  const ledger = new Ledger(options, store, first, loaded.warning);
  if (!loaded.block) await store.save(first);
  return ledger;
}

/**
 * A node's copy of the EdgeVPN ledger. Build it with {@link createLedger}.
 *
 * All state changes (writes, merges, reaping) run one at a time; readers see the last block.
 * The ledger never talks to the network itself: it calls `send` and is fed `receive`.
 *
 * @example
 * ```ts
 * const ledger = await createLedger();
 * ledger.addEventListener("change", (e) => console.log(e.detail.block.index));
 * await ledger.add("nodes", { a: "1" });
 * ledger.getKey("nodes", "a"); // '"1"'
 * ```
 */
export class Ledger extends TypedEventTarget<LedgerEventDetails> {
  /** Warning from loading the store, when its state was unusable. */
  readonly loadWarning?: string;
  readonly mode: OwnershipMode;

  readonly #store: LedgerStore;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #verify: SignatureVerifier;
  readonly #registry: Registry;
  readonly #selfId?: string;
  readonly #signer?: EntrySigner;
  readonly #ttlNs: bigint;
  readonly #tombstoneTtlMs: number;
  readonly #limits: MessageLimits;
  readonly #quiet: boolean;
  readonly #sync: SyncSender;
  readonly #timeBounds: TimeBounds;
  readonly #sizeLimits: LedgerLimits;
  readonly #signatures: SignatureChecker;
  readonly #violationLog: ViolationLog;
  readonly #inbox: ReceiveQueue;

  #last: Block;
  #queue: Promise<unknown> = Promise.resolve();
  #contentCache?: { storage: Storage; hash: Promise<string> };
  readonly #jobs: JobSet;
  #stopped = false;
  readonly #saves: SaveQueue;
  #counters: LedgerCounters = {
    messagesReceived: 0,
    blocksReceived: 0,
    digestsReceived: 0,
    deltasReceived: 0,
    deltasSent: 0,
    headsAdopted: 0,
    blocksApplied: 0,
    rejectedMessages: {},
    rejectedEntries: {},
    observedViolations: {},
    ignoredEntries: {},
    fullBlocksSent: 0,
    digestsSent: 0,
    repliesSent: 0,
    repliesSuppressed: 0,
    bytesSent: 0,
    broadcastsCoalesced: 0,
    sendFailures: 0,
    signatures: { checked: 0, cached: 0, skipped: 0 },
    persistFailures: 0,
    ownWritesRestored: 0,
  };
  /** Off mode: recent local writes, by bucket and key (see {@link LedgerCounters}). */
  readonly #recentWrites = new Map<string, RecentWrite>();

  /** Use {@link createLedger}. */
  constructor(options: LedgerOptions, store: LedgerStore, first: Block, loadWarning?: string) {
    super();
    this.mode = options.mode ?? "off";
    this.loadWarning = loadWarning;
    this.#store = store;
    this.#log = options.logger ?? silentLogger;
    this.#clock = options.clock ?? systemClock;
    const clock = this.#clock;
    this.#now = options.now ?? (() => clock.now());
    this.#random = options.random ?? Math.random;
    this.#verify = options.verify ?? verifyPeerSignature;
    const ttlMs = options.ownershipTtlMs ?? DEFAULT_OWNERSHIP_TTL_MS;
    this.#ttlNs = msToNs(ttlMs);
    this.#registry = options.registry ?? defaultRegistry(ttlMs);
    this.#tombstoneTtlMs = options.tombstoneTtlMs ?? DEFAULT_TOMBSTONE_TTL_MS;
    this.#selfId = options.identity?.peerId;
    this.#signer = this.mode === "off" ? undefined : options.identity;
    this.#limits = { ...DEFAULT_MESSAGE_LIMITS, ...options.limits };
    this.#quiet = options.quiet ?? true;
    this.#timeBounds = options.timeBounds ?? DEFAULT_TIME_BOUNDS;
    this.#sizeLimits = { ...DEFAULT_LEDGER_LIMITS, ...options.sizeLimits };
    this.#signatures = new SignatureChecker(this.#verify);
    this.#violationLog = new ViolationLog(this.#log, { now: this.#now });
    this.#inbox = new ReceiveQueue((bytes, from) => this.receive(bytes, from), {
      onDrop: (reason) => this.#count(this.#counters.rejectedMessages, reason),
    });
    this.#last = first;
    this.#sync = new SyncSender({
      send: options.send ?? (() => {}),
      head: () => this.#last,
      clock: this.#clock,
      now: this.#now,
      random: this.#random,
      log: this.#log,
      counters: this.#counters,
      replyDelayMs: options.replyDelayMs ?? DEFAULT_REPLY_DELAY_MS,
      replyIntervalMs: options.replyIntervalMs,
      minBroadcastIntervalMs: options.broadcastIntervalMs ?? DEFAULT_BROADCAST_INTERVAL_MS,
      // Go peers in the signed modes merge a delta as any block; off mode adopts whole blocks.
      deltas: this.mode !== "off" && (options.deltas ?? true),
      backoffMs: options.divergenceBackoffMs ?? DEFAULT_DIVERGENCE_BACKOFF_MS,
    });
    this.#jobs = new JobSet({ clock: this.#clock, random: this.#random, log: this.#log });
    this.#saves = new SaveQueue((block) => store.save(block), (e) => {
      this.#counters.persistFailures++;
      this.#log.error("ledger: cannot persist the ledger", { error: errorMessage(e) });
    });
  }

  // ---- readers ----------------------------------------------------------------------------

  /** The last block. */
  lastBlock(): Block {
    return this.#last;
  }

  /** Index of the last block (Go `Index`). */
  index(): number {
    return this.#last.index;
  }

  /** The raw storage, tombstones included (Go `CurrentStorage`). */
  currentStorage(): Storage {
    return this.#last.storage;
  }

  /** Live values by bucket and key; tombstones hidden, buckets without live keys omitted. */
  currentData(): Map<string, Map<string, string>> {
    const out = new Map<string, Map<string, string>>();
    for (const [name, bucket] of this.#last.storage) {
      const live = liveValues(bucket);
      if (live.size > 0) out.set(name, live);
    }
    return out;
  }

  /** The live value text of `bucket`/`key`, or undefined (Go `GetKey`). */
  getKey(bucket: string, key: string): string | undefined {
    const e = this.#last.storage.get(bucket)?.get(key);
    return e && !e.deleted ? e.value : undefined;
  }

  /** True when some live value of `bucket` satisfies `predicate` (Go `Exists`). */
  exists(bucket: string, predicate: (value: string) => boolean): boolean {
    for (const e of this.#last.storage.get(bucket)?.values() ?? []) {
      if (!e.deleted && predicate(e.value)) return true;
    }
    return false;
  }

  /** Whether `owner` has a fresh heartbeat; always true in off mode (Go `IsOwnerLive`). */
  isOwnerLive(owner: string): boolean {
    if (this.mode === "off") return true;
    return isLive(
      liveValues(this.#last.storage.get(BUCKETS.healthcheck)),
      owner,
      this.#ttlNs,
      this.#nowNs(),
      this.#timeBounds.skewNs,
    );
  }

  /** Peers whose heartbeat is younger than `maxTimeMs`, sorted (Go `AvailableNodes`). */
  availableNodes(maxTimeMs: number): string[] {
    const now = this.#nowNs();
    const max = msToNs(maxTimeMs);
    const out: string[] = [];
    for (const [peer, value] of liveValues(this.#last.storage.get(BUCKETS.healthcheck))) {
      const t = healthcheckCodec.parse(value);
      // A heartbeat from the future (a clock far ahead, or forged) does not make a node available.
      if (t !== undefined && t + max > now && t <= now + this.#timeBounds.skewNs) out.push(peer);
    }
    return out.sort(compareGoStrings);
  }

  /** {@link storageHash} of the last block's (or `block`'s) storage: equal on nodes holding equal entries. */
  contentHash(block: Block = this.#last): Promise<string> {
    if (this.#contentCache?.storage !== block.storage) {
      this.#contentCache = { storage: block.storage, hash: storageHash(block.storage) };
    }
    return this.#contentCache.hash;
  }

  /** A snapshot of the counters. */
  get counters(): LedgerCounters {
    return structuredClone(this.#counters);
  }

  // ---- local writes -----------------------------------------------------------------------

  /**
   * Writes `values` (key → value, each encoded as Go's `json.Marshal`) into `bucket`; an
   * unchanged value we already own is left as is. Broadcasts the new block when something
   * changed and resolves, with whether it did, once the block is persisted.
   */
  async add(
    bucket: string,
    values: Record<string, unknown> | ReadonlyMap<string, unknown>,
  ): Promise<boolean> {
    const pairs = (values instanceof Map ? [...values] : Object.entries(values))
      .map(([k, v]) => [k.toWellFormed(), goMarshal(v)] as const);
    return await this.#write(async (draft, nowNs) => {
      const name = bucket.toWellFormed();
      let changed = false;
      for (const [key, text] of pairs) {
        const prev = draft.get(name, key);
        const next = await ownEntry(this.#signer, name, key, text, prev, nowNs);
        if (!prev || !sameEntry(prev, next)) {
          draft.set(name, key, next);
          changed = true;
        }
      }
      return changed;
    });
  }

  /** Like {@link add} with a value already encoded as JSON text (kept byte for byte). */
  async addRaw(bucket: string, key: string, valueJson: string): Promise<boolean> {
    try {
      parseJson(valueJson);
    } catch (e) {
      throw new InputError("VALUE_INVALID", `Ledger value must be JSON text: ${errorMessage(e)}`);
    }
    return await this.#write(async (draft, nowNs) => {
      const name = bucket.toWellFormed();
      const k = key.toWellFormed();
      const prev = draft.get(name, k);
      const next = await ownEntry(this.#signer, name, k, valueJson.toWellFormed(), prev, nowNs);
      if (prev && sameEntry(prev, next)) return false;
      draft.set(name, k, next);
      return true;
    });
  }

  /** Deletes `bucket`/`key`: a signed tombstone in signed modes, removal in off mode. */
  async delete(bucket: string, key: string): Promise<boolean> {
    bucket = bucket.toWellFormed();
    key = key.toWellFormed();
    return await this.#write(async (draft, nowNs) => {
      const prev = draft.get(bucket, key);
      if (!prev) return false;
      if (this.#signer) {
        if (prev.deleted) return false;
        draft.set(bucket, key, await ownTombstone(this.#signer!, bucket, key, prev, nowNs));
      } else {
        draft.deleteKey(bucket, key);
      }
      return true;
    });
  }

  /** Deletes a bucket: tombstones every live key in signed modes, removes it in off mode. */
  async deleteBucket(bucket: string): Promise<boolean> {
    bucket = bucket.toWellFormed();
    return await this.#write(async (draft, nowNs) => {
      const current = draft.bucket(bucket);
      if (!current) return false;
      if (!this.#signer) {
        draft.deleteBucket(bucket);
        return true;
      }
      let changed = false;
      for (const [key, prev] of current) {
        if (prev.deleted) continue;
        draft.set(bucket, key, await ownTombstone(this.#signer!, bucket, key, prev, nowNs));
        changed = true;
      }
      return changed;
    });
  }

  /**
   * Go `Reap` (run it on the leader only): prunes tombstones older than `tombstoneTtlMs` and
   * tombstones, signed by us, entries of owned buckets past their lease. No-op in off mode.
   */
  async reap(tombstoneTtlMs = this.#tombstoneTtlMs): Promise<boolean> {
    if (!this.#signer) return false;
    return await this.#write(async (draft, nowNs) => {
      const plan = planReap(
        this.#last.storage,
        this.#registry,
        this.#ttlNs,
        msToNs(tombstoneTtlMs),
        nowNs,
      );
      for (const [bucket, key] of plan.prune) draft.deleteKey(bucket, key);
      for (const [bucket, key, prev] of plan.tombstone) {
        draft.set(bucket, key, await ownTombstone(this.#signer!, bucket, key, prev, nowNs));
      }
      return plan.prune.length + plan.tombstone.length > 0;
    }, "reap");
  }

  /**
   * The alive service's scrub step: when we are the leader of the nodes alive within
   * `maxTimeMs`, reap with a tombstone TTL of 3 × `maxTimeMs` (signed modes) or delete the
   * healthcheck bucket (off mode). Resolves true when we were the leader.
   */
  async scrubIfLeader(maxTimeMs: number): Promise<boolean> {
    const lead = leader(this.availableNodes(maxTimeMs));
    if (lead === undefined || lead !== this.#selfId) return false;
    if (this.mode !== "off") await this.reap(3 * maxTimeMs);
    else await this.deleteBucket(BUCKETS.healthcheck);
    return true;
  }

  /** Writes our heartbeat (`healthcheck[self]` = now as RFC 3339 seconds). */
  async heartbeat(): Promise<boolean> {
    if (!this.#selfId) {
      throw new EdgeVpnError("LEDGER_IDENTITY_MISSING", "Heartbeat needs an identity");
    }
    return await this.add(BUCKETS.healthcheck, {
      [this.#selfId]: healthcheckCodec.value(msToNs(this.#now())),
    });
  }

  // ---- receiving --------------------------------------------------------------------------

  /**
   * Queues a message from the main topic for {@link receive}: messages are handled one at a
   * time, and past the queue's bounds (64 messages, 64 MiB, 8 per peer) dropped and counted
   * (`queue_full`, `peer_queue_full`). Returns whether it was queued.
   */
  enqueue(bytes: Uint8Array, from = ""): boolean {
    return this.#inbox.push(bytes, from);
  }

  /**
   * Handles one message from the main topic: a peer's full block or one of our digests.
   * Never throws: bad input is counted by reason, logged at debug level and reported in the
   * result and a `rejected` event. A block is merged as a whole or not at all.
   */
  async receive(bytes: Uint8Array, from = ""): Promise<ReceiveResult> {
    if (this.#stopped) return { kind: "stopped" };
    this.#counters.messagesReceived++;
    let message;
    try {
      message = await decodeMessage(bytes, this.#limits);
      // Only off mode adopts whole blocks, so only there does the hash decide anything; in the
      // signed modes every entry is checked on its own and Go never checks hashes either.
      if (message.kind === "block" && this.mode === "off") await verifyBlockHash(message.block);
    } catch (e) {
      const reason = e instanceof EdgeVpnError ? e.code.toLowerCase() : "internal";
      return this.#rejectMessage(reason, errorMessage(e));
    }
    let outcome: { result: ReceiveResult; saved?: Promise<void> };
    try {
      outcome = await this.#exclusive(async () => {
        if (this.#stopped) return { result: { kind: "stopped" } as const };
        if (message.kind === "digest") return await this.#onDigest(message.digest);
        if (message.kind === "delta") {
          return await this.#onDelta(message.block, from, message.head);
        }
        return await this.#onBlock(message.block, from);
      });
    } catch (e) {
      this.#log.error("ledger: failed to apply a received message", { error: errorMessage(e) });
      return this.#rejectMessage("internal", errorMessage(e));
    }
    await outcome.saved?.catch(() => {});
    return outcome.result;
  }

  async #onBlock(
    block: Block,
    from: string,
  ): Promise<{ result: ReceiveResult; saved?: Promise<void> }> {
    this.#counters.blocksReceived++;
    const last = this.#last;
    let saved: Promise<void> | undefined;
    if (this.mode === "off") {
      // Legacy whole-block replace: higher index, or same index and greater hash. Our recent
      // writes the block lacks (a fork) are written again on top of it, as Go's announce jobs
      // would; the peers then adopt that longer chain.
      if (better(block, last)) {
        const restored = await this.#restoreRecentWrites(block);
        const next = restored ?? block;
        saved = this.#install(next, "adopt", !sameStorage(next.storage, last.storage));
        if (restored) this.#sync.sendFullSoon();
      } else {
        await this.#restoreRecentWrites(block, true);
      }
    } else {
      saved = (await this.#mergeBlock(block, from)).saved;
    }
    if (saved) this.#counters.blocksApplied++;
    this.#answerBlock(block);
    return { result: { kind: "block", changed: saved !== undefined }, saved };
  }

  /**
   * A peer's changes since its last broadcast: merged entry by entry in the signed modes; never
   * adopted as a block nor answered (it is partial by design). Off mode ignores them.
   */
  async #onDelta(
    block: Block,
    from: string,
    head: DeltaHead | undefined,
  ): Promise<{ result: ReceiveResult; saved?: Promise<void> }> {
    this.#counters.deltasReceived++;
    if (this.mode === "off") return { result: { kind: "block", changed: false } };
    const { saved } = await this.#mergeBlock(block, from, head);
    if (saved) this.#counters.blocksApplied++;
    return { result: { kind: "block", changed: saved !== undefined }, saved };
  }

  async #mergeBlock(
    block: Block,
    from: string,
    deltaHead?: DeltaHead,
  ): Promise<{ saved?: Promise<void> }> {
    const last = this.#last;
    const toVerify = entriesToVerify(last.storage, block.storage, this.#registry);
    const { valid, checked, cached, skipped } = await this.#signatures.check(toVerify);
    this.#counters.signatures.checked += checked;
    this.#counters.signatures.cached += cached;
    this.#counters.signatures.skipped += skipped;
    const nowNs = this.#nowNs();
    const slicer = new Slicer();
    let merged = await mergeStorageSliced(last.storage, block.storage, {
      mode: this.mode as "observe" | "enforce",
      registry: this.#registry,
      ttlNs: this.#ttlNs,
      tombstoneTtlNs: msToNs(this.#tombstoneTtlMs),
      nowNs,
      signatureValid: (bucket, key) => valid.get(bucket)?.get(key) ?? false,
      timeBounds: this.#timeBounds,
    }, slicer);
    if (merged.changed) {
      const q = enforceQuotas(last.storage, merged.storage, this.#sizeLimits.ownerQuotaBytes);
      if (q.refused.length > 0) {
        merged = {
          ...merged,
          storage: q.storage,
          changed: q.changed,
          violations: [...merged.violations, ...q.refused],
        };
      }
    }
    for (const v of merged.violations) {
      this.#recordViolation(v);
      if (slicer.due()) await slicer.pause();
    }
    this.#violationLog.report(from, merged.violations);
    for (const [reason, n] of merged.ignored) this.#count(this.#counters.ignoredEntries, reason, n);
    // Once two ledgers hold the same entries, both keep the higher-ranked of their blocks, so
    // every ledger ends on the same head (Go leaves each node on its own merge blocks).
    // A delta names its sender's head: once our entries are the sender's, they hash to it.
    const candidate = deltaHead ? { ...deltaHead, storage: merged.storage } : block;
    const adoptable = better(candidate, last) &&
      (deltaHead !== undefined || sameStorage(merged.storage, block.storage)) &&
      await hashIsValid(candidate);
    if (!merged.changed) {
      return adoptable ? { saved: this.#install(candidate, "adopt", false) } : {};
    }
    const next = adoptable ? candidate : await nextBlock(last, merged.storage, nowNs);
    return { saved: this.#install(next, "merge", true) };
  }

  async #onDigest(
    digest: Digest,
  ): Promise<{ result: ReceiveResult; saved?: Promise<void> }> {
    this.#counters.digestsReceived++;
    // Off mode compares heads only: no content hash to compute.
    const content = this.mode === "off" ? "" : await this.contentHash();
    const last = this.#last;
    // The same entries under a better head: rebuild that block from our storage and adopt it,
    // as a full block would have us do, without the full block crossing the network.
    if (
      this.mode !== "off" && digest.header !== undefined && digest.contentHash === content &&
      digest.hash !== last.hash && better(digest, last)
    ) {
      const block: Block = {
        index: digest.index,
        timestamp: digest.header.timestamp,
        storage: last.storage,
        prevHash: digest.header.prevHash,
        hash: digest.hash,
      };
      if (await hashIsValid(block)) {
        this.#counters.headsAdopted++;
        return {
          result: { kind: "digest", differs: false },
          saved: this.#install(block, "adopt", false),
        };
      }
    }
    const { differs, reply } = replyToDigest(this.mode, last, content, digest);
    if (reply !== undefined && this.#quiet) this.#sync.scheduleReply(reply);
    return { result: { kind: "digest", differs } };
  }

  /** Decides whether a full block from a peer deserves our full block in return. */
  #answerBlock(theirs: Block): void {
    if (!this.#quiet) return;
    const { reply, cancel } = replyToBlock(
      this.mode,
      this.#last,
      theirs,
      msToNs(this.#tombstoneTtlMs),
      this.#nowNs(),
    );
    if (reply !== undefined) this.#sync.scheduleReply(reply);
    else if (cancel) this.#sync.cancelReply();
  }

  #rejectMessage(reason: string, message: string): ReceiveResult {
    this.#count(this.#counters.rejectedMessages, reason);
    this.#log.debug("ledger: dropped a message", { reason, error: message });
    this.dispatch("rejected", { reason, message });
    return { kind: "rejected", reason, message };
  }

  #recordViolation(v: Violation): void {
    this.#count(
      v.accepted ? this.#counters.observedViolations : this.#counters.rejectedEntries,
      v.reason,
    );
    this.dispatch("violation", v);
  }

  // ---- gossip -----------------------------------------------------------------------------

  /**
   * One Syncronizer round: prunes expired tombstones (signed modes), then sends our digest
   * (quiet) or our full block (Go behaviour).
   */
  async syncTick(): Promise<void> {
    if (this.#stopped) return;
    await this.#redateFutureEntries();
    if (this.mode !== "off") {
      const saved = await this.#exclusive(async () => {
        const nowNs = this.#nowNs();
        const pruned = pruneTombstones(this.#last.storage, msToNs(this.#tombstoneTtlMs), nowNs);
        if (!pruned) return {};
        return { saved: this.#install(await nextBlock(this.#last, pruned, nowNs), "prune", true) };
      });
      await saved.saved?.catch(() => {});
    }
    if (this.#stopped) return;
    if (this.#quiet) {
      const last = this.#last;
      const contentHash = await this.contentHash(last);
      await this.#sync.sendDigest({
        index: last.index,
        hash: last.hash,
        contentHash,
        header: { timestamp: last.timestamp, prevHash: last.prevHash },
      });
    } else {
      this.#sync.sendFull();
    }
  }

  /**
   * Signs again, with the right time, our entries written while our clock ran ahead: peers
   * refuse them (see `time_bounds.ts`) until then.
   */
  async #redateFutureEntries(): Promise<void> {
    const signer = this.#signer;
    if (!signer || this.#stopped) return;
    const stale = entriesToRedate(
      this.#last.storage,
      signer.peerId,
      this.#nowNs(),
      this.#timeBounds,
    );
    if (stale.length === 0) return;
    this.#log.info("ledger: signing again entries dated in the future", { entries: stale.length });
    await this.#write(async (draft, nowNs) => {
      for (const [bucket, key, e] of stale) {
        draft.set(
          bucket,
          key,
          await signEntry(signer, bucket, key, {
            value: e.value,
            version: versionAfter(e.version, nowNs),
            updatedAt: nowNs / 1_000_000_000n,
            deleted: e.deleted,
          }),
        );
      }
      return true;
    }).catch((e) =>
      this.#log.warn("ledger: cannot sign entries again", { error: errorMessage(e) })
    );
  }

  // ---- timers -----------------------------------------------------------------------------

  /** Starts the Syncronizer: {@link syncTick} now, then on the backoff schedule of `intervalMs`. */
  startSync(intervalMs: number): Job {
    return this.announce(intervalMs, () => this.syncTick());
  }

  /** Runs `job` now and then on the backoff schedule of `intervalMs` (Go `Announce`). */
  announce(intervalMs: number, job: () => void | Promise<void>): Job {
    this.#assertRunning();
    return this.#jobs.announce(intervalMs, job);
  }

  /** Each tick, writes `value` unless the stored value already equals it (Go `AnnounceUpdate`). */
  announceUpdate(intervalMs: number, bucket: string, key: string, value: unknown): Job {
    this.#assertRunning();
    return announceUpdate(this.#jobs, this, intervalMs, bucket, key, value);
  }

  /**
   * Stops the pending persist or delete job of `bucket`/`key` (of every key of `bucket` without
   * `key`), so that a direct write to the key
   * is not undone by an older value being written again.
   */
  supersede(bucket: string, key?: string): void {
    this.#jobs.supersede(bucket.toWellFormed(), key?.toWellFormed());
  }

  /** Like {@link announceUpdate} but stops once the value is stored or after `timeoutMs` (Go `Persist`). */
  persist(intervalMs: number, timeoutMs: number, bucket: string, key: string, value: unknown): Job {
    this.#assertRunning();
    return persist(this.#jobs, this, intervalMs, timeoutMs, bucket, key, value);
  }

  /** Deletes `bucket` each tick until it is gone or `timeoutMs` passed (Go `AnnounceDeleteBucket`). */
  announceDeleteBucket(intervalMs: number, timeoutMs: number, bucket: string): Job {
    this.#assertRunning();
    return announceDeleteBucket(this.#jobs, this, intervalMs, timeoutMs, bucket);
  }

  /** Deletes `bucket`/`key` each tick until gone or `timeoutMs` passed (Go `AnnounceDeleteBucketKey`). */
  announceDeleteBucketKey(intervalMs: number, timeoutMs: number, bucket: string, key: string): Job {
    this.#assertRunning();
    return announceDeleteBucketKey(this.#jobs, this, intervalMs, timeoutMs, bucket, key);
  }

  /**
   * Stops every periodic job and pending reply, waits for queued writes, sends and
   * persistence to finish, and closes the store. Later writes throw `LEDGER_STOPPED`.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#jobs.stopAll();
    const sent = this.#sync.stop();
    await this.#inbox.stop();
    await this.#queue.catch(() => {});
    await sent;
    await this.#saves.idle();
    await this.#store.close();
  }

  // ---- internals --------------------------------------------------------------------------

  #nowNs(): bigint {
    return msToNs(this.#now());
  }

  #assertRunning(): void {
    if (this.#stopped) throw new EdgeVpnError("LEDGER_STOPPED", "The ledger is stopped");
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Runs a local mutation; a change becomes a new block that is broadcast and persisted. */
  async #write(
    mutate: (draft: StorageDraft, nowNs: bigint) => Promise<boolean>,
    cause: ChangeCause = "local",
  ): Promise<boolean> {
    this.#assertRunning();
    const outcome = await this.#exclusive(async () => {
      this.#assertRunning();
      const nowNs = this.#nowNs();
      const draft = new StorageDraft(this.#last.storage);
      if (!await mutate(draft, nowNs)) return { changed: false };
      const block = await nextBlock(this.#last, draft.result(), nowNs);
      if (cause === "local") await this.#checkLimits(this.#last.storage, block);
      if (cause === "local" && this.mode === "off") {
        this.#noteRecentWrites(this.#last.storage, block.storage);
      }
      const saved = this.#install(block, cause, true);
      this.#sync.sendFullSoon();
      return { changed: true, saved };
    });
    await outcome.saved;
    return outcome.changed;
  }

  /**
   * Refuses a local write that grows our entries past our quota, or the ledger past what one
   * gossip message carries (peers would never receive it: sync would stop).
   *
   * @throws {LedgerLimitError} `LEDGER_QUOTA_EXCEEDED`, `LEDGER_TOO_LARGE`.
   */
  async #checkLimits(before: Storage, block: Block): Promise<void> {
    const { ownerQuotaBytes, maxBroadcastBytes } = this.#sizeLimits;
    const self = this.#signer?.peerId;
    if (self !== undefined && ownerQuotaBytes > 0) {
      const after = ownerBytes(block.storage, self);
      if (after > ownerQuotaBytes && after > ownerBytes(before, self)) {
        throw new LedgerLimitError(
          "LEDGER_QUOTA_EXCEEDED",
          `Cannot write: this node's entries would take ${after} bytes, above its quota of ${ownerQuotaBytes}`,
        );
      }
    }
    if (maxBroadcastBytes === undefined) return;
    const estimate = storageBytes(block.storage);
    // gzip shrinks ledger JSON several times over: only a ledger near the limit is measured.
    if (estimate <= maxBroadcastBytes / 2 || estimate <= storageBytes(before)) return;
    const bytes = await this.#sync.encodeFull(block);
    if (bytes.length > maxBroadcastBytes) {
      throw new LedgerLimitError(
        "LEDGER_TOO_LARGE",
        `Cannot write: the ledger would take ${bytes.length} bytes compressed, above the ${maxBroadcastBytes} one gossip message carries`,
      );
    }
  }

  /** Off mode: remembers what a local write changed, with the values it replaced. */
  #noteRecentWrites(before: Storage, after: Storage): void {
    const untilMs = this.#now() + RESTORE_WINDOW_MS;
    const note = (bucket: string, key: string, value?: string, replaced?: string) => {
      const id = `${bucket}\u0000${key}`;
      const older = this.#recentWrites.get(id);
      // A key written again in the window: a fork may drop the last write or several.
      const previous = older !== undefined && older.untilMs > untilMs - RESTORE_WINDOW_MS
        ? [...older.previous.slice(-7), replaced]
        : [replaced];
      this.#recentWrites.delete(id);
      this.#recentWrites.set(id, { bucket, key, value, previous, untilMs });
      if (this.#recentWrites.size > RESTORE_MAX_KEYS) {
        this.#recentWrites.delete(this.#recentWrites.keys().next().value!);
      }
    };
    for (const [bucket, kv] of after) {
      const old = before.get(bucket);
      if (old === kv) continue;
      for (const [key, e] of kv) {
        const p = old?.get(key);
        if (p?.value !== e.value) note(bucket, key, e.value, p?.value);
      }
    }
    for (const [bucket, kv] of before) {
      const now = after.get(bucket);
      if (now === kv) continue;
      for (const [key, e] of kv) if (!now?.has(key)) note(bucket, key, undefined, e.value);
    }
  }

  /**
   * Off mode: checks our recent writes against a peer's block. A write the block holds is
   * known to that peer (forgotten); one where the block still holds a value our writes
   * replaced was dropped by a fork, and is written again on top of `block` (the block
   * returned); one where the block holds a third value was overwritten by someone since
   * (forgotten). With `checkOnly`, only forgets.
   */
  async #restoreRecentWrites(block: Block, checkOnly = false): Promise<Block | undefined> {
    if (this.#recentWrites.size === 0) return undefined;
    const nowMs = this.#now();
    const draft = new StorageDraft(block.storage);
    let lost = 0;
    for (const [id, w] of this.#recentWrites) {
      const value = block.storage.get(w.bucket)?.get(w.key)?.value;
      if (w.untilMs < nowMs || value === w.value) {
        this.#recentWrites.delete(id);
        continue;
      }
      if (checkOnly) continue;
      if (!w.previous.includes(value)) {
        this.#recentWrites.delete(id);
        continue;
      }
      const prev = draft.get(w.bucket, w.key);
      if (w.value === undefined) draft.deleteKey(w.bucket, w.key);
      else {
        draft.set(
          w.bucket,
          w.key,
          await ownEntry(undefined, w.bucket, w.key, w.value, prev, msToNs(nowMs)),
        );
      }
      lost++;
    }
    if (lost === 0) return undefined;
    this.#counters.ownWritesRestored += lost;
    return await nextBlock(block, draft.result(), msToNs(nowMs));
  }

  #install(block: Block, cause: ChangeCause, contentChanged: boolean): Promise<void> {
    this.#last = block;
    const saved = this.#saves.save(block);
    saved.catch(() => {});
    this.dispatch("change", { block, cause, contentChanged });
    return saved;
  }

  #count(
    table: Record<string, number>,
    reason: EntryRejectReason | EntryIgnoreReason | string,
    n = 1,
  ): void {
    table[reason] = (table[reason] ?? 0) + n;
  }
}

/** Bytes of a storage's entries, as {@link entryBytes} counts them. */
function storageBytes(storage: Storage): number {
  let n = 0;
  for (const bucket of storage.values()) for (const [key, e] of bucket) n += entryBytes(key, e);
  return n;
}

/** Whether a peer's block hash is its content's (a block adopted whole must be). */
async function hashIsValid(block: Block): Promise<boolean> {
  try {
    await verifyBlockHash(block);
    return true;
  } catch {
    return false;
  }
}
