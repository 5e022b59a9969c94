/**
 * Received ledger messages, handled one at a time from a bounded queue: each costs a gunzip, a
 * JSON parse and signature checks, and when every message ran at once, a peer sending eight
 * messages that inflate to 60 MiB each held half a gigabyte and stalled the node for seconds.
 */

/** Defaults of {@link ReceiveQueue}. */
export const RECEIVE_QUEUE_DEFAULTS = {
  /** Messages waiting, in all. */
  maxMessages: 64,
  /** Bytes waiting, in all (compressed, as received). */
  maxBytes: 64 << 20,
  /** Messages waiting from one peer: one peer cannot crowd out the others. */
  maxPerPeer: 8,
} as const;

/** Why a message was not queued. */
export type QueueDropReason = "queue_full" | "peer_queue_full";

/**
 * A FIFO of `(bytes, peer)` drained by one handler call at a time. A message that would exceed
 * the queue's bounds is dropped at once (reported to `onDrop`): the ledger's periodic sync
 * sends the state again, so dropping costs a delay, never data.
 *
 * @example
 * ```ts ignore
 * const queue = new ReceiveQueue((bytes, from) => ledger.receive(bytes, from));
 * hub.addEventListener("message", (e) => queue.push(e.detail.data, e.detail.from));
 * await queue.stop();
 * ```
 */
export class ReceiveQueue {
  readonly #handle: (bytes: Uint8Array, from: string) => Promise<unknown>;
  readonly #onDrop: (reason: QueueDropReason, from: string) => void;
  readonly #maxMessages: number;
  readonly #maxBytes: number;
  readonly #maxPerPeer: number;
  readonly #queue: { bytes: Uint8Array; from: string }[] = [];
  readonly #perPeer = new Map<string, number>();
  #bytes = 0;
  #draining: Promise<void> | undefined;
  #stopped = false;

  constructor(
    handle: (bytes: Uint8Array, from: string) => Promise<unknown>,
    options: Partial<typeof RECEIVE_QUEUE_DEFAULTS> & {
      onDrop?: (reason: QueueDropReason, from: string) => void;
    } = {},
  ) {
    this.#handle = handle;
    this.#onDrop = options.onDrop ?? (() => {});
    this.#maxMessages = options.maxMessages ?? RECEIVE_QUEUE_DEFAULTS.maxMessages;
    this.#maxBytes = options.maxBytes ?? RECEIVE_QUEUE_DEFAULTS.maxBytes;
    this.#maxPerPeer = options.maxPerPeer ?? RECEIVE_QUEUE_DEFAULTS.maxPerPeer;
  }

  /** Messages waiting (the one being handled not included). */
  get length(): number {
    return this.#queue.length;
  }

  /** Queues a message from `from`; false when it was dropped. */
  push(bytes: Uint8Array, from: string): boolean {
    if (this.#stopped) return false;
    if ((this.#perPeer.get(from) ?? 0) >= this.#maxPerPeer) {
      this.#onDrop("peer_queue_full", from);
      return false;
    }
    if (this.#queue.length >= this.#maxMessages || this.#bytes + bytes.length > this.#maxBytes) {
      this.#onDrop("queue_full", from);
      return false;
    }
    this.#queue.push({ bytes, from });
    this.#bytes += bytes.length;
    this.#perPeer.set(from, (this.#perPeer.get(from) ?? 0) + 1);
    this.#draining ??= this.#drain();
    return true;
  }

  /** Drops what waits and resolves once the message being handled is done. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#queue.length = 0;
    this.#perPeer.clear();
    this.#bytes = 0;
    await this.#draining;
  }

  async #drain(): Promise<void> {
    try {
      for (let m = this.#queue.shift(); m !== undefined; m = this.#queue.shift()) {
        this.#bytes -= m.bytes.length;
        const n = (this.#perPeer.get(m.from) ?? 1) - 1;
        if (n > 0) this.#perPeer.set(m.from, n);
        else this.#perPeer.delete(m.from);
        try {
          await this.#handle(m.bytes, m.from);
        } catch {
          // The handler counts its own failures; the queue goes on.
        }
        // Between two messages, timers and sockets get their turn (a handler that settles
        // in microtasks only would otherwise keep them waiting for the whole queue).
        if (this.#queue.length > 0) await new Promise((resolve) => setTimeout(resolve, 0));
      }
    } finally {
      this.#draining = undefined;
    }
  }
}
