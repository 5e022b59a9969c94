/** The libp2p host: node, options, streams, discovery (the only part that imports libp2p). */
export {
  createNode,
  type DiscoverySource,
  EdgeNode,
  type HandleOptions,
  type MembershipPredicate,
  type NodeCounters,
  type NodeEvents,
  type StreamHandler,
} from "./node.ts";
export {
  DEFAULT_BOOTSTRAP_PEERS,
  type DhtMode,
  NODE_DEFAULTS,
  type NodeOptions,
} from "./options.ts";
export type { NodeStream } from "./stream.ts";
export type { RefusalReason } from "./gater.ts";
export { loadOrCreateIdentity, PRIVKEY_FILE } from "./privkey.ts";
export { rendezvousCid } from "./rendezvous.ts";
export { Meter, TrafficMeter, type TrafficStats } from "./traffic.ts";
