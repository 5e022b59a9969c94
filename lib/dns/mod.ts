/** DNS for the network: a server answering from the ledger's `dns` bucket and machine names, with forwarding. */
export * from "./address.ts";
export * from "./forwarder.ts";
export * from "./records.ts";
export * from "./regex_keys.ts";
export * from "./resolver.ts";
export * from "./server.ts";
export * from "./types.ts";
export * from "./wire.ts";
export * from "./zone.ts";
