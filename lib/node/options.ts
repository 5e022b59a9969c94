/** Options of the libp2p node and their defaults (the single source the CLI and API share). */
import type { NetworkConfig } from "../config/network.ts";
import { OPTIONS } from "../config/options.ts";
import type { Identity } from "../crypto/identity.ts";
import type { Clock } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";
import type { NatOptions } from "./nat.ts";

/**
 * kad-dht's public bootstrap peers (Go: `dht.DefaultBootstrapPeers`), used when no
 * bootstrap peer is configured.
 */
export const DEFAULT_BOOTSTRAP_PEERS: readonly string[] = [
  "/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN",
  "/dnsaddr/bootstrap.libp2p.io/p2p/QmQCU2EcMqAqQPR2i9bChDtGNJchTbq5TbXJJ16u19uLTa",
  "/dnsaddr/bootstrap.libp2p.io/p2p/QmbLHAnMoJPWSCR5Zhtx6BHJX9KiKNN6tpvbUcqanj75Nb",
  "/dnsaddr/bootstrap.libp2p.io/p2p/QmcZf59bWwK5XFi76CZX8cbJ4BhTzzA3gU1ZjYZcYW3dwt",
  "/ip4/104.131.131.82/tcp/4001/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ",
];

/** Defaults of {@link NodeOptions}. */
export const NODE_DEFAULTS = {
  listenMaddrs: ["/ip4/0.0.0.0/tcp/0", "/ip6/::/tcp/0"] as readonly string[],
  bootstrapPeers: DEFAULT_BOOTSTRAP_PEERS,
  dht: true,
  dhtMode: "auto" as DhtMode,
  mdns: true,
  /** Go CLI `--discovery-interval` (720 s), from the option table. */
  discoveryIntervalMs: OPTIONS.discoveryInterval.default * 1000,
  privkeyCache: false,
  /** Go makes bootstrap peers GossipSub direct peers; we do not by default (see node.ts). */
  directBootstrapPeers: false,
  /** Identify agent version and user agent, as Go EdgeVPN sets it. */
  userAgent: "edgevpn",
  dialTimeoutMs: 30_000,
  /** How long an inbound message stream (`EdgeNode.handleMessages`) may take to end. */
  inboundTimeoutMs: 10_000,
} as const;

/**
 * DHT role: `auto` is a client until libp2p sees a public address (Go's default); `server`
 * answers queries (what a LAN or test DHT needs); `client` never does.
 */
export type DhtMode = "auto" | "server" | "client";

/**
 * Options of `createNode`.
 *
 * @example
 * ```ts ignore
 * const options: NodeOptions = {
 *   network,
 *   listenMaddrs: ["/ip4/127.0.0.1/tcp/0"],
 *   bootstrapPeers: ["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…"],
 *   mdns: false,
 * };
 * ```
 */
export interface NodeOptions {
  /** The network the node joins (token contents). */
  network: NetworkConfig;
  /** The node key; otherwise the cached one (`privkeyCache`) or a new one. */
  identity?: Identity;
  /** Keep the key in `<privkeyCacheDir>/privkey` so the peer ID survives restarts. */
  privkeyCache?: boolean;
  /** Directory of the cached key; required when `privkeyCache` is true. */
  privkeyCacheDir?: string;
  /** Addresses to listen on; default `/ip4/0.0.0.0/tcp/0` and `/ip6/::/tcp/0`. */
  listenMaddrs?: readonly string[];
  /** Addresses announced instead of the listen addresses (Go `--dht-announce-maddrs`). */
  announceMaddrs?: readonly string[];
  /** Multiaddrs with `/p2p/<id>`; default the public libp2p bootstrap peers. */
  bootstrapPeers?: readonly string[];
  /** Make bootstrap peers GossipSub direct peers, as Go does; default false. */
  directBootstrapPeers?: boolean;
  /** DHT rendezvous discovery; default true. */
  dht?: boolean;
  dhtMode?: DhtMode;
  /** mDNS discovery on the LAN; default true (needs `Deno.listenDatagram`, `--unstable-net`). */
  mdns?: boolean;
  /** Longest wait between DHT rendezvous rounds; default 720 000 ms. */
  discoveryIntervalMs?: number;
  /** CIDRs, bare addresses and peer IDs to refuse. */
  blacklist?: readonly string[];
  /** Ranges libp2p must never use (the VPN's own subnet); can be changed later. */
  blockedCidrs?: readonly string[];
  /** See {@link NODE_DEFAULTS}.inboundTimeoutMs (10 000 ms). */
  inboundTimeoutMs?: number;
  /** Hub rotation tuning (see `HubOptions`). */
  hub?: { leadMs?: number; graceMs?: number };
  logger?: Logger;
  /** Keep libp2p's own `debug` loggers (the `DEBUG=libp2p*` environment variable); default off. */
  libp2pDebugLogs?: boolean;
  clock?: Clock;
  /** NAT traversal: relays, hole punching, AutoNAT, UPnP (library default: all off). */
  nat?: NatOptions;
}
