/** Pure parsing of IP packet headers and addresses, and splitting of concatenated IP packets. */

import { InputError } from "../util/errors.ts";

/** IP protocol numbers the VPN looks at. */
export const IpProtocol = { ICMP: 1, TCP: 6, UDP: 17, ICMPV6: 58 } as const;

/** Length of an IPv6 fixed header, and the smallest IPv4 header. */
export const IPV6_HEADER_LENGTH = 40;
/** Smallest IPv4 header (IHL 5). */
export const IPV4_MIN_HEADER_LENGTH = 20;

/** A validated IPv4 header. Addresses are big-endian u32 values (`10.1.0.1` is `0x0a010001`). */
export interface IPv4Header {
  version: 4;
  /** IHL × 4, in bytes. */
  headerLength: number;
  /** The total length field: header plus payload, at most the packet's length. */
  totalLength: number;
  protocol: number;
  ttl: number;
  src: number;
  dst: number;
}

/** A validated IPv6 fixed header. Addresses are 16-byte views into the packet, not copies. */
export interface IPv6Header {
  version: 6;
  headerLength: 40;
  /** 40 + payload length, at most the packet's length. */
  totalLength: number;
  payloadLength: number;
  nextHeader: number;
  hopLimit: number;
  src: Uint8Array;
  dst: Uint8Array;
}

/** Either header. */
export type IpHeader = IPv4Header | IPv6Header;

/**
 * Returns the version nibble of the first byte (4 or 6), or 0 for anything else or no bytes.
 *
 * @example
 * ```ts
 * ipVersion(new Uint8Array([0x45, 0])); // 4
 * ```
 */
export function ipVersion(packet: Uint8Array): 0 | 4 | 6 {
  if (packet.length === 0) return 0;
  const v = packet[0] >> 4;
  return v === 4 ? 4 : v === 6 ? 6 : 0;
}

/**
 * Returns the length of the IP packet at the start of `bytes` as its header states it, -1 when
 * the header is malformed (bad version, IHL below 5, total length shorter than the header), or
 * 0 when too few bytes are present to read the length (fewer than 4 for IPv4, 6 for IPv6).
 *
 * The packet itself may be longer than `bytes` (truncated): compare with `bytes.length`.
 * Allocates nothing: meant for the data path.
 *
 * @example
 * ```ts
 * ipPacketLength(new Uint8Array([0x45, 0, 0, 84])); // 84
 * ```
 */
export function ipPacketLength(bytes: Uint8Array): number {
  if (bytes.length === 0) return 0;
  const v = bytes[0] >> 4;
  if (v === 4) {
    if (bytes.length < 4) return 0;
    const headerLength = (bytes[0] & 0x0f) * 4;
    const total = (bytes[2] << 8) | bytes[3];
    return headerLength < IPV4_MIN_HEADER_LENGTH || total < headerLength ? -1 : total;
  }
  if (v === 6) {
    if (bytes.length < 6) return 0;
    return IPV6_HEADER_LENGTH + ((bytes[4] << 8) | bytes[5]);
  }
  return -1;
}

/**
 * Parses an IPv4 header; null when the version is not 4, the IHL or total length is invalid,
 * or the packet is shorter than its total length.
 *
 * @example
 * ```ts
 * const h = parseIPv4Header(packet);
 * if (h) formatIPv4(h.dst); // "10.1.0.2"
 * ```
 */
export function parseIPv4Header(packet: Uint8Array): IPv4Header | null {
  if (packet.length < IPV4_MIN_HEADER_LENGTH || packet[0] >> 4 !== 4) return null;
  const totalLength = ipPacketLength(packet);
  if (totalLength < 0 || totalLength > packet.length) return null;
  return {
    version: 4,
    headerLength: (packet[0] & 0x0f) * 4,
    totalLength,
    protocol: packet[9],
    ttl: packet[8],
    src: readU32(packet, 12),
    dst: readU32(packet, 16),
  };
}

/**
 * Parses an IPv6 fixed header; null when the version is not 6 or the packet is shorter than
 * 40 bytes plus its payload length. Extension headers are not followed: `nextHeader` is the
 * fixed header's field.
 *
 * @example
 * ```ts
 * const h = parseIPv6Header(packet);
 * if (h) formatIP(h.dst); // "fd00::2"
 * ```
 */
export function parseIPv6Header(packet: Uint8Array): IPv6Header | null {
  if (packet.length < IPV6_HEADER_LENGTH || packet[0] >> 4 !== 6) return null;
  const payloadLength = (packet[4] << 8) | packet[5];
  const totalLength = IPV6_HEADER_LENGTH + payloadLength;
  if (totalLength > packet.length) return null;
  return {
    version: 6,
    headerLength: IPV6_HEADER_LENGTH,
    totalLength,
    payloadLength,
    nextHeader: packet[6],
    hopLimit: packet[7],
    src: packet.subarray(8, 24),
    dst: packet.subarray(24, 40),
  };
}

/**
 * Parses an IPv4 or IPv6 header by the version nibble; null when malformed or truncated.
 *
 * @example
 * ```ts
 * const h = parseIpHeader(packet);
 * if (h?.version === 4) h.dst; // u32
 * ```
 */
export function parseIpHeader(packet: Uint8Array): IpHeader | null {
  const v = ipVersion(packet);
  return v === 4 ? parseIPv4Header(packet) : v === 6 ? parseIPv6Header(packet) : null;
}

/**
 * Reads the IPv4 destination of a packet as a u32, for routing tables keyed by number.
 * The caller has checked the header (e.g. `ipPacketLength(p) > 0` and version 4).
 *
 * @example
 * ```ts
 * ipv4Destination(packet) === parseIPv4("10.1.0.2"); // true for a packet to 10.1.0.2
 * ```
 */
export function ipv4Destination(packet: Uint8Array): number {
  return readU32(packet, 16);
}

/**
 * Reads the IPv4 source of a packet as a u32. The caller has checked the header.
 *
 * @example
 * ```ts
 * formatIPv4(ipv4Source(packet)); // "10.1.0.1"
 * ```
 */
export function ipv4Source(packet: Uint8Array): number {
  return readU32(packet, 12);
}

/**
 * Returns the destination address of a valid packet as Go's `net.IP.String()` prints it (the
 * key of EdgeVPN's `machines` bucket), or null when the packet does not parse.
 *
 * @example
 * ```ts
 * destinationKey(packet); // "10.1.0.2" or "fd00::2"
 * ```
 */
export function destinationKey(packet: Uint8Array): string | null {
  const length = ipPacketLength(packet);
  if (length <= 0 || length > packet.length) return null;
  // A positive length covers at least the whole header (20 or 40 bytes).
  return packet[0] >> 4 === 4 ? formatIPv4(readU32(packet, 16)) : formatIPv6(packet, 24);
}

/**
 * Returns the source address of a valid packet as Go's `net.IP.String()` prints it, or null.
 *
 * @example
 * ```ts
 * sourceKey(packet); // "10.1.0.1"
 * ```
 */
export function sourceKey(packet: Uint8Array): string | null {
  const length = ipPacketLength(packet);
  if (length <= 0 || length > packet.length) return null;
  return packet[0] >> 4 === 4 ? formatIPv4(readU32(packet, 12)) : formatIPv6(packet, 8);
}

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
 * Splits a byte stream of concatenated IP packets (Go EdgeVPN's `/edgevpn/0.1` receiving
 * side) using the IP length fields. Whole packets inside a chunk are handed out as views of
 * the chunk; only a packet cut across chunks is copied into an internal buffer.
 *
 * @example
 * ```ts
 * const splitter = new IpStreamSplitter();
 * for await (const chunk of stream) splitter.push(chunk, (packet) => tun.writeSync(packet));
 * splitter.pendingBytes; // 0 when the stream ended on a packet boundary
 * ```
 */
export class IpStreamSplitter {
  readonly #maxPacketLength: number;
  #pending: Uint8Array | undefined;
  #pendingLength = 0;

  /** `maxPacketLength` bounds a single packet (default 65 575: IPv6 header + 64 KiB). */
  constructor(options: { maxPacketLength?: number } = {}) {
    this.#maxPacketLength = options.maxPacketLength ?? IPV6_HEADER_LENGTH + 0xffff;
  }

  /** Bytes of an incomplete packet held back, waiting for the next chunk. */
  get pendingBytes(): number {
    return this.#pendingLength;
  }

  /** Forgets any held-back partial packet. */
  reset(): void {
    this.#pendingLength = 0;
  }

  /**
   * Feeds one chunk; calls `onPacket` for every packet completed by it, in order. A packet
   * view is valid only during its callback. Throws {@link InputError} `IP_STREAM_INVALID`
   * when a header is malformed or longer than the limit: the stream cannot be resynchronised
   * and should be reset.
   */
  push(chunk: Uint8Array, onPacket: (packet: Uint8Array) => void): void {
    let offset = 0;
    if (this.#pendingLength > 0) {
      offset = this.#fillPending(chunk, onPacket);
      if (offset < 0) return;
    }
    while (offset < chunk.length) {
      const rest = chunk.subarray(offset);
      const length = this.#checkedLength(rest);
      if (length === 0 || length > rest.length) {
        this.#hold(rest);
        return;
      }
      onPacket(rest.subarray(0, length));
      offset += length;
    }
  }

  // Completes the held-back packet from the start of `chunk`; returns how much of the chunk
  // was used, or -1 when the chunk was consumed without completing it.
  #fillPending(chunk: Uint8Array, onPacket: (packet: Uint8Array) => void): number {
    const pending = this.#pending!;
    let used = 0;
    let length = this.#checkedLength(pending.subarray(0, this.#pendingLength));
    if (length === 0) {
      // Not even the length field yet: take just enough bytes to read it.
      used = Math.min(6 - this.#pendingLength, chunk.length);
      pending.set(chunk.subarray(0, used), this.#pendingLength);
      this.#pendingLength += used;
      length = this.#checkedLength(pending.subarray(0, this.#pendingLength));
      if (length === 0) return -1;
    }
    const take = Math.min(length - this.#pendingLength, chunk.length - used);
    pending.set(chunk.subarray(used, used + take), this.#pendingLength);
    this.#pendingLength += take;
    used += take;
    if (this.#pendingLength < length) return -1;
    this.#pendingLength = 0;
    onPacket(pending.subarray(0, length));
    return used;
  }

  #hold(bytes: Uint8Array): void {
    this.#pending ??= new Uint8Array(this.#maxPacketLength);
    this.#pending.set(bytes, 0);
    this.#pendingLength = bytes.length;
  }

  #checkedLength(bytes: Uint8Array): number {
    const length = ipPacketLength(bytes);
    if (length < 0 || length > this.#maxPacketLength) {
      this.#pendingLength = 0;
      throw new InputError(
        "IP_STREAM_INVALID",
        `Cannot split IP stream: expected an IPv4 or IPv6 header of at most ${this.#maxPacketLength} bytes, got first bytes ${
          hex(bytes.subarray(0, 8))
        }`,
      );
    }
    return length;
  }
}

function isIPv4Mapped(bytes: Uint8Array, offset: number): boolean {
  for (let i = 0; i < 10; i++) if (bytes[offset + i] !== 0) return false;
  return bytes[offset + 10] === 0xff && bytes[offset + 11] === 0xff;
}

function group(bytes: Uint8Array, offset: number, index: number): number {
  return (bytes[offset + index * 2] << 8) | bytes[offset + index * 2 + 1];
}

function readU32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) |
    bytes[offset + 3]) >>> 0;
}

function writeU32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 24;
  bytes[offset + 1] = (value >>> 16) & 0xff;
  bytes[offset + 2] = (value >>> 8) & 0xff;
  bytes[offset + 3] = value & 0xff;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
