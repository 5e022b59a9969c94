/** IP addresses and CIDR networks: parsing, Go-compatible text, and byte helpers (no I/O). */

import { InputError } from "../util/errors.ts";

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

/** An address with its prefix length, as in `10.1.0.1/24`. */
export interface Cidr {
  /** 4 bytes for IPv4, 16 for IPv6 (the host address, not masked). */
  address: Uint8Array;
  prefixLength: number;
}

/**
 * Parses `address/prefix` text, or null when either part is invalid.
 *
 * @example
 * ```ts
 * parseCidr("10.1.0.1/24"); // { address: Uint8Array [10, 1, 0, 1], prefixLength: 24 }
 * ```
 */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf("/");
  if (slash < 0) return null;
  const address = parseIP(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (address === null || !/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return null;
  const prefixLength = Number(prefixText);
  if (prefixLength > address.length * 8) return null;
  return { address, prefixLength };
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
