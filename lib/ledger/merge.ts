/** The authorized per-key merge (Go `Ledger.merge`/`accept`), the reaper's plan and tombstone pruning. */

import { type Storage, StorageDraft } from "./block.ts";
import { type Entry, isSigned, sameEntry } from "./entry.ts";
import { compareBytes, compareGoStrings } from "./json.ts";
import { BUCKETS } from "./buckets.ts";
import { type BucketPolicy, isLive, liveValues, policyOf, type Registry } from "./policy.ts";

/** Why an incoming entry was not taken (stable codes, used as counter names). */
export type EntryRejectReason =
  | "signature_invalid"
  | "tombstone_unknown_key"
  | "tombstone_not_owner"
  | "tombstone_stale"
  | "owner_mismatch"
  | "reclaim_stale"
  | "hijack"
  | "rollback"
  | "tie_break_lost";

/** Why an incoming entry was skipped without being a violation. */
export type EntryIgnoreReason = "stale_version" | "tombstone_expired";

/** One policy violation found by a merge. */
export interface Violation {
  readonly bucket: string;
  readonly key: string;
  readonly owner: string;
  readonly reason: EntryRejectReason;
  /** True in observe mode, where violations are logged and accepted anyway. */
  readonly accepted: boolean;
}

/** Inputs of a merge besides the two storages. */
export interface MergeContext {
  readonly mode: "observe" | "enforce";
  readonly registry: Registry;
  /** Liveness window of owners (ownership TTL). */
  readonly ttlNs: bigint;
  /** Age after which tombstones are garbage (pruned locally, not imported for unknown keys). */
  readonly tombstoneTtlNs: bigint;
  readonly nowNs: bigint;
  /** Signature results for the entries {@link entriesToVerify} listed. */
  readonly signatureValid: (bucket: string, key: string) => boolean;
}

/** Outcome of {@link mergeStorage}. */
export interface MergeResult {
  readonly storage: Storage;
  readonly changed: boolean;
  readonly violations: readonly Violation[];
  readonly ignored: ReadonlyMap<EntryIgnoreReason, number>;
}

/**
 * The incoming entries whose signature the merge will look at: every changed entry of an owned
 * bucket, and every changed entry that carries a signature in an open bucket.
 *
 * @example
 * ```ts
 * entriesToVerify(new Map(), new Map(), new Map()); // []
 * ```
 */
export function entriesToVerify(
  current: Storage,
  incoming: Storage,
  registry: Registry,
): Array<readonly [string, string, Entry]> {
  const out: Array<readonly [string, string, Entry]> = [];
  for (const [bucket, kv] of incoming) {
    const owned = policyOf(registry, bucket).owned;
    const have = current.get(bucket);
    for (const [key, e] of kv) {
      const ex = have?.get(key);
      if (ex && sameEntry(ex, e)) continue;
      if (owned || isSigned(e)) out.push([bucket, key, e]);
    }
  }
  return out;
}

/**
 * Merges `incoming` into `current` entry by entry under the bucket policies. Pure and
 * synchronous: signatures were checked beforehand. Expiry decisions use the heartbeats of
 * `current` (those arriving in the same block do not count, as in Go).
 *
 * Differences from Go, both for open buckets or garbage only: a signed entry in an open bucket
 * must verify (unsigned ones are still accepted); a tombstone older than the tombstone TTL for
 * a key we do not hold is ignored instead of re-imported after pruning.
 *
 * @example
 * ```ts
 * const r = mergeStorage(new Map(), new Map(), ctx);
 * r.changed; // false
 * ```
 */
export function mergeStorage(current: Storage, incoming: Storage, ctx: MergeContext): MergeResult {
  const health = liveValues(current.get(BUCKETS.healthcheck));
  const draft = new StorageDraft(current);
  const violations: Violation[] = [];
  const ignored = new Map<EntryIgnoreReason, number>();
  const ignore = (r: EntryIgnoreReason) => ignored.set(r, (ignored.get(r) ?? 0) + 1);
  let changed = false;

  for (const [bucket, kv] of incoming) {
    const pol = policyOf(ctx.registry, bucket);
    for (const [key, inc] of kv) {
      // Go creates the bucket for every incoming key, even when the entry is then rejected.
      if (!draft.bucket(bucket)) draft.ensureBucket(bucket);
      const ex = draft.get(bucket, key);
      if (ex && sameEntry(ex, inc)) continue;
      if (!ex && inc.deleted && tombstoneExpired(inc, ctx)) {
        ignore("tombstone_expired");
        continue;
      }
      let reason: EntryRejectReason | undefined;
      if (!pol.owned) {
        if (isSigned(inc) && !ctx.signatureValid(bucket, key)) {
          reason = "signature_invalid";
        } else if (
          ex && (inc.version < ex.version || (inc.version === ex.version && !winsTie(inc, ex)))
        ) {
          ignore("stale_version");
          continue;
        }
      } else {
        reason = acceptOwned(key, inc, ex, pol, health, ctx, ctx.signatureValid(bucket, key));
      }
      if (reason) {
        const accepted = ctx.mode === "observe" && (pol.owned || !ex || inc.version > ex.version);
        violations.push({ bucket, key, owner: inc.owner, reason, accepted });
        if (!accepted) continue;
      }
      draft.set(bucket, key, inc);
      changed = true;
    }
  }
  return { storage: draft.result(), changed, violations, ignored };
}

/**
 * Two signed writes of one open-bucket key with the same version (two nodes writing in the
 * same nanosecond of their clocks): Go keeps whichever each node holds, so the ledgers never
 * agree. Here the same order as for owned entries decides (owner, then signature), so every
 * node keeps the same one. Unsigned (legacy) entries keep Go's rule.
 */
function winsTie(inc: Entry, ex: Entry): boolean {
  if (inc.sig === null || ex.sig === null) return false;
  const byOwner = compareGoStrings(inc.owner, ex.owner);
  return byOwner > 0 || (byOwner === 0 && compareBytes(inc.sig, ex.sig) > 0);
}

function acceptOwned(
  key: string,
  inc: Entry,
  ex: Entry | undefined,
  pol: BucketPolicy,
  health: ReadonlyMap<string, string>,
  ctx: MergeContext,
  signatureValid: boolean,
): EntryRejectReason | undefined {
  if (!signatureValid) return "signature_invalid";
  if (inc.deleted) {
    if (!ex) return "tombstone_unknown_key";
    if (inc.owner !== ownerOf(key, ex, pol) && !expired(key, ex, pol, health, ctx)) {
      return "tombstone_not_owner";
    }
    if (inc.version <= ex.version) return "tombstone_stale";
    return undefined;
  }
  if (pol.ownerOf && pol.ownerOf(key, inc.value) !== inc.owner) return "owner_mismatch";
  if (!ex) return undefined;
  if (ex.deleted) return inc.version <= ex.version ? "reclaim_stale" : undefined;
  if (inc.owner !== ownerOf(key, ex, pol) && !expired(key, ex, pol, health, ctx)) return "hijack";
  if (inc.version < ex.version) return "rollback";
  if (inc.version === ex.version) {
    const byOwner = compareGoStrings(inc.owner, ex.owner);
    if (byOwner > 0 || (byOwner === 0 && compareBytes(inc.sig ?? NO_SIG, ex.sig ?? NO_SIG) > 0)) {
      return undefined;
    }
    return "tie_break_lost";
  }
  return undefined;
}

/**
 * The peer an existing entry belongs to: its signed owner, or for a legacy unsigned entry the
 * owner its value/key names (Go `ownerOf`).
 *
 * @example
 * ```ts
 * ownerOf("peerY", unsignedEntry(""), { owned: true, ownerOf: ownerIsKey, expiry: "liveness" }); // "peerY"
 * ```
 */
export function ownerOf(key: string, ex: Entry, pol: BucketPolicy): string {
  if (ex.owner !== "" || !pol.ownerOf) return ex.owner;
  return pol.ownerOf(key, ex.value);
}

/**
 * Go `expired`: past its lease (owner without a fresh heartbeat, or older than the bucket's
 * absolute TTL); never for buckets without expiry.
 *
 * @example
 * ```ts
 * expired("k", entry, { owned: true, expiry: "none" }, new Map(), ctx); // false
 * ```
 */
export function expired(
  key: string,
  ex: Entry,
  pol: BucketPolicy,
  health: ReadonlyMap<string, string>,
  ctx: Pick<MergeContext, "ttlNs" | "nowNs">,
): boolean {
  switch (pol.expiry) {
    case "absolute":
      return ex.updatedAt * 1_000_000_000n + BigInt(Math.round((pol.ttlMs ?? 0) * 1e6)) < ctx.nowNs;
    case "liveness":
      return !isLive(health, ownerOf(key, ex, pol), ctx.ttlNs, ctx.nowNs);
    default:
      return false;
  }
}

const NO_SIG = new Uint8Array(0);

function tombstoneExpired(e: Entry, ctx: Pick<MergeContext, "tombstoneTtlNs" | "nowNs">): boolean {
  return e.updatedAt * 1_000_000_000n + ctx.tombstoneTtlNs < ctx.nowNs;
}

/** What the reaper will do (Go `Reap`), before the new tombstones are signed. */
export interface ReapPlan {
  /** Tombstones older than the tombstone TTL, to delete outright. */
  readonly prune: ReadonlyArray<readonly [string, string]>;
  /** Live entries past their lease, to replace with a tombstone signed by the reaper. */
  readonly tombstone: ReadonlyArray<readonly [string, string, Entry]>;
}

/**
 * Lists what a reap changes: tombstones older than `tombstoneTtlNs` are pruned (every bucket),
 * expired entries of owned buckets with expiry are tombstoned.
 *
 * @example
 * ```ts
 * planReap(new Map(), registry, ttlNs, tombstoneTtlNs, nowNs).prune.length; // 0
 * ```
 */
export function planReap(
  storage: Storage,
  registry: Registry,
  ttlNs: bigint,
  tombstoneTtlNs: bigint,
  nowNs: bigint,
): ReapPlan {
  const health = liveValues(storage.get(BUCKETS.healthcheck));
  const prune: Array<readonly [string, string]> = [];
  const tombstone: Array<readonly [string, string, Entry]> = [];
  for (const [bucket, kv] of storage) {
    const pol = policyOf(registry, bucket);
    for (const [key, e] of kv) {
      if (e.deleted) {
        if (tombstoneExpired(e, { tombstoneTtlNs, nowNs })) prune.push([bucket, key]);
        continue;
      }
      if (!pol.owned || pol.expiry === "none") continue;
      if (expired(key, e, pol, health, { ttlNs, nowNs })) tombstone.push([bucket, key, e]);
    }
  }
  return { prune, tombstone };
}

/**
 * Storage without tombstones older than `tombstoneTtlNs`, or undefined when there are none.
 * Run on every node so pruned tombstones do not bounce between peers forever.
 *
 * @example
 * ```ts
 * pruneTombstones(new Map(), 1n, 0n); // undefined
 * ```
 */
export function pruneTombstones(
  storage: Storage,
  tombstoneTtlNs: bigint,
  nowNs: bigint,
): Storage | undefined {
  let draft: StorageDraft | undefined;
  for (const [bucket, kv] of storage) {
    for (const [key, e] of kv) {
      if (e.deleted && tombstoneExpired(e, { tombstoneTtlNs, nowNs })) {
        draft ??= new StorageDraft(storage);
        draft.deleteKey(bucket, key);
      }
    }
  }
  return draft?.result();
}
