/** The persistence interface the ledger writes its last block through. */

import type { Block } from "./block.ts";

/** What a store found on start. */
export interface StoreLoad {
  /** The persisted last block, absent when the store is empty (or was unreadable). */
  readonly block?: Block;
  /** One-line warning when persisted state was unusable and set aside. */
  readonly warning?: string;
}

/**
 * Keeps the ledger's last block (Go keeps only the last block too).
 *
 * @example
 * ```ts
 * import { genesisBlock } from "./block.ts";
 * import { MemoryStore } from "./store_memory.ts";
 * const store: LedgerStore = new MemoryStore();
 * await store.save(genesisBlock(0n));
 * ```
 */
export interface LedgerStore {
  /** Reads the persisted last block. Never throws for bad content: it reports a warning. */
  load(): Promise<StoreLoad>;
  /** Stores `block` as the last block; resolves once it would survive a crash. */
  save(block: Block): Promise<void>;
  /** Releases resources; no call follows. */
  close(): Promise<void>;
}
