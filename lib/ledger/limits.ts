/**
 * Size limits of the ledger: what one owner's entries may take, the largest block gossip can
 * carry, and how far a received gzip message may inflate. A write beyond them is refused with
 * a {@link LedgerLimitError} (the API answers 413), so the ledger never grows past what peers
 * accept and sync never stops silently.
 */
import { EdgeVpnError } from "../util/errors.ts";
import { type Storage, StorageDraft } from "./block.ts";
import type { Entry } from "./entry.ts";
import type { Violation } from "./merge.ts";

/** Limits of local writes and of merges. */
export interface LedgerLimits {
  /**
   * Largest gzip block a broadcast carries (the hub's `maxPayloadBytes`: half the token's
   * `max_message_size`, as sealed hex doubles it); no limit when undefined.
   */
  maxBroadcastBytes?: number;
  /**
   * Bytes the live entries of one owner may take ({@link entryBytes}); 0 for no quota.
   * Unsigned entries (ownership off) have no owner and no quota.
   */
  ownerQuotaBytes: number;
}

/** Defaults of {@link LedgerLimits}. */
export const DEFAULT_LEDGER_LIMITS: Readonly<LedgerLimits> = {
  ownerQuotaBytes: 8 << 20,
};

/** Limits on how far a received gzip message inflates (see {@link inflationCap}). */
export interface InflateLimits {
  /** Never more than this, whatever the compressed size. */
  maxInflatedBytes: number;
  /** Any message may inflate to this much. */
  inflateFloorBytes: number;
  /** Beyond the floor, at most this many times its compressed size. */
  maxInflateRatio: number;
}

/**
 * Defaults of {@link InflateLimits}: 4 MiB for any message, 32× beyond, 64 MiB at most. Ledger
 * JSON (random signatures and hashes) compresses 3–8×, so honest blocks stay well inside.
 */
export const DEFAULT_INFLATE_LIMITS: Readonly<InflateLimits> = {
  maxInflatedBytes: 64 << 20,
  inflateFloorBytes: 4 << 20,
  maxInflateRatio: 32,
};

/**
 * A write refused because of a limit. Codes: `LEDGER_TOO_LARGE` (the block would not fit a
 * gossip message, or would inflate past what peers accept), `LEDGER_QUOTA_EXCEEDED` (the
 * owner's entries would take more than its quota).
 *
 * @example
 * ```ts
 * const error = new LedgerLimitError("LEDGER_QUOTA_EXCEEDED", "Cannot write tests/k: …");
 * ```
 */
export class LedgerLimitError extends EdgeVpnError {}

/**
 * How many bytes a received gzip message of `compressedBytes` may inflate to: the floor for
 * any message, more in proportion to its size (a legitimate block of several MiB compressed
 * inflates to tens of MiB), never more than the maximum. A zip bomb of 60 KB stops at the floor.
 *
 * @example
 * ```ts
 * inflationCap(60_000, DEFAULT_INFLATE_LIMITS); // 4 MiB
 * inflationCap(1 << 20, DEFAULT_INFLATE_LIMITS); // 32 MiB
 * ```
 */
export function inflationCap(compressedBytes: number, limits: InflateLimits): number {
  return Math.min(
    limits.maxInflatedBytes,
    Math.max(limits.inflateFloorBytes, limits.maxInflateRatio * compressedBytes),
  );
}

/**
 * The bytes an entry counts against its owner's quota: key, value and owner text, and a fixed
 * 160 for the version, time, signature and JSON around them.
 *
 * @example
 * ```ts ignore
 * entryBytes("k", unsignedEntry('"v"')); // 164
 * ```
 */
export function entryBytes(key: string, e: Entry): number {
  return key.length + e.value.length + e.owner.length + 160;
}

/**
 * The bytes `owner`'s live entries take in `storage` (tombstones count too: they are gossiped
 * until pruned).
 *
 * @example
 * ```ts
 * ownerBytes(new Map(), "12D3KooW…"); // 0
 * ```
 */
export function ownerBytes(storage: Storage, owner: string): number {
  let n = 0;
  for (const bucket of storage.values()) {
    for (const [key, e] of bucket) if (e.owner === owner) n += entryBytes(key, e);
  }
  return n;
}

/**
 * Bytes per owner in `storage` (signed entries only).
 *
 * @example
 * ```ts
 * bytesByOwner(new Map()).size; // 0
 * ```
 */
export function bytesByOwner(storage: Storage): Map<string, number> {
  const out = new Map<string, number>();
  for (const bucket of storage.values()) {
    for (const [key, e] of bucket) {
      if (e.owner !== "") out.set(e.owner, (out.get(e.owner) ?? 0) + entryBytes(key, e));
    }
  }
  return out;
}

/**
 * The (bucket, key) pairs whose entry differs between `before` and `after` (added or
 * replaced; keys only in `before` are not listed). Buckets shared by both storages are skipped
 * without a look: writes copy only the buckets they change.
 *
 * @example
 * ```ts ignore
 * changedKeys(before, after); // [["tests", "k"]]
 * ```
 */
export function changedKeys(before: Storage, after: Storage): Array<readonly [string, string]> {
  const out: Array<readonly [string, string]> = [];
  for (const [name, bucket] of after) {
    const old = before.get(name);
    if (old === bucket) continue;
    for (const [key, e] of bucket) if (old?.get(key) !== e) out.push([name, key]);
  }
  return out;
}

/**
 * Takes back, from a merge result `after` of `before`, every change by an owner whose entries
 * now take more than `quota` bytes and more than before: a member cannot grow the ledger
 * past its share, while one already above it (a quota lowered) may still shrink or update.
 *
 * @example
 * ```ts ignore
 * const q = enforceQuotas(last.storage, merged.storage, 8 << 20);
 * q.refused.length; // 0
 * ```
 */
export function enforceQuotas(
  before: Storage,
  after: Storage,
  quota: number,
): { storage: Storage; changed: boolean; refused: Violation[] } {
  const changed = changedKeys(before, after);
  const unchanged = { storage: after, changed: changed.length > 0, refused: [] };
  if (quota <= 0 || changed.length === 0) return unchanged;
  const ownerOf = ([bucket, key]: readonly [string, string]) => after.get(bucket)!.get(key)!.owner;
  const owners = new Set(changed.map(ownerOf).filter((o) => o !== ""));
  if (owners.size === 0) return unchanged;
  const bytesAfter = bytesByOwner(after);
  const over = [...owners].filter((o) => (bytesAfter.get(o) ?? 0) > quota);
  if (over.length === 0) return unchanged;
  const bytesBefore = bytesByOwner(before);
  const revert = new Set(over.filter((o) => bytesAfter.get(o)! > (bytesBefore.get(o) ?? 0)));
  if (revert.size === 0) return unchanged;
  const draft = new StorageDraft(after);
  const refused: Violation[] = [];
  for (const change of changed) {
    const owner = ownerOf(change);
    if (!revert.has(owner)) continue;
    const [bucket, key] = change;
    const prev = before.get(bucket)?.get(key);
    if (prev) draft.set(bucket, key, prev);
    else draft.deleteKey(bucket, key);
    refused.push({ bucket, key, owner, reason: "quota_exceeded", accepted: false });
  }
  const storage = draft.result();
  return { storage, changed: changedKeys(before, storage).length > 0, refused };
}
