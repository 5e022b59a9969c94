/** Which destination addresses an egress node may connect to (`--egress-allow-private`). */
import { type Cidr, cidrContains, parseCidr, parseIP } from "../net/ip.ts";

/**
 * Networks that are not the public internet: this host, private and shared address space,
 * link-local, multicast, reserved and documentation ranges, and IPv6's equivalents. An egress
 * node that refuses private targets refuses every address in one of them.
 */
const NON_PUBLIC: readonly Cidr[] = [
  "0.0.0.0/8", // "this network"
  "10.0.0.0/8",
  "100.64.0.0/10", // carrier-grade NAT
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24", // IETF protocol assignments
  "192.0.2.0/24", // documentation
  "192.168.0.0/16",
  "198.18.0.0/15", // benchmarking
  "198.51.100.0/24",
  "203.0.113.0/24",
  "224.0.0.0/4", // multicast
  "240.0.0.0/4", // reserved, broadcast
  "::/128",
  "::1/128",
  "64:ff9b:1::/48", // local-use NAT64
  "100::/64", // discard
  "2001:db8::/32", // documentation
  "fc00::/7", // unique local
  "fe80::/10",
  "fec0::/10", // old site-local
  "ff00::/8", // multicast
].map(cidr);

/** Prefixes of IPv6 forms that carry an IPv4 address, and where its 4 bytes start. */
const EMBEDDED_V4: readonly { net: Cidr; at: number }[] = [
  { net: cidr("::ffff:0:0/96"), at: 12 }, // IPv4-mapped
  { net: cidr("::/96"), at: 12 }, // IPv4-compatible (deprecated)
  { net: cidr("64:ff9b::/96"), at: 12 }, // well-known NAT64
  { net: cidr("2002::/16"), at: 2 }, // 6to4
];

/**
 * True when `address` (IPv4 or IPv6 text, or its bytes) is not a public internet address:
 * loopback, private, link-local, multicast, reserved, or an IPv6 form embedding such an IPv4
 * address. Text that is not an IP address counts as not public.
 *
 * @example
 * ```ts
 * isNonPublicAddress("10.1.0.5"); // true
 * isNonPublicAddress("::ffff:127.0.0.1"); // true
 * isNonPublicAddress("93.184.216.34"); // false
 * ```
 */
export function isNonPublicAddress(address: string | Uint8Array): boolean {
  const bytes = typeof address === "string" ? parseIP(address) : address;
  if (bytes === null || (bytes.length !== 4 && bytes.length !== 16)) return true;
  if (NON_PUBLIC.some((net) => cidrContains(net, bytes))) return true;
  if (bytes.length === 16) {
    for (const { net, at } of EMBEDDED_V4) {
      if (cidrContains(net, bytes) && isNonPublicAddress(bytes.subarray(at, at + 4))) return true;
    }
  }
  return false;
}

function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (parsed === null) throw new Error(`bad built-in network ${text}`);
  return parsed;
}
