/** Byte layout of TUN frames as the kernel hands them over: the virtio header and the IP length field. */

/** Size of `struct virtio_net_hdr`, which precedes every frame of an `IFF_VNET_HDR` device. */
export const VIRTIO_NET_HDR_LENGTH = 10;

/** Length of an IPv6 fixed header. */
export const IPV6_HEADER_LENGTH = 40;
/** Smallest IPv4 header (IHL 5). */
export const IPV4_MIN_HEADER_LENGTH = 20;

/**
 * Returns the length of the IP packet at the start of `bytes` as its header states it, -1 when
 * the header is malformed (bad version, IHL below 5, total length shorter than the header), or
 * 0 when too few bytes are present to read the length (fewer than 4 for IPv4, 6 for IPv6).
 *
 * The packet itself may be longer than `bytes` (truncated): compare with `bytes.length`. The
 * TUN device uses it to tell a frame the kernel cut to the buffer; the VPN to split streams.
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
