/** What the HTTP API needs from the rest of the node: narrow views of the ledger and the libp2p host. */

import type { Ledger } from "../ledger/ledger.ts";
import type { Logger } from "../util/logger.ts";

/**
 * Bandwidth totals and rates, Go's `metrics.Stats` (bytes and bytes per second).
 *
 * @example
 * ```ts
 * const idle: ApiBandwidth = { TotalIn: 0, TotalOut: 0, RateIn: 0, RateOut: 0 };
 * ```
 */
export interface ApiBandwidth {
  TotalIn: number;
  TotalOut: number;
  RateIn: number;
  RateOut: number;
}

/**
 * What the API reads from the libp2p node. Peer IDs are base58 strings (`12D3KooW…`).
 * The node engineer implements it over the libp2p host and gossip router.
 *
 * @example
 * ```ts
 * const view: ApiNodeView = {
 *   peerId: "12D3KooWExample",
 *   peerstorePeers: () => [],
 *   topicPeers: () => [],
 *   connectedPeers: () => [],
 * };
 * ```
 */
export interface ApiNodeView {
  /** Our own peer ID. */
  readonly peerId: string;
  /** Every peer in the peer store; our own ID may be included or not (the API adds it, as Go's peerstore always holds it). */
  peerstorePeers(): readonly string[];
  /** Peers subscribed to the current main gossip topic (Go `MessageHub.ListPeers`). */
  topicPeers(): readonly string[];
  /** Peers with an open connection. */
  connectedPeers(): readonly string[];
  /** Bandwidth totals; `/api/metrics` exists only when present. */
  metrics?(): ApiBandwidth;
  /** Bandwidth by protocol ID; `/api/metrics/protocol[/:protocol]` exist only when present. */
  metricsByProtocol?(): ReadonlyMap<string, ApiBandwidth>;
  /** Bandwidth by peer ID; `/api/metrics/peer[/:peer]` exist only when present. */
  metricsByPeer?(): ReadonlyMap<string, ApiBandwidth>;
  /** Dropped-input counters by reason (served by `/api/counters` next to the ledger's). */
  counters?(): Readonly<Record<string, number>>;
}

/**
 * The peer gate of `--peerguard`: `/api/peergate` exists only when one is given.
 *
 * @example
 * ```ts
 * let on = true;
 * const gate: ApiPeerGate = { enabled: () => on, setEnabled: (v) => void (on = v) };
 * ```
 */
export interface ApiPeerGate {
  enabled(): boolean;
  setEnabled(enabled: boolean): void;
}

/**
 * The ledger operations the API uses (a {@link Ledger} satisfies it).
 *
 * @example
 * ```ts
 * const ledger: ApiLedger = await createLedger();
 * ```
 */
export type ApiLedger = Pick<
  Ledger,
  | "currentData"
  | "lastBlock"
  | "index"
  | "availableNodes"
  | "add"
  | "delete"
  | "deleteBucket"
  | "persist"
  | "supersede"
  | "announceDeleteBucket"
  | "announceDeleteBucketKey"
  | "counters"
>;

/**
 * Components of the API server.
 *
 * @example
 * ```ts
 * const components: ApiComponents = { ledger, node: view, logger };
 * ```
 */
export interface ApiComponents {
  ledger: ApiLedger;
  node: ApiNodeView;
  /** Default: silent. */
  logger?: Logger;
  peerGate?: ApiPeerGate;
}
