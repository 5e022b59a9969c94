/**
 * Pull-based reading of a libp2p stream: what arrived but was not read yet is bounded, and
 * beyond that the stream is paused, so the muxer stops granting the sender window.
 */
import type { Stream } from "@libp2p/interface";

/** A chunk as libp2p streams deliver them (a `Uint8Array` or a `Uint8ArrayList`). */
export type Chunk = { byteLength: number; subarray(): Uint8Array };

/** The stream fields the bounded reader uses (libp2p 3.3 `AbstractStream`). */
interface StreamShape {
  readStatus?: string;
  maxReadBufferLength?: number;
  pause(): void;
  resume(): void;
  addEventListener(type: string, listener: (e: Event) => void): void;
  removeEventListener(type: string, listener: (e: Event) => void): void;
}

/**
 * Reads `stream` holding at most `maxBuffered` bytes the reader has not taken: past it the
 * stream is paused (yamux then stops sending window updates, so the sender stalls once its
 * window is spent) and it resumes once the reader caught up to half of it. libp2p 3.3's own
 * readers (the stream's async iterator, `pipe`) push every arriving chunk into an unbounded
 * queue, so a reader slower than its peer (GossipSub checking signatures of a flood) buffers
 * without end.
 *
 * While paused, the muxer still accepts what the peer's remaining window allows; the stream's
 * read buffer limit is raised to `windowBytes` above `maxBuffered` so that this never resets it.
 *
 * @example
 * ```ts
 * for await (const chunk of readBounded(stream, 4 << 20, 16 << 20)) await handle(chunk);
 * ```
 */
export function readBounded(
  stream: Stream,
  maxBuffered: number,
  windowBytes: number,
): AsyncIterable<Chunk> {
  const s = stream as unknown as StreamShape;
  if (typeof s.pause !== "function" || typeof s.resume !== "function") {
    return stream as unknown as AsyncIterable<Chunk>;
  }
  s.maxReadBufferLength = Math.max(s.maxReadBufferLength ?? 0, maxBuffered + windowBytes);
  return { [Symbol.asyncIterator]: () => read(s, maxBuffered) };
}

async function* read(s: StreamShape, maxBuffered: number): AsyncGenerator<Chunk> {
  if (s.readStatus !== "readable" && s.readStatus !== "paused") return;
  const queue: Chunk[] = [];
  let buffered = 0;
  let paused = false;
  let ended = false;
  let error: unknown;
  let wake: (() => void) | undefined;
  const onMessage = (e: Event) => {
    const data = (e as Event & { data: Chunk }).data;
    queue.push(data);
    buffered += data.byteLength;
    if (!paused && buffered > maxBuffered && s.readStatus === "readable") {
      paused = true;
      s.pause();
    }
    wake?.();
  };
  const onClose = (e: Event) => {
    ended = true;
    error = (e as Event & { error?: unknown }).error;
    wake?.();
  };
  const onEnd = () => {
    ended = true;
    wake?.();
  };
  // The stream ends (`end`) only once its read buffer is empty: a paused one is resumed, so
  // that what it holds back is delivered (as `message` events) first.
  const onRemoteCloseWrite = () => {
    if (s.readStatus === "paused") s.resume();
  };
  s.addEventListener("message", onMessage);
  s.addEventListener("close", onClose);
  s.addEventListener("end", onEnd);
  s.addEventListener("remoteCloseWrite", onRemoteCloseWrite);
  try {
    for (;;) {
      const chunk = queue.shift();
      if (chunk !== undefined) {
        buffered -= chunk.byteLength;
        if (paused && buffered <= maxBuffered / 2) {
          paused = false;
          if (s.readStatus === "paused") s.resume();
        }
        yield chunk;
        continue;
      }
      if (ended) {
        if (error !== undefined) throw error;
        return;
      }
      await new Promise<void>((resolve) => wake = resolve);
      wake = undefined;
    }
  } finally {
    s.removeEventListener("message", onMessage);
    s.removeEventListener("close", onClose);
    s.removeEventListener("end", onEnd);
    s.removeEventListener("remoteCloseWrite", onRemoteCloseWrite);
  }
}
