/** The ledger's save queue: one store write at a time, a newer block replacing one still waiting. */

import type { Block } from "./block.ts";

/**
 * Coalesces saves of the last block: while one save runs, later blocks wait in a single slot
 * (each replacing the one before), so a burst of changes costs two writes, not one per block.
 * Every caller's promise settles once a save at least as new as its block is done, with that
 * save's outcome.
 *
 * @example
 * ```ts
 * const queue = new SaveQueue((block) => store.save(block), (e) => log.error(String(e)));
 * await queue.save(block); // on disk (or rejected with the store's error)
 * await queue.idle();
 * ```
 */
export class SaveQueue {
  readonly #save: (block: Block) => Promise<void>;
  readonly #onFailure: (error: unknown) => void;
  #seq = 0;
  #saving?: Promise<void>;
  #pending?: { block: Block; seq: number };
  #waiters: Array<{ seq: number; resolve: () => void; reject: (e: unknown) => void }> = [];

  /** `save` writes one block; `onFailure` hears of every failed write (count it, log it). */
  constructor(save: (block: Block) => Promise<void>, onFailure: (error: unknown) => void) {
    this.#save = save;
    this.#onFailure = onFailure;
  }

  /** Queues `block`; resolves once it or a newer block is saved, rejects if that save failed. */
  save(block: Block): Promise<void> {
    const seq = ++this.#seq;
    this.#pending = { block, seq };
    const done = new Promise<void>((resolve, reject) =>
      this.#waiters.push({ seq, resolve, reject })
    );
    this.#saving ??= this.#drain();
    return done;
  }

  /** Resolves once nothing is being saved or waiting to be. */
  async idle(): Promise<void> {
    while (this.#saving) await this.#saving;
  }

  async #drain(): Promise<void> {
    while (this.#pending) {
      const { block, seq } = this.#pending;
      this.#pending = undefined;
      let error: unknown;
      try {
        await this.#save(block);
      } catch (e) {
        error = e;
        this.#onFailure(e);
      }
      const ready = this.#waiters.filter((w) => w.seq <= seq);
      this.#waiters = this.#waiters.filter((w) => w.seq > seq);
      for (const w of ready) error === undefined ? w.resolve() : w.reject(error);
    }
    this.#saving = undefined;
  }
}
