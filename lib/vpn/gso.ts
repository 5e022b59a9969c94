/** The `virtio_net_hdr` of offload-enabled TUN devices, TCP segmentation and checksum completion. */

import { VIRTIO_NET_HDR_LENGTH } from "../../ffi/tun_frame.ts";
import { InputError } from "../util/errors.ts";

// The header's size is a kernel layout, defined with the TUN device; the offload code shares it.
export { VIRTIO_NET_HDR_LENGTH };

/** `virtio_net_hdr.flags` bits. */
export const VirtioNetHdrFlag = {
  /** The checksum at `csumStart + csumOffset` holds only the pseudo-header sum. */
  NEEDS_CSUM: 1,
  /** The checksum was verified (kernel → user only). */
  DATA_VALID: 2,
} as const;

/** `virtio_net_hdr.gso_type` values. */
export const VirtioNetGsoType = {
  NONE: 0,
  TCPV4: 1,
  UDP: 3,
  TCPV6: 4,
  UDP_L4: 5,
  /** Flag bit: the super-packet carries ECN (CWR on the first segment only). */
  ECN: 0x80,
} as const;

/**
 * Smallest `gso_size` taken: Linux's `TCP_MIN_SND_MSS`. A frame with `gso_size` 1 would be cut
 * into 65 000 segments (in software here, or by the kernel it is handed to).
 */
export const MIN_GSO_SIZE = 48;
/** Most segments one offload frame may become: a 64 KiB super-packet at {@link MIN_GSO_SIZE}. */
export const MAX_GSO_SEGMENTS = Math.ceil(0xffff / MIN_GSO_SIZE);

/**
 * A decoded `virtio_net_hdr` (all fields host order, little-endian on Linux x86/arm).
 *
 * @example
 * ```ts
 * // What the kernel hands over for a TCPv4 super-packet with 1380-byte segments:
 * const hdr: VirtioNetHdr = {
 *   flags: VirtioNetHdrFlag.NEEDS_CSUM,
 *   gsoType: VirtioNetGsoType.TCPV4,
 *   hdrLen: 52,
 *   gsoSize: 1380,
 *   csumStart: 20,
 *   csumOffset: 16,
 * };
 * ```
 */
export interface VirtioNetHdr {
  flags: number;
  gsoType: number;
  /** Length of all headers (IP + TCP); the kernel's value is a hint, see {@link forEachPacket}. */
  hdrLen: number;
  /** Payload bytes per segment (the MSS). */
  gsoSize: number;
  /** Where the transport header (and checksummed data) starts: the IP header length. */
  csumStart: number;
  /** Offset of the checksum field from `csumStart`: 16 for TCP, 6 for UDP. */
  csumOffset: number;
}

/**
 * Decodes the `virtio_net_hdr` at the start of a frame; null when the frame is shorter.
 *
 * @example
 * ```ts
 * const hdr = parseVirtioNetHdr(frame);
 * if (hdr && hdr.gsoType !== VirtioNetGsoType.NONE) hdr.gsoSize; // e.g. 1380
 * ```
 */
export function parseVirtioNetHdr(frame: Uint8Array): VirtioNetHdr | null {
  if (frame.length < VIRTIO_NET_HDR_LENGTH) return null;
  return {
    flags: frame[0],
    gsoType: frame[1],
    hdrLen: u16le(frame, 2),
    gsoSize: u16le(frame, 4),
    csumStart: u16le(frame, 6),
    csumOffset: u16le(frame, 8),
  };
}

/**
 * Encodes `hdr` into the first 10 bytes of `frame`.
 *
 * @example
 * ```ts
 * const frame = new Uint8Array(VIRTIO_NET_HDR_LENGTH + packet.length);
 * writeVirtioNetHdr(frame, hdr);
 * frame.set(packet, VIRTIO_NET_HDR_LENGTH);
 * ```
 */
export function writeVirtioNetHdr(frame: Uint8Array, hdr: VirtioNetHdr): void {
  frame[0] = hdr.flags;
  frame[1] = hdr.gsoType;
  putU16le(frame, 2, hdr.hdrLen);
  putU16le(frame, 4, hdr.gsoSize);
  putU16le(frame, 6, hdr.csumStart);
  putU16le(frame, 8, hdr.csumOffset);
}

/**
 * Zeroes the first 10 bytes of `frame`: the header for writing one plain, fully checksummed
 * IP packet to a `vnet_hdr` device (no GSO, no checksum to complete).
 *
 * @example
 * ```ts
 * const frame = new Uint8Array(VIRTIO_NET_HDR_LENGTH + packet.length);
 * writePlainVirtioNetHdr(frame);
 * frame.set(packet, VIRTIO_NET_HDR_LENGTH);
 * tun.writeSync(frame);
 * ```
 */
export function writePlainVirtioNetHdr(frame: Uint8Array): void {
  frame.fill(0, 0, VIRTIO_NET_HDR_LENGTH);
}

/**
 * Adds the bytes to a running one's-complement sum (not folded, not inverted). A trailing odd
 * byte is padded with zero. Sums of up to 2^37 bytes stay exact.
 *
 * @example
 * ```ts
 * const sum = onesComplementSum(header, 0);
 * const checksum = foldChecksum(sum) ^ 0xffff;
 * ```
 */
export function onesComplementSum(bytes: Uint8Array, initial: number): number {
  let sum = initial;
  let start = 0;
  if (LITTLE_ENDIAN && bytes.length >= 64 && (bytes.byteOffset & 1) === 0) {
    // 3-4x faster than byte pairs: add little-endian 32-bit words. Since 2^16 ≡ 1 modulo
    // 0xffff, their folded sum is the sum of little-endian 16-bit words, which is the
    // big-endian sum with its two bytes swapped (RFC 1071 §2(B)).
    if ((bytes.byteOffset & 2) !== 0) {
      sum += (bytes[0] << 8) | bytes[1];
      start = 2;
    }
    const count = (bytes.length - start) >>> 2;
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset + start, count);
    let le = 0;
    for (let i = 0; i < count; i++) le += words[i];
    le = foldChecksum(le);
    sum += ((le & 0xff) << 8) | (le >>> 8);
    start += count * 4;
  }
  const even = start + ((bytes.length - start) & ~1);
  for (let i = start; i < even; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if (even !== bytes.length) sum += bytes[even] << 8;
  return sum;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Folds a running sum to 16 bits (the checksum before inversion).
 *
 * @example
 * ```ts
 * foldChecksum(0x1_fffe); // 0xffff
 * ```
 */
export function foldChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

/**
 * Returns the Internet checksum (RFC 1071) of the bytes: the value to store in a header.
 * Verifying a header that includes its checksum yields 0.
 *
 * @example
 * ```ts
 * internetChecksum(ipv4Header); // 0 when the stored checksum is right
 * ```
 */
export function internetChecksum(bytes: Uint8Array, initial = 0): number {
  return foldChecksum(onesComplementSum(bytes, initial)) ^ 0xffff;
}

/**
 * Returns the unfolded sum of the TCP/UDP pseudo-header for the IPv4 or IPv6 packet (source
 * and destination addresses, protocol, transport length).
 *
 * @example
 * ```ts
 * const sum = pseudoHeaderSum(packet, 6, tcpLength);
 * internetChecksum(packet.subarray(20), sum); // 0 when the TCP checksum is right
 * ```
 */
export function pseudoHeaderSum(packet: Uint8Array, protocol: number, length: number): number {
  const v6 = packet[0] >> 4 === 6;
  const addresses = v6 ? packet.subarray(8, 40) : packet.subarray(12, 20);
  return onesComplementSum(addresses, protocol + length);
}

/**
 * Completes a partial checksum in place (`VIRTIO_NET_HDR_F_NEEDS_CSUM`): the field at
 * `csumStart + csumOffset` holds the pseudo-header sum; the final value is the checksum of
 * everything from `csumStart` to the end, that field included. Returns false when the
 * offsets do not fit the packet.
 *
 * @example
 * ```ts
 * if (hdr.flags & VirtioNetHdrFlag.NEEDS_CSUM) completeChecksum(packet, hdr.csumStart, hdr.csumOffset);
 * ```
 */
export function completeChecksum(
  packet: Uint8Array,
  csumStart: number,
  csumOffset: number,
): boolean {
  const at = csumStart + csumOffset;
  if (at + 2 > packet.length) return false;
  let checksum = internetChecksum(packet.subarray(csumStart));
  // UDP sends 0 as "no checksum", so a computed 0 goes on the wire as 0xffff.
  if (checksum === 0 && csumOffset === UDP_CHECKSUM_OFFSET) checksum = 0xffff;
  packet[at] = checksum >> 8;
  packet[at + 1] = checksum & 0xff;
  return true;
}

/**
 * Checks the `virtio_net_hdr` a peer sent against the packet behind it and rebuilds it in place
 * from what was verified, so that nothing unchecked reaches the kernel or the segmenter:
 *
 * - `flags` keeps only `NEEDS_CSUM` (`DATA_VALID` would tell the kernel to trust a checksum
 *   nobody verified);
 * - without GSO, a partial checksum must be the TCP or UDP checksum of a packet that is not a
 *   fragment; `hdr_len`, `gso_size` (and the checksum fields when no checksum is partial) are
 *   zeroed, as the kernel writes them;
 * - TCPv4/TCPv6 GSO needs a partial TCP checksum at the transport header (IPv6 extension
 *   headers walked), a TCP header that fits, `gso_size` of at least {@link MIN_GSO_SIZE} and at
 *   most {@link MAX_GSO_SEGMENTS} segments; `hdr_len` is set to the real IP + TCP header length;
 * - any other `gso_type` (UDP, UDP_L4, unknown bits) is refused.
 *
 * Returns undefined when the frame may be written, else why not (a constant: nothing is
 * allocated, it runs on every received frame).
 *
 * @example
 * ```ts
 * const problem = sanitizeOffloadFrame(frame);
 * if (problem === undefined) tun.writeSync(frame);
 * else counters.inbound.badOffload++;
 * ```
 */
export function sanitizeOffloadFrame(frame: Uint8Array): string | undefined {
  if (frame.length < VIRTIO_NET_HDR_LENGTH + 20) {
    return "frame shorter than a header and an IP header";
  }
  const packet = frame.subarray(VIRTIO_NET_HDR_LENGTH);
  const needsCsum = (frame[0] & VirtioNetHdrFlag.NEEDS_CSUM) !== 0;
  const gsoType = frame[1];
  const csumStart = u16le(frame, 6);
  const csumOffset = u16le(frame, 8);
  frame[0] = needsCsum ? VirtioNetHdrFlag.NEEDS_CSUM : 0;
  if (gsoType === VirtioNetGsoType.NONE) {
    if (needsCsum) {
      const protocol = transportAt(packet, csumStart);
      const expected = protocol === 6
        ? TCP_CHECKSUM_OFFSET
        : protocol === 17
        ? UDP_CHECKSUM_OFFSET
        : -1;
      if (csumOffset !== expected || csumStart + csumOffset + 2 > packet.length) {
        return "partial checksum not at a TCP or UDP checksum";
      }
    } else {
      putU16le(frame, 6, 0);
      putU16le(frame, 8, 0);
    }
    putU16le(frame, 2, 0);
    putU16le(frame, 4, 0);
    return undefined;
  }
  const type = gsoType & ~VirtioNetGsoType.ECN;
  if (type !== VirtioNetGsoType.TCPV4 && type !== VirtioNetGsoType.TCPV6) {
    return "gso_type other than TCPv4 or TCPv6";
  }
  if (!needsCsum) return "TCP GSO without a partial checksum";
  const hdrLen = tcpGsoHeaderLength(
    packet,
    type === VirtioNetGsoType.TCPV6,
    u16le(frame, 4),
    csumStart,
    csumOffset,
  );
  if (hdrLen < 0) return GSO_PROBLEMS[-hdrLen];
  putU16le(frame, 2, hdrLen);
  return undefined;
}

/**
 * Hands out the plain IP packets carried by one frame read from an `IFF_VNET_HDR` TUN, for
 * peers that cannot take super-packets (Go EdgeVPN's `/edgevpn/0.1`). Returns how many
 * packets `onPacket` received.
 *
 * - No GSO: the packet's partial checksum (if flagged) is completed in place and the packet
 *   itself is handed out (a view of `frame`).
 * - TCPv4/TCPv6 GSO: the super-packet is cut into segments of `gsoSize` payload bytes, each
 *   built in `scratch` with its own IP length, IPv4 ID and header checksum, TCP sequence number
 *   and full TCP checksum; FIN and PSH stay on the last segment only, CWR on the first only
 *   (as the kernel's software GSO does). `frame` is not modified.
 *
 * A packet view is valid only during its callback. Throws {@link InputError} `GSO_INVALID`
 * for a header that does not match the packet, and `GSO_UNSUPPORTED` for UDP GSO.
 *
 * @example
 * ```ts
 * const scratch = new Uint8Array(65535);
 * forEachPacket(frame, scratch, (packet) => sendToPeer(packet));
 * ```
 */
export function forEachPacket(
  frame: Uint8Array,
  scratch: Uint8Array,
  onPacket: (packet: Uint8Array) => void,
): number {
  const hdr = parseVirtioNetHdr(frame);
  if (hdr === null || frame.length < VIRTIO_NET_HDR_LENGTH + 20) {
    throw invalid(`expected a ${VIRTIO_NET_HDR_LENGTH}-byte header and an IP packet`, frame);
  }
  const packet = frame.subarray(VIRTIO_NET_HDR_LENGTH);
  const gsoType = hdr.gsoType & ~VirtioNetGsoType.ECN;
  if (gsoType === VirtioNetGsoType.NONE) {
    if (
      (hdr.flags & VirtioNetHdrFlag.NEEDS_CSUM) !== 0 &&
      !completeChecksum(packet, hdr.csumStart, hdr.csumOffset)
    ) {
      throw invalid(
        `checksum at ${hdr.csumStart}+${hdr.csumOffset} is outside the packet`,
        packet,
      );
    }
    onPacket(packet);
    return 1;
  }
  if (gsoType !== VirtioNetGsoType.TCPV4 && gsoType !== VirtioNetGsoType.TCPV6) {
    throw new InputError(
      "GSO_UNSUPPORTED",
      `Cannot segment GSO packet: expected TCPv4 or TCPv6 GSO, got gso_type ${hdr.gsoType}`,
    );
  }
  const layout = tcpLayout(packet, hdr, gsoType === VirtioNetGsoType.TCPV6);
  let count = 0;
  // A super-packet without payload still yields its one (header-only) segment.
  for (let start = layout.hdrLen; start < packet.length || count === 0; start += hdr.gsoSize) {
    const end = Math.min(start + hdr.gsoSize, packet.length);
    const length = buildSegment(packet, layout, count, start, end, scratch);
    onPacket(scratch.subarray(0, length));
    count++;
  }
  return count;
}

const UDP_CHECKSUM_OFFSET = 6;
const TCP_CHECKSUM_OFFSET = 16;
const TCP_FLAG_FIN = 0x01;
const TCP_FLAG_PSH = 0x08;
const TCP_FLAG_CWR = 0x80;

interface TcpLayout {
  v6: boolean;
  /** IP header length (with IPv6 extension headers). */
  ipLen: number;
  /** IP + TCP header length, from the TCP data offset (the kernel's hdr_len is only a hint). */
  hdrLen: number;
  gsoSize: number;
  seq: number;
  ipId: number;
}

function tcpLayout(packet: Uint8Array, hdr: VirtioNetHdr, v6: boolean): TcpLayout {
  const hdrLen = tcpGsoHeaderLength(packet, v6, hdr.gsoSize, hdr.csumStart, hdr.csumOffset);
  if (hdrLen < 0) {
    throw invalid(
      `${
        GSO_PROBLEMS[-hdrLen]
      } (gso_type ${hdr.gsoType}, gso_size ${hdr.gsoSize}, csum ${hdr.csumStart}+${hdr.csumOffset})`,
      packet,
    );
  }
  const ipLen = hdr.csumStart;
  return {
    v6,
    ipLen,
    hdrLen,
    gsoSize: hdr.gsoSize,
    seq: u32be(packet, ipLen + 4),
    ipId: v6 ? 0 : (packet[4] << 8) | packet[5],
  };
}

const GSO_PROBLEMS = [
  "",
  "gso_type does not match the IP version",
  "csum_start/csum_offset do not locate the TCP checksum",
  "TCP header does not fit the packet",
  `gso_size below ${MIN_GSO_SIZE} or above what a 64 KiB packet holds`,
  `more than ${MAX_GSO_SEGMENTS} segments`,
] as const;

// The IP + TCP header length of a TCP super-packet, or minus the index of its problem in
// GSO_PROBLEMS. The TCP data offset decides the length: the kernel's hdr_len is only a hint.
function tcpGsoHeaderLength(
  packet: Uint8Array,
  v6: boolean,
  gsoSize: number,
  csumStart: number,
  csumOffset: number,
): number {
  if (packet.length < 20 || packet[0] >> 4 !== (v6 ? 6 : 4)) return -1;
  if (csumOffset !== TCP_CHECKSUM_OFFSET || transportAt(packet, csumStart) !== 6) return -2;
  if (csumStart + 20 > packet.length) return -3;
  const tcpLen = (packet[csumStart + 12] >> 4) * 4;
  const hdrLen = csumStart + tcpLen;
  if (tcpLen < 20 || hdrLen > packet.length) return -3;
  if (gsoSize < MIN_GSO_SIZE || hdrLen + gsoSize > 0xffff) return -4;
  if (Math.ceil((packet.length - hdrLen) / gsoSize) > MAX_GSO_SEGMENTS) return -5;
  return hdrLen;
}

// The protocol of the transport header that starts at `at`, or -1 when the IP headers do not
// end there or the packet is an IPv4 fragment (whose transport header is elsewhere).
function transportAt(packet: Uint8Array, at: number): number {
  const version = packet[0] >> 4;
  if (version === 4) {
    const fragment = ((packet[6] & 0x3f) | packet[7]) !== 0;
    return !fragment && (packet[0] & 0x0f) * 4 === at ? packet[9] : -1;
  }
  if (version !== 6 || packet.length < 40) return -1;
  let next = packet[6];
  let end = 40;
  // Hop-by-hop, routing and destination options: (length + 1) × 8 bytes each.
  for (let i = 0; i < 8 && end < at; i++) {
    if ((next !== 0 && next !== 43 && next !== 60) || end + 2 > packet.length) return -1;
    next = packet[end];
    end += (packet[end + 1] + 1) * 8;
  }
  return end === at ? next : -1;
}

// Builds segment `index` (payload packet[start, end)) in `out`; returns its length.
function buildSegment(
  packet: Uint8Array,
  layout: TcpLayout,
  index: number,
  start: number,
  end: number,
  out: Uint8Array,
): number {
  const { ipLen, hdrLen } = layout;
  const length = hdrLen + end - start;
  if (out.length < length) {
    throw new InputError(
      "GSO_INVALID",
      `Cannot segment GSO packet: scratch buffer of ${out.length} bytes, segment needs ${length}`,
    );
  }
  out.set(packet.subarray(0, hdrLen), 0);
  out.set(packet.subarray(start, end), hdrLen);
  if (layout.v6) {
    putU16be(out, 4, length - 40);
  } else {
    putU16be(out, 2, length);
    putU16be(out, 4, (layout.ipId + index) & 0xffff);
    putU16be(out, 10, 0);
    putU16be(out, 10, internetChecksum(out.subarray(0, ipLen)));
  }
  putU32be(out, ipLen + 4, (layout.seq + index * layout.gsoSize) >>> 0);
  let flags = out[ipLen + 13];
  if (end !== packet.length) flags &= ~(TCP_FLAG_FIN | TCP_FLAG_PSH);
  if (index > 0) flags &= ~TCP_FLAG_CWR;
  out[ipLen + 13] = flags;
  const checksumAt = ipLen + TCP_CHECKSUM_OFFSET;
  putU16be(out, checksumAt, 0);
  const tcp = out.subarray(ipLen, length);
  putU16be(out, checksumAt, internetChecksum(tcp, pseudoHeaderSum(out, 6, tcp.length)));
  return length;
}

function invalid(reason: string, bytes: Uint8Array): InputError {
  return new InputError(
    "GSO_INVALID",
    `Cannot read offload frame: ${reason} (packet of ${bytes.length} bytes)`,
  );
}

function u16le(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8);
}

function putU16le(b: Uint8Array, at: number, value: number): void {
  b[at] = value & 0xff;
  b[at + 1] = (value >> 8) & 0xff;
}

function putU16be(b: Uint8Array, at: number, value: number): void {
  b[at] = (value >> 8) & 0xff;
  b[at + 1] = value & 0xff;
}

function u32be(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

function putU32be(b: Uint8Array, at: number, value: number): void {
  b[at] = value >>> 24;
  b[at + 1] = (value >>> 16) & 0xff;
  b[at + 2] = (value >>> 8) & 0xff;
  b[at + 3] = value & 0xff;
}
