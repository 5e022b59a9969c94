/** In-memory ledger store (Go `MemoryStore`): the default when no `--ledger-state` is given. */

import type { Block } from "./block.ts";
import type { LedgerStore, StoreLoad } from "./store.ts";

/**
 * Keeps the last block in memory; `load()` returns what the last `save()` stored.
 *
 * @example
 * ```ts
 * import { genesisBlock } from "./block.ts";
 * const store = new MemoryStore();
 * await store.save(genesisBlock(0n));
 * (await store.load()).block?.index; // 0
 * ```
 */
export class MemoryStore implements LedgerStore {
  #block?: Block;

  load(): Promise<StoreLoad> {
    return Promise.resolve(this.#block ? { block: this.#block } : {});
  }

  save(block: Block): Promise<void> {
    this.#block = block;
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
