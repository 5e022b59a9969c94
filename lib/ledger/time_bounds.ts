/**
 * How far ahead of our clock a peer's entry may be: entries, heartbeats and `UpdatedAt` from
 * more than a few minutes in the future, and versions far beyond "now in nanoseconds", are
 * refused. Go EdgeVPN accepts them: a heartbeat dated 2100 keeps a stopped node "online" and in
 * leader elections for good, and a version of 2^64−1 locks a key (even `dhcp/leader`) forever.
 */
import type { Storage } from "./block.ts";
import type { Entry } from "./entry.ts";
import { BUCKETS, heartbeatTime } from "./buckets.ts";

/** How far ahead of our clock timestamps and versions may be, in nanoseconds. */
export interface TimeBounds {
  /** `UpdatedAt` and heartbeat times: at most this far ahead (clock skew between nodes). */
  readonly skewNs: bigint;
  /**
   * Versions: at most this far beyond now in nanoseconds. Looser than `skewNs`: a node whose
   * clock ran ahead keeps counting up from its last version (Go's `max(prev + 1, now)`) after
   * its clock is put right, so its versions lead by as much as its clock once did.
   */
  readonly versionAheadNs: bigint;
}

/** Defaults of {@link TimeBounds}: 5 minutes of skew, versions up to an hour ahead. */
export const DEFAULT_TIME_BOUNDS: TimeBounds = {
  skewNs: 5n * 60n * 1_000_000_000n,
  versionAheadNs: 60n * 60n * 1_000_000_000n,
};

/** Why an entry is refused as coming from the future. */
export type FutureReason = "future_timestamp" | "future_version";

/**
 * Whether `entry` of `bucket` lies too far in the future: its `UpdatedAt`, its version, or
 * for a heartbeat the time it carries. Unsigned entries (version and `UpdatedAt` 0) are judged
 * by their heartbeat time only.
 *
 * @example
 * ```ts ignore
 * futureReason("tests", { ...entry, version: 2n ** 64n - 1n }, nowNs, DEFAULT_TIME_BOUNDS);
 * // "future_version"
 * ```
 */
export function futureReason(
  bucket: string,
  entry: Entry,
  nowNs: bigint,
  bounds: TimeBounds,
): FutureReason | undefined {
  if (entry.updatedAt * 1_000_000_000n > nowNs + bounds.skewNs) return "future_timestamp";
  if (entry.version > nowNs + bounds.versionAheadNs) return "future_version";
  if (bucket === BUCKETS.healthcheck && !entry.deleted) {
    const t = heartbeatTime(entry.value);
    if (t !== undefined && t > nowNs + bounds.skewNs) return "future_timestamp";
  }
  return undefined;
}

/**
 * Our own live entries whose `UpdatedAt` lies beyond the skew bound: written while our clock
 * ran ahead, refused by every peer until they are signed again with the right time.
 *
 * @example
 * ```ts ignore
 * entriesToRedate(ledger.currentStorage(), selfId, nowNs, DEFAULT_TIME_BOUNDS); // []
 * ```
 */
export function entriesToRedate(
  storage: Storage,
  selfId: string,
  nowNs: bigint,
  bounds: TimeBounds,
): Array<readonly [string, string, Entry]> {
  const out: Array<readonly [string, string, Entry]> = [];
  for (const [bucket, kv] of storage) {
    for (const [key, e] of kv) {
      if (e.owner === selfId && e.updatedAt * 1_000_000_000n > nowNs + bounds.skewNs) {
        out.push([bucket, key, e]);
      }
    }
  }
  return out;
}
