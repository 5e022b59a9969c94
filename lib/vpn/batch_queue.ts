/** A bounded per-peer queue that coalesces fast-protocol frames into stream-sized batches. */
import { BATCH_BYTES, encodeFrame, FRAME_PREFIX_LENGTH } from "./frame.ts";

/**
 * Frames waiting to be written to one peer's stream, coalesced into batches of at most
 * {@link BATCH_BYTES} (a frame larger than that travels alone). The total is bounded: `push`
 * refuses a frame that would take the queue past `maxBytes` (tail drop).
 *
 * Frames are copied in, so the caller may reuse its buffers at once. A batch handed out by
 * `take` belongs to the caller (it is never written again).
 *
 * @example
 * ```ts ignore
 * const queue = new BatchQueue(1 << 20);
 * if (!queue.push(packet.length, 0, packet, 0, packet.length)) dropped++;
 * for (let batch; (batch = queue.take()) !== null;) stream.write(batch);
 * ```
 */
export class BatchQueue {
  /** The bound on queued bytes. */
  readonly maxBytes: number;
  readonly #sealed: Uint8Array[] = [];
  readonly #sealedFrames: number[] = [];
  #open: Uint8Array | undefined;
  #openUsed = 0;
  #openFrames = 0;
  #bytes = 0;
  #frames = 0;
  #lastFrames = 0;

  constructor(maxBytes: number) {
    if (!(maxBytes >= BATCH_BYTES)) {
      throw new RangeError(`queue bound must be at least ${BATCH_BYTES} bytes, got ${maxBytes}`);
    }
    this.maxBytes = maxBytes;
  }

  /** Bytes queued (frames with their length prefixes). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Frames queued. */
  get frames(): number {
    return this.#frames;
  }

  /** How many frames the last batch returned by {@link take} holds. */
  get lastBatchFrames(): number {
    return this.#lastFrames;
  }

  /**
   * Appends the frame `u16be length ‖ pad zero bytes ‖ src[start, end)`; false (nothing
   * queued) when the queue has no room for it.
   */
  push(length: number, pad: number, src: Uint8Array, start: number, end: number): boolean {
    const size = FRAME_PREFIX_LENGTH + pad + end - start;
    if (this.#bytes + size > this.maxBytes) return false;
    this.#bytes += size;
    this.#frames++;
    if (size > BATCH_BYTES) {
      this.#seal();
      const alone = new Uint8Array(size);
      encodeFrame(alone, 0, length, pad, src, start, end);
      this.#sealed.push(alone);
      this.#sealedFrames.push(1);
      return true;
    }
    if (this.#openUsed + size > BATCH_BYTES) this.#seal();
    const open = this.#open ??= new Uint8Array(BATCH_BYTES);
    this.#openUsed = encodeFrame(open, this.#openUsed, length, pad, src, start, end);
    this.#openFrames++;
    return true;
  }

  /** The next batch to write (oldest first, the partly filled one last), or null when empty. */
  take(): Uint8Array | null {
    if (this.#sealed.length === 0) {
      if (this.#openUsed === 0) return null;
      this.#seal();
    }
    const batch = this.#sealed.shift()!;
    this.#lastFrames = this.#sealedFrames.shift()!;
    this.#bytes -= batch.length;
    this.#frames -= this.#lastFrames;
    return batch;
  }

  /** Empties the queue; returns how many frames were dropped. */
  clear(): number {
    const dropped = this.#frames;
    this.#sealed.length = 0;
    this.#sealedFrames.length = 0;
    this.#openUsed = 0;
    this.#openFrames = 0;
    this.#bytes = 0;
    this.#frames = 0;
    return dropped;
  }

  // Moves the open batch to the sealed list: a well-filled buffer is handed over as it is (a
  // new one is allocated on the next push), a small batch is copied so the buffer is reused.
  #seal(): void {
    if (this.#openUsed === 0) return;
    const open = this.#open!;
    if (this.#openUsed >= BATCH_BYTES / 2) {
      this.#sealed.push(open.subarray(0, this.#openUsed));
      this.#open = undefined;
    } else {
      this.#sealed.push(open.slice(0, this.#openUsed));
    }
    this.#sealedFrames.push(this.#openFrames);
    this.#openUsed = 0;
    this.#openFrames = 0;
  }
}
