/** IP addresses and CIDR networks: parsing, Go-compatible text, and byte helpers (no I/O). */

import { InputError } from "../util/errors.ts";

// `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128`: 49 characters; anything longer is no CIDR.
const MAX_CIDR_TEXT = 49;

/**
 * Formats a big-endian u32 IPv4 address in dotted decimal.
 *
 * @example
 * ```ts
 * formatIPv4(0x0a010002); // "10.1.0.2"
 * ```
 */
export function formatIPv4(address: number): string {
  return `${address >>> 24}.${(address >>> 16) & 0xff}.${(address >>> 8) & 0xff}.${address & 0xff}`;
}

/**
 * Formats the 16-byte IPv6 address at `offset` as Go's `net.IP.String()` does: IPv4-mapped
 * addresses (`::ffff:a.b.c.d`) print as dotted IPv4; others follow RFC 5952 (lowercase, no
 * leading zeros, the first longest run of two or more zero groups shown as `::`).
 *
 * @example
 * ```ts
 * formatIPv6(parseIPv6("2001:db8:0:0:1:0:0:1")!); // "2001:db8::1:0:0:1"
 * formatIPv6(parseIPv6("::ffff:10.1.0.1")!); // "10.1.0.1"
 * ```
 */
export function formatIPv6(bytes: Uint8Array, offset = 0): string {
  if (isIPv4Mapped(bytes, offset)) return formatIPv4(readU32(bytes, offset + 12));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (group(bytes, offset, i) !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && group(bytes, offset, j) === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  let text = "";
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      text += "::";
      i += bestLength - 1;
      continue;
    }
    if (text.length > 0 && !text.endsWith(":")) text += ":";
    text += group(bytes, offset, i).toString(16);
  }
  return text;
}

/**
 * Formats a 4- or 16-byte address as Go's `net.IP.String()` does.
 *
 * @example
 * ```ts
 * formatIP(new Uint8Array([10, 1, 0, 1])); // "10.1.0.1"
 * ```
 */
export function formatIP(address: Uint8Array): string {
  if (address.length === 4) return formatIPv4(readU32(address, 0));
  if (address.length === 16) return formatIPv6(address, 0);
  throw new InputError(
    "IP_ADDRESS_INVALID",
    `Cannot format IP address: expected 4 or 16 bytes, got ${address.length}`,
  );
}

/**
 * Parses dotted-decimal IPv4 text into a big-endian u32, or null. Like Go's `net.ParseIP`,
 * leading zeros (`010.1.0.1`) are rejected.
 *
 * @example
 * ```ts
 * parseIPv4("10.1.0.1"); // 0x0a010001
 * ```
 */
export function parseIPv4(text: string): number | null {
  if (text.length > 15) return null;
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return null;
    const n = Number(part);
    if (n > 255) return null;
    value = value * 256 + n;
  }
  return value;
}

/**
 * Parses IPv6 text (with `::` and an optional trailing dotted IPv4 part) into 16 bytes, or
 * null. Zones (`%eth0`) are not accepted.
 *
 * @example
 * ```ts
 * parseIPv6("fd00::1"); // Uint8Array [0xfd, 0, ..., 1]
 * ```
 */
export function parseIPv6(text: string): Uint8Array | null {
  // The longest form: six groups of four digits and a dotted IPv4 part.
  if (text.length > 45) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const head = halves[0] === "" ? [] : halves[0].split(":");
  const tail = halves.length === 2 && halves[1] !== "" ? halves[1].split(":") : [];
  const groups: number[] = [];
  const words = [...head, ...tail];
  const last = words.length > 0 ? words[words.length - 1] : "";
  let v4: number | null = null;
  if (last.includes(".")) {
    // The dotted part must end the address, not sit before "::".
    if (halves.length === 2 && tail.length === 0) return null;
    v4 = parseIPv4(last);
    if (v4 === null) return null;
    if (tail.length > 0) tail.pop();
    else head.pop();
  }
  for (const word of [...head, ...tail]) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(word)) return null;
    groups.push(parseInt(word, 16));
  }
  const wanted = v4 === null ? 8 : 6;
  const present = head.length + tail.length;
  if (halves.length === 1 ? present !== wanted : present >= wanted) return null;
  const out = new Uint8Array(16);
  const put = (index: number, word: number) => {
    out[index * 2] = word >> 8;
    out[index * 2 + 1] = word & 0xff;
  };
  head.forEach((_, i) => put(i, groups[i]));
  tail.forEach((_, i) => put(wanted - tail.length + i, groups[head.length + i]));
  if (v4 !== null) writeU32(out, 12, v4);
  return out;
}

/**
 * Parses IPv4 or IPv6 text into 4 or 16 bytes, or null.
 *
 * @example
 * ```ts
 * parseIP("10.1.0.1")?.length; // 4
 * ```
 */
export function parseIP(text: string): Uint8Array | null {
  if (text.includes(":")) return parseIPv6(text);
  const v4 = parseIPv4(text);
  if (v4 === null) return null;
  const out = new Uint8Array(4);
  writeU32(out, 0, v4);
  return out;
}

/**
 * An address with its prefix length, as in `10.1.0.1/24`: a network and one address in it. The
 * TUN device takes it as it is (`InterfaceAddress` of `ffi/netdev.ts`).
 *
 * @example
 * ```ts
 * const cidr: Cidr = { address: new Uint8Array([10, 1, 0, 1]), prefixLength: 24 };
 * formatCidr(cidr); // "10.1.0.1/24"
 * ```
 */
export interface Cidr {
  /** 4 bytes for IPv4, 16 for IPv6: the address as written, host bits kept. */
  readonly address: Uint8Array;
  readonly prefixLength: number;
}

/** Options of {@link parseCidr}. */
export interface ParseCidrOptions {
  /**
   * Take an address without `/prefix` as a one-address network (`/32`, `/128`), as Go
   * EdgeVPN's blacklist does. Off by default: `--address` needs its prefix.
   */
  bareAddress?: boolean;
}

/**
 * Parses `address/prefix` text (IPv4 or IPv6), or null when either part is invalid. The
 * address follows {@link parseIP} (Go's `net.ParseIP`: no leading zeros, no zone); the prefix
 * is a decimal without leading zeros, at most 32 or 128.
 *
 * @example
 * ```ts
 * parseCidr("10.1.0.1/24"); // { address: Uint8Array [10, 1, 0, 1], prefixLength: 24 }
 * parseCidr("fd00::/8")?.prefixLength; // 8
 * parseCidr("203.0.113.5", { bareAddress: true })?.prefixLength; // 32
 * parseCidr("10.1.0.1/33"); // null
 * ```
 */
export function parseCidr(text: string, options: ParseCidrOptions = {}): Cidr | null {
  if (text.length > MAX_CIDR_TEXT) return null;
  const slash = text.indexOf("/");
  if (slash < 0) {
    if (!options.bareAddress) return null;
    const address = parseIP(text);
    return address === null ? null : { address, prefixLength: address.length * 8 };
  }
  const address = parseIP(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (address === null || !/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return null;
  const prefixLength = Number(prefixText);
  if (prefixLength > address.length * 8) return null;
  return { address, prefixLength };
}

/**
 * The canonical text of a CIDR: the address as Go prints it, then the prefix.
 *
 * @example
 * ```ts
 * formatCidr(parseCidr("fd00:0:0::1/64")!); // "fd00::1/64"
 * ```
 */
export function formatCidr(cidr: Cidr): string {
  return `${formatIP(cidr.address)}/${cidr.prefixLength}`;
}

/**
 * The network of a CIDR: its address with the host bits cleared.
 *
 * @example
 * ```ts
 * formatCidr(cidrNetwork(parseCidr("10.1.0.7/24")!)); // "10.1.0.0/24"
 * ```
 */
export function cidrNetwork(cidr: Cidr): Cidr {
  const address = cidr.address.slice();
  for (let bit = cidr.prefixLength; bit < address.length * 8; bit++) {
    address[bit >> 3] &= ~(0x80 >> (bit & 7));
  }
  return { address, prefixLength: cidr.prefixLength };
}

/**
 * True when `address` (text or 4/16 bytes) lies in the network of `cidr`. An IPv4-mapped IPv6
 * address (`::ffff:a.b.c.d`) matches IPv4 networks; text that is no address matches nothing.
 *
 * @example
 * ```ts
 * const net = parseCidr("10.0.0.0/8")!;
 * cidrContains(net, "10.2.3.4"); // true
 * cidrContains(net, "::ffff:10.2.3.4"); // true
 * cidrContains(net, "fd00::1"); // false
 * ```
 */
export function cidrContains(cidr: Cidr, address: string | Uint8Array): boolean {
  let ip = typeof address === "string" ? parseIP(address) : address;
  if (ip === null) return false;
  if (ip.length === 16 && cidr.address.length === 4 && isIPv4Mapped(ip, 0)) ip = ip.subarray(12);
  if (ip.length !== cidr.address.length) return false;
  const full = cidr.prefixLength >> 3;
  for (let i = 0; i < full; i++) if (ip[i] !== cidr.address[i]) return false;
  const rest = cidr.prefixLength & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (ip[full] & mask) === (cidr.address[full] & mask);
}

/**
 * The host addresses of an IPv4 network as big-endian u32 values, `first` to `last`: without
 * the network and broadcast addresses, except in a /31 or /32 where every address is a host.
 * Null for IPv6.
 *
 * @example
 * ```ts
 * const hosts = cidrHosts(parseCidr("10.1.0.9/24")!)!;
 * formatIPv4(hosts.first); // "10.1.0.1"
 * formatIPv4(hosts.last); // "10.1.0.254"
 * ```
 */
export function cidrHosts(cidr: Cidr): { first: number; last: number } | null {
  if (cidr.address.length !== 4) return null;
  const size = 2 ** (32 - cidr.prefixLength);
  const network = readU32(cidrNetwork(cidr).address, 0);
  if (size <= 2) return { first: network, last: network + size - 1 };
  return { first: network + 1, last: network + size - 2 };
}

/**
 * Canonical text (Go's `net.IP.String()`) of an IPv4 or IPv6 address, or null when it is not one.
 *
 * @example
 * ```ts
 * canonicalIP("fd00:0::1"); // "fd00::1"
 * canonicalIP("::ffff:10.1.0.1"); // "10.1.0.1"
 * ```
 */
export function canonicalIP(text: string): string | null {
  const bytes = parseIP(text);
  return bytes === null ? null : formatIP(bytes);
}

/**
 * The eight groups of an IPv6 address in hex, without `::` and without dotted IPv4, as wire
 * encoders (dns-packet) take it whatever the address.
 *
 * @example
 * ```ts
 * expandedIPv6(parseIPv6("::ffff:1.2.3.4")!); // "0:0:0:0:0:ffff:102:304"
 * ```
 */
export function expandedIPv6(bytes: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(group(bytes, 0, i).toString(16));
  return groups.join(":");
}

/**
 * Reads a big-endian u32 at `offset` (an IPv4 address in a packet or an address buffer).
 *
 * @example
 * ```ts
 * readU32(new Uint8Array([10, 1, 0, 2]), 0); // 0x0a010002
 * ```
 */
export function readU32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) |
    bytes[offset + 3]) >>> 0;
}

function isIPv4Mapped(bytes: Uint8Array, offset: number): boolean {
  for (let i = 0; i < 10; i++) if (bytes[offset + i] !== 0) return false;
  return bytes[offset + 10] === 0xff && bytes[offset + 11] === 0xff;
}

function group(bytes: Uint8Array, offset: number, index: number): number {
  return (bytes[offset + index * 2] << 8) | bytes[offset + index * 2 + 1];
}

function writeU32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 24;
  bytes[offset + 1] = (value >>> 16) & 0xff;
  bytes[offset + 2] = (value >>> 8) & 0xff;
  bytes[offset + 3] = value & 0xff;
}
