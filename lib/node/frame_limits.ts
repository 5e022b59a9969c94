/**
 * Yamux frame sizes checked when the header arrives: `@chainsafe/libp2p-yamux` 8.0.1 buffers a
 * declared DATA frame whole (up to 4 GiB) before anyone looks at its length, on any connection,
 * before the peer is known to be a member.
 */
import { EdgeVpnError } from "../util/errors.ts";

/** Yamux's initial stream window (spec: 256 KiB): all a stream may receive before an update. */
export const YAMUX_INITIAL_WINDOW = 256 * 1024;

const HEADER = 12;
const DATA = 0;

/** The yamux 8.0.x internals the check relies on. */
interface DecoderShape {
  buffer?: { byteLength: number; subarray(start: number, end: number): Uint8Array };
  readFrame?: () => unknown;
}
interface MuxerShape {
  decoder?: DecoderShape;
  streams?: { streamId?: number; recvWindowCapacity?: number }[];
}

/**
 * Refuses, as soon as its header is read, a DATA frame longer than the receive window its
 * stream has left: that is a protocol violation yamux itself would find only after buffering
 * the whole frame. Frames up to the initial window (256 KiB) pass without a lookup; a larger
 * one needs a stream that granted that much. The error aborts the connection.
 *
 * Returns false, changing nothing, when the muxer does not have the expected internals.
 *
 * @example
 * ```ts
 * const muxer = factory.createStreamMuxer(maConn);
 * boundFrames(muxer);
 * ```
 */
export function boundFrames(muxer: unknown): boolean {
  const m = muxer as MuxerShape;
  const decoder = m.decoder;
  const read = decoder?.readFrame;
  if (
    decoder === undefined || typeof read !== "function" || decoder.buffer === undefined ||
    !Array.isArray(m.streams)
  ) return false;
  decoder.readFrame = function (this: DecoderShape) {
    const buffer = this.buffer!;
    if (buffer.byteLength >= HEADER) {
      const h = buffer.subarray(0, HEADER);
      if (h[1] === DATA) {
        const length = h[8] * 2 ** 24 + (h[9] << 16) + (h[10] << 8) + h[11];
        if (length > YAMUX_INITIAL_WINDOW) {
          const id = h[4] * 2 ** 24 + (h[5] << 16) + (h[6] << 8) + h[7];
          const stream = m.streams!.find((s) => s.streamId === id);
          const window = stream?.recvWindowCapacity ?? YAMUX_INITIAL_WINDOW;
          if (length > window) {
            throw new EdgeVpnError(
              "YAMUX_FRAME_TOO_LARGE",
              `Yamux DATA frame of ${length} bytes on stream ${id} exceeds its window of ${window}`,
            );
          }
        }
      }
    }
    return read.call(this);
  };
  return true;
}
