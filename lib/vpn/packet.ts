/** Pure parsing of IP packet headers and addresses, and splitting of concatenated IP packets. */

import { ipPacketLength, IPV4_MIN_HEADER_LENGTH, IPV6_HEADER_LENGTH } from "../../ffi/tun_frame.ts";
import { formatIPv4, formatIPv6, readU32 } from "../net/ip.ts";
import { InputError } from "../util/errors.ts";

// The IP length field is read where the TUN device reads it; the VPN shares that one reader.
export { ipPacketLength, IPV4_MIN_HEADER_LENGTH, IPV6_HEADER_LENGTH };

/** IP protocol numbers the VPN looks at. */
export const IpProtocol = { ICMP: 1, TCP: 6, UDP: 17, ICMPV6: 58 } as const;

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

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
