/** Bucket policies (who owns an entry, how it expires), ownership modes and heartbeat liveness. */

import { UsageError } from "../util/errors.ts";
import { BUCKETS, heartbeatTime, peerIdOf } from "./buckets.ts";
import type { Entry } from "./entry.ts";

/** How a bucket's entries age out. */
export type ExpiryKind = "none" | "liveness" | "absolute";

/** Policy of one bucket (Go `BucketPolicy`). */
export interface BucketPolicy {
  /** Signed and owner-checked by the merge. */
  readonly owned: boolean;
  /** Owner implied by key/value; absent means the first signer owns the key (dns). */
  readonly ownerOf?: (key: string, value: string) => string;
  readonly expiry: ExpiryKind;
  /** For `absolute` expiry: lifetime after the entry's `updatedAt`. */
  readonly ttlMs?: number;
}

/** Bucket name → policy; unlisted buckets are open and never expire. */
export type Registry = ReadonlyMap<string, BucketPolicy>;

const OPEN: BucketPolicy = { owned: false, expiry: "none" };

/**
 * The policy of `bucket`, or the open policy when unregistered.
 *
 * @example
 * ```ts
 * policyOf(defaultRegistry(60_000), "custom").owned; // false
 * ```
 */
export function policyOf(registry: Registry, bucket: string): BucketPolicy {
  return registry.get(bucket) ?? OPEN;
}

/**
 * OwnerOf for buckets keyed by the owner's peer ID (users, healthcheck, egress).
 *
 * @example
 * ```ts
 * ownerIsKey("peerY", ""); // "peerY"
 * ```
 */
export function ownerIsKey(key: string, _value: string): string {
  return key;
}

/**
 * OwnerOf for buckets whose value carries a `PeerID` string (machines, services, files), read as
 * Go's lenient `json.Unmarshal` into `struct{ PeerID string }` reads it.
 *
 * @example
 * ```ts
 * ownerFromPeerIdField("10.1.0.1", '{"PeerID":"peerX","Address":"10.1.0.1"}'); // "peerX"
 * ```
 */
export function ownerFromPeerIdField(_key: string, value: string): string {
  return peerIdOf(value);
}

/**
 * The built-in policy set (Go `DefaultRegistry`); `ttlMs` is also the heartbeat lifetime.
 *
 * @example
 * ```ts
 * defaultRegistry(480_000).get("machines")?.expiry; // "liveness"
 * ```
 */
export function defaultRegistry(ttlMs: number): Registry {
  return new Map<string, BucketPolicy>([
    [BUCKETS.machines, { owned: true, ownerOf: ownerFromPeerIdField, expiry: "liveness" }],
    [BUCKETS.services, { owned: true, ownerOf: ownerFromPeerIdField, expiry: "liveness" }],
    [BUCKETS.files, { owned: true, ownerOf: ownerFromPeerIdField, expiry: "liveness" }],
    [BUCKETS.users, { owned: true, ownerOf: ownerIsKey, expiry: "liveness" }],
    [BUCKETS.healthcheck, { owned: true, ownerOf: ownerIsKey, expiry: "absolute", ttlMs }],
    [BUCKETS.dns, { owned: true, expiry: "liveness" }],
    [BUCKETS.egress, { owned: true, ownerOf: ownerIsKey, expiry: "liveness" }],
  ]);
}

/** Ledger ownership mode. */
export type OwnershipMode = "off" | "observe" | "enforce";

/**
 * Parses `--ownership` the way Go's `ParseOwnershipMode` does (trimmed, case-insensitive).
 *
 * @throws {UsageError} `OWNERSHIP_MODE_INVALID` naming the accepted values.
 * @example
 * ```ts
 * parseOwnershipMode(" Log-Only "); // "observe"
 * ```
 */
export function parseOwnershipMode(text: string): OwnershipMode {
  switch (text.trim().toLowerCase()) {
    case "":
    case "off":
      return "off";
    case "observe":
    case "log":
    case "log-only":
      return "observe";
    case "enforce":
    case "on":
      return "enforce";
    default:
      throw new UsageError(
        "OWNERSHIP_MODE_INVALID",
        `invalid ownership mode ${JSON.stringify(text)}: must be one of "off" (legacy, no ` +
          `authentication), "observe" (sign and log violations; aliases "log", "log-only") or ` +
          `"enforce" (sign and reject unauthorized writes; alias "on")`,
      );
  }
}

/**
 * Live (non-tombstoned) values of a bucket (Go `projectValues`).
 *
 * @example
 * ```ts
 * liveValues(undefined).size; // 0
 * ```
 */
export function liveValues(bucket: ReadonlyMap<string, Entry> | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!bucket) return out;
  for (const [k, e] of bucket) if (!e.deleted) out.set(k, e.value);
  return out;
}

/**
 * Go `IsLive`: `owner` has a heartbeat in `health` whose time + ttl is strictly after now.
 *
 * @example
 * ```ts
 * const now = 1767225600000000000n;
 * isLive(new Map([["a", '"2025-12-31T23:59:50Z"']]), "a", 60_000_000_000n, now); // true
 * ```
 */
export function isLive(
  health: ReadonlyMap<string, string>,
  owner: string,
  ttlNs: bigint,
  nowNs: bigint,
): boolean {
  const value = health.get(owner);
  if (value === undefined) return false;
  const t = heartbeatTime(value);
  return t !== undefined && t + ttlNs > nowNs;
}
