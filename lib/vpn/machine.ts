/** The `machines` ledger entry a VPN node announces (Go `types.Machine`). */
import { BUCKETS, type Machine, peerIdOf } from "../ledger/buckets.ts";
import { VERSION } from "../version.ts";

/** The ledger bucket of VPN addresses. */
export const MACHINES_BUCKET = BUCKETS.machines;

/** Go's `types.Machine` (the `machines` codec's type). */
export type { Machine };

/**
 * Builds our `machines` value; OS and architecture default to this process's, in Go's names.
 *
 * @example
 * ```ts
 * machineOf({ peerId: node.peerId, hostname: "box", address: "10.1.0.1" }).Arch; // "amd64"
 * ```
 */
export function machineOf(fields: {
  peerId: string;
  hostname: string;
  address: string;
  os?: string;
  arch?: string;
  version?: string;
}): Machine {
  return {
    PeerID: fields.peerId,
    Hostname: fields.hostname,
    // Deno.build.os values are Go's GOOS names already.
    OS: fields.os ?? Deno.build.os,
    Arch: goArch(fields.arch ?? Deno.build.arch),
    Address: fields.address,
    Version: fields.version ?? VERSION,
  };
}

/**
 * Go's `GOARCH` name for a `Deno.build.arch` value.
 *
 * @example
 * ```ts
 * goArch("x86_64"); // "amd64"
 * goArch("aarch64"); // "arm64"
 * ```
 */
export function goArch(arch: string): string {
  switch (arch) {
    case "x86_64":
      return "amd64";
    case "aarch64":
      return "arm64";
    case "x86":
    case "i686":
      return "386";
    case "arm":
      return "arm";
    default:
      return arch;
  }
}

/**
 * Go's announcement rule: write our entry when it is missing or names another peer.
 *
 * @example
 * ```ts
 * needsAnnouncement(undefined, "12D3KooW…"); // true
 * ```
 */
export function needsAnnouncement(current: string | undefined, peerId: string): boolean {
  return current === undefined || peerIdOf(current) !== peerId;
}
