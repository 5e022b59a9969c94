/** Protocol IDs of the VPN data planes and the framing of our fast protocols. */
import { InputError } from "../util/errors.ts";
import type { VIRTIO_NET_HDR_LENGTH } from "./gso.ts";

/** Go EdgeVPN's protocol: one raw IP packet per stream, no framing. */
export const LEGACY_PROTOCOL = "/edgevpn/0.1";
/**
 * Ours, for peers whose interface takes offload frames: one long-lived stream per peer and
 * direction carrying `u16be packetLength ‖ virtio_net_hdr (10 bytes) ‖ packet` frames, where the
 * packet may be a TCP super-packet of up to 64 KiB described by the header.
 */
export const FAST_GSO_PROTOCOL = "/edgevpn/fast-gso/1.0.0";
/** Ours, for every peer: one long-lived stream carrying `u16be packetLength ‖ packet` frames. */
export const FAST_PROTOCOL = "/edgevpn/fast/1.0.0";

/** Bytes of the length prefix of a fast frame. */
export const FRAME_PREFIX_LENGTH = 2;
/** Smallest packet a frame may carry (an IPv4 header). */
export const MIN_FRAME_PACKET = 20;
/** Largest packet a frame may carry (the u16 length field). */
export const MAX_FRAME_PACKET = 0xffff;
/**
 * Largest batch of frames handed to the stream in one write: what fits one Noise message
 * (65 535 − 16 tag bytes) after the 12-byte yamux header, so a full batch costs one encryption.
 */
export const BATCH_BYTES = 65_519 - 12;

/**
 * Frames that cannot come from a well-behaved peer: the stream cannot be resynchronised.
 *
 * @example
 * ```ts ignore
 * try {
 *   decoder.push(chunk, write);
 * } catch (e) {
 *   if (e instanceof FrameError) stream.reset();
 * }
 * ```
 */
export class FrameError extends InputError {
  constructor(message: string) {
    super("VPN_FRAME_INVALID", message);
  }
}

/**
 * Splits the byte stream of a fast protocol into frames, across any chunk boundaries. Frames
 * whole inside a chunk are handed out as views of it; a frame cut across chunks is assembled in
 * an internal buffer. Every frame is checked: its packet length must be at least 20 bytes and
 * equal to what the IP header says (IPv4 total length, or 40 + IPv6 payload length).
 *
 * @example
 * ```ts ignore
 * const decoder = new FrameDecoder(VIRTIO_NET_HDR_LENGTH); // FAST_GSO_PROTOCOL
 * for await (const chunk of stream) decoder.push(chunk, (frame) => tun.writeSync(frame));
 * ```
 */
export class FrameDecoder {
  /** Bytes between the length prefix and the packet: 10 (fast-gso) or 0 (fast). */
  readonly headerLength: number;
  readonly #pending: Uint8Array;
  #pendingLength = 0;

  constructor(headerLength: 0 | typeof VIRTIO_NET_HDR_LENGTH) {
    this.headerLength = headerLength;
    this.#pending = new Uint8Array(FRAME_PREFIX_LENGTH + headerLength + MAX_FRAME_PACKET);
  }

  /** Bytes of an incomplete frame held back for the next chunk. */
  get pendingBytes(): number {
    return this.#pendingLength;
  }

  /**
   * Feeds one chunk; calls `onFrame` with every frame it completes, in order: the header (if
   * any) and the packet, without the length prefix. A frame view is valid only during its
   * callback.
   *
   * @throws {FrameError} on an impossible frame; the decoder must not be used again.
   */
  push(chunk: Uint8Array, onFrame: (frame: Uint8Array) => void): void {
    const n = chunk.length;
    if (n === 0) return;
    const header = this.headerLength;
    let at = 0;
    if (this.#pendingLength > 0) {
      at = this.#complete(chunk, onFrame);
      if (at < 0) return;
    }
    while (at + FRAME_PREFIX_LENGTH <= n) {
      const length = (chunk[at] << 8) | chunk[at + 1];
      if (length < MIN_FRAME_PACKET) throw tooShort(length);
      const end = at + FRAME_PREFIX_LENGTH + header + length;
      if (end > n) break;
      checkPacket(chunk, at + FRAME_PREFIX_LENGTH + header, length);
      onFrame(chunk.subarray(at + FRAME_PREFIX_LENGTH, end));
      at = end;
    }
    if (at < n) {
      this.#pending.set(at === 0 ? chunk : chunk.subarray(at), 0);
      this.#pendingLength = n - at;
    }
  }

  // Completes the held-back frame from the start of `chunk`; returns where the rest of the
  // chunk starts, or -1 when the chunk was used up without completing it.
  #complete(chunk: Uint8Array, onFrame: (frame: Uint8Array) => void): number {
    const pending = this.#pending;
    let at = 0;
    if (this.#pendingLength < FRAME_PREFIX_LENGTH) {
      pending[this.#pendingLength++] = chunk[at++];
      if (at === chunk.length) return -1;
    }
    const length = (pending[0] << 8) | pending[1];
    if (length < MIN_FRAME_PACKET) throw tooShort(length);
    const total = FRAME_PREFIX_LENGTH + this.headerLength + length;
    const take = Math.min(total - this.#pendingLength, chunk.length - at);
    pending.set(chunk.subarray(at, at + take), this.#pendingLength);
    this.#pendingLength += take;
    at += take;
    if (this.#pendingLength < total) return -1;
    this.#pendingLength = 0;
    checkPacket(pending, FRAME_PREFIX_LENGTH + this.headerLength, length);
    onFrame(pending.subarray(FRAME_PREFIX_LENGTH, total));
    return at;
  }
}

/**
 * Writes the frame `u16be length ‖ pad zero bytes ‖ src[start, end)` at `offset` of `target`;
 * returns the offset after it. The caller checked that it fits.
 *
 * @example
 * ```ts ignore
 * const out = new Uint8Array(2 + packet.length);
 * encodeFrame(out, 0, packet.length, 0, packet, 0, packet.length); // FAST_PROTOCOL frame
 * ```
 */
export function encodeFrame(
  target: Uint8Array,
  offset: number,
  length: number,
  pad: number,
  src: Uint8Array,
  start: number,
  end: number,
): number {
  target[offset] = length >>> 8;
  target[offset + 1] = length & 0xff;
  let at = offset + FRAME_PREFIX_LENGTH;
  if (pad > 0) {
    target.fill(0, at, at + pad);
    at += pad;
  }
  target.set(start === 0 && end === src.length ? src : src.subarray(start, end), at);
  return at + end - start;
}

/**
 * The length of the IP packet at `offset` of `bytes` as its header states it, or -1 when the
 * header is malformed or fewer than 6 bytes are present. Allocates nothing.
 *
 * @example
 * ```ts ignore
 * ipLengthAt(frame, VIRTIO_NET_HDR_LENGTH); // 84 for a 84-byte ping behind a virtio header
 * ```
 */
export function ipLengthAt(bytes: Uint8Array, offset: number): number {
  if (bytes.length - offset < 6) return -1;
  const first = bytes[offset];
  const version = first >> 4;
  if (version === 4) {
    const headerLength = (first & 0x0f) << 2;
    const total = (bytes[offset + 2] << 8) | bytes[offset + 3];
    return headerLength < 20 || total < headerLength ? -1 : total;
  }
  if (version === 6) return 40 + ((bytes[offset + 4] << 8) | bytes[offset + 5]);
  return -1;
}

function checkPacket(bytes: Uint8Array, offset: number, length: number): void {
  const stated = ipLengthAt(bytes, offset);
  if (stated !== length) {
    throw new FrameError(
      stated < 0
        ? `Cannot decode VPN frame: expected an IPv4 or IPv6 packet of ${length} bytes, got first byte 0x${
          bytes[offset].toString(16).padStart(2, "0")
        }`
        : `Cannot decode VPN frame: frame length ${length} differs from the IP header's ${stated}`,
    );
  }
}

function tooShort(length: number): FrameError {
  return new FrameError(
    `Cannot decode VPN frame: expected a packet of ${MIN_FRAME_PACKET}–${MAX_FRAME_PACKET} bytes, got ${length}`,
  );
}
