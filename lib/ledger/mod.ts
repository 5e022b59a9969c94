/** The EdgeVPN ledger: Go-compatible blocks and entries, ownership merge, stores and sync gossip. */

export * from "./block.ts";
export * from "./buckets.ts";
export * from "./entry.ts";
export * from "./json.ts";
export * from "./ledger.ts";
export * from "./merge.ts";
export * from "./policy.ts";
export * from "./store.ts";
export * from "./store_disk.ts";
export * from "./store_memory.ts";
export * from "./wire.ts";
