/** Our byte-stream interface over a libp2p stream: backpressured writes, paced reads. */
import type { Stream } from "@libp2p/interface";
import { traceMark, tracing } from "../util/trace.ts";

/**
 * A bidirectional byte stream to one peer on one protocol. Features (VPN, services, files)
 * use this and never see libp2p types.
 *
 * @example
 * ```ts ignore
 * const s = await node.dialProtocol(peerId, "/edgevpn/service/0.1");
 * await s.write(new TextEncoder().encode("hello"));
 * for await (const chunk of s) console.log(chunk.length);
 * await s.close();
 * ```
 */
export interface NodeStream extends AsyncIterable<Uint8Array> {
  readonly remotePeer: string;
  readonly protocol: string;
  readonly direction: "inbound" | "outbound";
  /** The stream travels over a relayed connection (a direct one may come later). */
  readonly relayed: boolean;
  /**
   * Queues `bytes` for sending. Resolves at once while the transport accepts more; otherwise
   * when its buffer has drained. Rejects when the stream is closed or reset.
   */
  write(bytes: Uint8Array): Promise<void>;
  /**
   * Reads in push mode instead of iterating: `onChunk` runs synchronously for each chunk as
   * the connection delivers it (chunks read ahead before the call come first), without a
   * promise hop or buffering, so it must not keep the chunk after returning. Resolves when the
   * peer ends the stream; rejects when it is reset or when `onChunk` throws (the stream is then
   * reset). One reader only: not together with iteration.
   */
  consume(onChunk: (chunk: Uint8Array) => void): Promise<void>;
  /**
   * Sends what was written during this task now instead of at its end (writes are coalesced
   * per connection until the microtask queue drains): for a writer that knows nothing else is
   * coming, so that a lone packet leaves at once.
   */
  flush(): void;
  /** True when a write would have to wait for the transport to drain. */
  readonly needsDrain: boolean;
  /** Ends our writing side once queued bytes are sent; reading goes on until the peer ends. */
  close(): Promise<void>;
  /** Aborts both directions at once; the peer sees a reset. */
  reset(): void;
  /** Resolves when the stream is finished in both directions (cleanly or not). */
  readonly closed: Promise<void>;
}

/** Bytes read ahead of the consumer before the peer is told to pause. */
const READ_HIGH_WATER = 1 << 20;
/** A paused stream may still receive a full yamux window (Go: up to 16 MiB). */
const MAX_READ_BUFFER = 24 << 20;

/**
 * Wraps a libp2p stream; `onFinished` runs once when it is closed or reset, `flush` sends what
 * its connection holds for the end of the task.
 *
 * @example
 * ```ts ignore
 * const s = wrapStream(rawStream, "12D3KooW…", () => {}, () => flushMuxer(muxer));
 * ```
 */
export function wrapStream(
  stream: Stream,
  remotePeer: string,
  onFinished: () => void = () => {},
  flush: () => void = () => {},
  relayed = false,
): NodeStream {
  return new Libp2pNodeStream(stream, remotePeer, onFinished, flush, relayed);
}

class Libp2pNodeStream implements NodeStream {
  readonly remotePeer: string;
  readonly closed: Promise<void>;
  readonly #stream: Stream;
  readonly #flush: () => void;
  readonly #chunks: Uint8Array[] = [];
  #head = 0;
  #buffered = 0;
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  #iterating = false;
  #resuming = false;
  #consumer: ((chunk: Uint8Array) => void) | undefined;
  #consumed: { resolve(): void; reject(e: Error): void } | undefined;

  constructor(
    stream: Stream,
    remotePeer: string,
    onFinished: () => void,
    flush: () => void,
    readonly relayed: boolean,
  ) {
    this.#stream = stream;
    this.#flush = flush;
    this.remotePeer = remotePeer;
    if (stream.maxReadBufferLength < MAX_READ_BUFFER) stream.maxReadBufferLength = MAX_READ_BUFFER;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.closed = promise;
    stream.addEventListener("message", (e) => {
      if (tracing) traceMark("stream.message");
      const data = e.data;
      const bytes = data instanceof Uint8Array ? data : data.subarray();
      if (this.#consumer !== undefined) {
        this.#push(bytes);
        return;
      }
      this.#chunks.push(bytes);
      this.#buffered += bytes.length;
      // Never pause inside the burst that resume() delivers synchronously: the stream would
      // count that data against its read buffer while paused and abort.
      if (
        this.#buffered > READ_HIGH_WATER && !this.#resuming && stream.readStatus === "readable"
      ) stream.pause();
      this.#notify();
    });
    stream.addEventListener("end", () => {
      this.#ended = true;
      this.#notify();
    });
    stream.addEventListener("close", (e) => {
      this.#ended = true;
      if (e.error && !e.local) this.#error = e.error;
      this.#notify();
      onFinished();
      resolve();
    }, { once: true });
    // A stream reset while it was negotiated (the peer refused it at once) is wrapped
    // finished: its reader must see the reset, never a clean end.
    if (stream.status === "reset" || stream.status === "aborted") {
      this.#error = new Error("the stream was reset before it could be used");
    }
    if (stream.readableEnded || stream.status !== "open") {
      // Bytes read together with the FIN during protocol negotiation (a lazy dialer sends its
      // data and FIN with the protocol line) were put back after 'end' fired; adding the
      // 'message' listener above queued their delivery, so end only after it.
      queueMicrotask(() => {
        this.#ended = true;
        this.#notify();
      });
    }
    if (stream.status !== "open") {
      onFinished();
      resolve();
    }
  }

  get protocol(): string {
    return this.#stream.protocol;
  }

  get direction(): "inbound" | "outbound" {
    return this.#stream.direction;
  }

  flush(): void {
    this.#flush();
  }

  get needsDrain(): boolean {
    return this.#stream.writableNeedsDrain;
  }

  write(bytes: Uint8Array): Promise<void> {
    try {
      if (this.#stream.send(bytes)) return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#drained();
  }

  consume(onChunk: (chunk: Uint8Array) => void): Promise<void> {
    if (this.#iterating || this.#consumer !== undefined) {
      return Promise.reject(new Error("a NodeStream can be read by one reader only"));
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#consumer = onChunk;
    this.#consumed = { resolve, reject };
    const held = this.#chunks.splice(this.#head);
    this.#chunks.length = 0;
    this.#head = 0;
    this.#buffered = 0;
    for (const chunk of held) if (!this.#push(chunk)) return promise;
    // Only now: resume() hands over at once what arrived while paused, after those held.
    if (this.#stream.readStatus === "paused") this.#stream.resume();
    this.#settle();
    return promise;
  }

  async close(): Promise<void> {
    if (this.#stream.writeStatus === "writable") await this.#stream.close();
  }

  reset(): void {
    this.#stream.abort(new Error("stream reset by the local node"));
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.#iterating) throw new Error("a NodeStream can be read by one reader only");
    this.#iterating = true;
    try {
      while (true) {
        if (this.#head < this.#chunks.length) {
          const chunk = this.#chunks[this.#head];
          this.#chunks[this.#head++] = EMPTY;
          if (this.#head > 64 && this.#head * 2 > this.#chunks.length) {
            this.#chunks.splice(0, this.#head);
            this.#head = 0;
          }
          this.#buffered -= chunk.length;
          if (this.#buffered <= READ_HIGH_WATER / 2 && this.#stream.readStatus === "paused") {
            this.#resuming = true;
            try {
              this.#stream.resume();
            } finally {
              this.#resuming = false;
            }
            // resume() may have delivered a burst while we could not pause: pause now.
            const status: string = this.#stream.readStatus;
            if (this.#buffered > READ_HIGH_WATER && status === "readable") {
              this.#stream.pause();
            }
          }
          yield chunk;
          continue;
        }
        if (this.#error) throw this.#error;
        if (this.#ended) return;
        await new Promise<void>((resolve) => this.#wake = resolve);
      }
    } finally {
      this.#iterating = false;
    }
  }

  // Hands one chunk to the push-mode reader; false once it threw (the stream is then reset).
  #push(chunk: Uint8Array): boolean {
    try {
      this.#consumer!(chunk);
      return true;
    } catch (e) {
      const consumed = this.#consumed;
      this.#consumed = undefined;
      this.reset();
      consumed?.reject(e as Error);
      return false;
    }
  }

  // Ends push-mode reading once the stream has ended or failed.
  #settle(): void {
    const consumed = this.#consumed;
    if (consumed === undefined || !this.#ended) return;
    this.#consumed = undefined;
    if (this.#error) consumed.reject(this.#error);
    else consumed.resolve();
  }

  #notify(): void {
    this.#settle();
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #drained(): Promise<void> {
    const stream = this.#stream;
    if (!stream.writableNeedsDrain) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onDrain = () => {
        stream.removeEventListener("close", onClose);
        resolve();
      };
      const onClose = () => {
        stream.removeEventListener("drain", onDrain);
        reject(new Error("stream closed while waiting to write"));
      };
      stream.addEventListener("drain", onDrain, { once: true });
      stream.addEventListener("close", onClose, { once: true });
    });
  }
}

const EMPTY = new Uint8Array(0);
