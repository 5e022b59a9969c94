/** VPN options, their defaults, and parsing of the address, router and static peer table. */
import { base58btc } from "multiformats/bases/base58";
import { OPTIONS } from "../config/options.ts";
import { parseGoDuration } from "../config/settings.ts";
import { UsageError } from "../util/errors.ts";
import { canonicalIP, formatIP, parseCidr, readU32 } from "../net/ip.ts";

/**
 * Which data plane carries packets to peers: `auto` negotiates our fast protocols with every
 * peer and falls back to Go's `/edgevpn/0.1`; `legacy` always sends with `/edgevpn/0.1` (for
 * tests and benchmarks). Inbound streams of every protocol are served either way.
 */
export type DataPlane = "auto" | "legacy";

/**
 * Options of {@link createVpn}; every field has a default (see {@link VPN_DEFAULTS}).
 *
 * @example
 * ```ts
 * const options: VpnOptions = { address: "10.1.0.2/24", interfaceName: "edgevpn0" };
 * ```
 */
export interface VpnOptions {
  /** Interface name (Go `--interface`); a kernel template such as `edgevpn%d` works too. */
  interfaceName?: string;
  /** This node's VPN address with prefix, IPv4 or IPv6 (Go `--address`). */
  address?: string;
  /** Interface MTU (Go `--mtu`), applied only with `bootstrapIface`. */
  mtu?: number;
  /** Configure the interface: MTU, address, link up (Go `--bootstrap-iface`). */
  bootstrapIface?: boolean;
  /** VPN address that takes our packets to unknown destinations (Go `--router`); "" for none. */
  router?: string;
  /** Fixed routes `ip:peerid` that replace the ledger's `machines` (Go `--static-peertable`). */
  staticPeertable?: readonly string[];
  /** Time allowed to open a stream to a peer (Go `--timeout`). */
  streamTimeoutMs?: number;
  /** Re-announcement period of our `machines` entry (Go `--ledger-announce-interval`). */
  announceIntervalMs?: number;
  /** See {@link DataPlane}. */
  dataPlane?: DataPlane;
  /** Try `IFF_VNET_HDR` offload (TCP super-packets); falls back when the kernel refuses. */
  offload?: boolean;
  /** Transmit queue length of the interface, with `bootstrapIface`; unset keeps the kernel's. */
  txQueueLength?: number;
  /** How often routes are rebuilt even without ledger changes (owners expire with time). */
  routeRefreshMs?: number;
  /** Bytes queued per peer on the fast protocol before packets are tail-dropped. */
  queueBytes?: number;
  /** `/edgevpn/0.1` streams open at once per peer; packets beyond are dropped. */
  legacyInflight?: number;
  /** How long a peer that supports no fast protocol is sent `/edgevpn/0.1` before asking again. */
  fallbackRetryMs?: number;
  /** Frames read from the interface per wake-up. */
  readBatch?: number;
  /** Hostname announced in `machines` (default: the OS hostname). */
  hostname?: string;
}

/**
 * Defaults of {@link VpnOptions}: the CLI options come from the option table, the rest are
 * data-plane tuning.
 *
 * @example
 * ```ts
 * VPN_DEFAULTS.address; // "10.1.0.1/24"
 * ```
 */
export const VPN_DEFAULTS = {
  interfaceName: OPTIONS.interface.default,
  address: OPTIONS.address.default,
  mtu: OPTIONS.mtu.default,
  bootstrapIface: OPTIONS.bootstrapIface.default,
  router: OPTIONS.router.default,
  staticPeertable: [] as readonly string[],
  streamTimeoutMs: parseGoDuration(OPTIONS.timeout.default)!,
  announceIntervalMs: OPTIONS.ledgerAnnounceInterval.default * 1000,
  dataPlane: "auto" as DataPlane,
  offload: true,
  routeRefreshMs: 5_000,
  queueBytes: 2 << 20,
  legacyInflight: 512,
  fallbackRetryMs: 300_000,
  readBatch: 64,
} as const;

/** A parsed VPN address. */
export interface VpnAddress {
  /** The CIDR as given (e.g. `10.1.0.1/24`): the range blocked at the gater. */
  cidr: string;
  /** The address alone as Go prints it (`net.IP.String()`): our `machines` key. */
  ip: string;
  version: 4 | 6;
  /** IPv4 address as a big-endian u32, -1 for IPv6. */
  ipv4: number;
  /** 4 or 16 address bytes. */
  bytes: Uint8Array;
  prefixLength: number;
}

/**
 * Parses `--address` (`10.1.0.1/24`, `fd00::1/64`).
 *
 * @throws {UsageError} `VPN_ADDRESS_INVALID`.
 * @example
 * ```ts
 * parseVpnAddress("10.1.0.1/24").ip; // "10.1.0.1"
 * ```
 */
export function parseVpnAddress(text: string): VpnAddress {
  const cidr = parseCidr(text.trim());
  if (cidr === null) {
    throw new UsageError(
      "VPN_ADDRESS_INVALID",
      `--address: expected an IPv4 or IPv6 address with prefix such as 10.1.0.1/24, got ${
        JSON.stringify(text)
      }`,
    );
  }
  const v4 = cidr.address.length === 4;
  return {
    cidr: text.trim(),
    ip: formatIP(cidr.address),
    version: v4 ? 4 : 6,
    ipv4: v4 ? readU32(cidr.address, 0) : -1,
    bytes: cidr.address,
    prefixLength: cidr.prefixLength,
  };
}

/**
 * Parses `--router`: "" for none, else an address in canonical text.
 *
 * @throws {UsageError} `VPN_ROUTER_INVALID`.
 * @example
 * ```ts
 * parseRouter("10.1.0.254"); // "10.1.0.254"
 * ```
 */
export function parseRouter(text: string): string {
  if (text.trim() === "") return "";
  const ip = canonicalIP(text.trim());
  if (ip === null) {
    throw new UsageError(
      "VPN_ROUTER_INVALID",
      `--router: expected an IP address, got ${JSON.stringify(text)}`,
    );
  }
  return ip;
}

/**
 * Parses `--static-peertable` entries `ip:peerid` into a map from canonical IP text to peer ID.
 * As in Go, each entry must split on `:` into exactly two parts (so IPv4 only) and the peer ID
 * must decode.
 *
 * @throws {UsageError} `VPN_STATIC_PEER_INVALID`.
 * @example
 * ```ts
 * parseStaticPeertable(["10.1.0.2:12D3KooW…"]).get("10.1.0.2"); // "12D3KooW…"
 * ```
 */
export function parseStaticPeertable(entries: readonly string[]): Map<string, string> {
  const table = new Map<string, string>();
  for (const entry of entries) {
    const parts = entry.trim().split(":");
    const bad = (why: string) =>
      new UsageError(
        "VPN_STATIC_PEER_INVALID",
        `--static-peertable: expected ip:peerid, got ${JSON.stringify(entry)} (${why})`,
      );
    if (parts.length !== 2) throw bad(`${parts.length} parts`);
    const ip = canonicalIP(parts[0]);
    if (ip === null) throw bad("not an IPv4 address");
    if (!isPeerIdText(parts[1])) throw bad("the peer ID does not decode");
    table.set(ip, parts[1]);
  }
  return table;
}

// A base58btc multihash: identity (Ed25519, `12D3KooW…`) or sha2-256 (RSA, `Qm…`).
function isPeerIdText(text: string): boolean {
  let bytes: Uint8Array;
  try {
    bytes = base58btc.baseDecode(text);
  } catch {
    return false;
  }
  return bytes.length >= 2 && (bytes[0] === 0x00 || bytes[0] === 0x12) &&
    bytes[1] === bytes.length - 2;
}
