/**
 * The libp2p host as Go EdgeVPN configures it: TCP, Noise, Yamux, identify, ping, GossipSub,
 * Kademlia, and NAT traversal's circuit relay, AutoNAT, DCUtR and UPnP.
 */
import { noise } from "@chainsafe/libp2p-noise";
import { privateKeyFromProtobuf } from "@libp2p/crypto/keys";
import { type GossipSub, gossipsub, StrictSign } from "@libp2p/gossipsub";
import { identify } from "@libp2p/identify";
import {
  type ComponentLogger,
  type ConnectionGater,
  FaultTolerance,
  type Libp2p,
  type Logger as Libp2pLogger,
} from "@libp2p/interface";
import type { KadDHT } from "@libp2p/kad-dht";
import { peerIdFromString } from "@libp2p/peer-id";
import { ping } from "@libp2p/ping";
import { tcp } from "@libp2p/tcp";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p } from "libp2p";
import type { Identity } from "../crypto/identity.ts";
import { DEFAULT_MAX_MESSAGE_SIZE } from "../hub/hub.ts";
import { coalescingYamux } from "./muxer.ts";
import type { NatLibp2pParts } from "./nat.ts";
import { NODE_DEFAULTS, type NodeOptions } from "./options.ts";
import type { TrafficMeter } from "./traffic.ts";
import { withServices } from "./workarounds.ts";

/** The libp2p services of a node (the DHT only when enabled). */
export type Services = { identify: unknown; ping: unknown; pubsub: GossipSub; dht?: KadDHT };

/** What the host is built from. */
export interface HostComponents {
  identity: Identity;
  options: NodeOptions;
  gater: ConnectionGater;
  /** Counts the bytes of every stream (the host's `metrics` component). */
  traffic: TrafficMeter;
  /** The application part of each peer's GossipSub score (see `PeerStanding.score`). */
  score?: (peer: string) => number;
  /** NAT traversal's transports (TCP, maybe with a fixed dial port; circuit relay) and services. */
  nat?: NatLibp2pParts;
}

/**
 * Builds the libp2p host of a node, not started: listen and announce addresses, the
 * transports, the gossip and DHT settings Go EdgeVPN uses, our coalescing Yamux, the gater
 * and a silent libp2p logger (unless debug logs are asked for).
 *
 * @example
 * ```ts ignore
 * const libp2p = await createLibp2pHost({ identity, options, gater, traffic });
 * await libp2p.start();
 * ```
 */
export async function createLibp2pHost(
  { identity, options, gater, traffic, score, nat }: HostComponents,
): Promise<Libp2p<Services>> {
  const maxMessageSize = options.network.maxMessageSize > 0
    ? options.network.maxMessageSize
    : DEFAULT_MAX_MESSAGE_SIZE;
  // Go makes every bootstrap peer a GossipSub direct peer. Direct peers refuse each other's
  // GRAFTs, so a node that many peers bootstrap from ends with an empty mesh and relays their
  // messages only through heartbeat gossip (0.5–1 s late). Ours stay ordinary mesh peers unless
  // asked; a Go node that lists us still forwards everything to us as its direct peer.
  const bootstrapAsDirect = options.directBootstrapPeers ?? NODE_DEFAULTS.directBootstrapPeers;
  const directPeers = !bootstrapAsDirect
    ? []
    : (options.bootstrapPeers ?? NODE_DEFAULTS.bootstrapPeers).flatMap((text) => {
      try {
        const ma = multiaddr(text);
        const id = ma.getComponents().findLast((c) => c.name === "p2p")?.value;
        if (!id || id === identity.peerId) return [];
        return [{ id: peerIdFromString(id), addrs: [ma.decapsulate(`/p2p/${id}`)] }];
      } catch {
        return [];
      }
    });
  const dhtMode = options.dhtMode ?? NODE_DEFAULTS.dhtMode;
  // Kademlia is loaded only when enabled (`--dht=false` saves its 3 MB of RSS).
  const kad = (options.dht ?? NODE_DEFAULTS.dht) ? await import("@libp2p/kad-dht") : undefined;
  return withServices<Services>(
    await createLibp2p({
      start: false,
      privateKey: privateKeyFromProtobuf(identity.privateKeyProtobuf),
      addresses: {
        listen: [...(options.listenMaddrs ?? NODE_DEFAULTS.listenMaddrs)],
        announce: [...(options.announceMaddrs ?? [])],
      },
      transports: nat?.transports ?? [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [coalescingYamux()],
      transportManager: { faultTolerance: FaultTolerance.NO_FATAL },
      connectionGater: gater,
      nodeInfo: { userAgent: NODE_DEFAULTS.userAgent },
      metrics: traffic.libp2pMetrics(),
      ...(options.libp2pDebugLogs ? {} : { logger: silentComponentLogger }),
      services: {
        ...nat?.services,
        identify: identify(),
        ping: ping(),
        pubsub: gossipsub({
          globalSignaturePolicy: StrictSign,
          floodPublish: true,
          doPX: true,
          directPeers,
          allowPublishToZeroTopicPeers: true,
          maxInboundDataLength: maxMessageSize,
          runOnLimitedConnection: true,
          // The hub opens every message before it is relayed (see gossip.ts), and ranks peers.
          asyncValidation: true,
          // One RPC of a peer at a time, read only as fast as it is handled (workarounds.ts).
          awaitRpcHandler: true,
          awaitRpcMessageHandler: true,
          scoreParams: {
            appSpecificScore: (peer) => score?.(peer) ?? 0,
            appSpecificWeight: 1,
            // Members behind one NAT, or every test node on loopback, share an address; Go
            // EdgeVPN does not score peers at all.
            IPColocationFactorWeight: 0,
          },
        }),
        ...(kad
          ? {
            dht: kad.kadDHT({
              protocol: "/ipfs/kad/1.0.0",
              clientMode: dhtMode === "auto" ? undefined : dhtMode === "client",
              peerInfoMapper: kad.passthroughMapper,
            }),
          }
          : {}),
      },
    }),
  );
}

/**
 * A libp2p logger that writes nothing. libp2p's default creates a `debug` logger for every
 * stream and negotiation, and each creation checks whether stderr is a terminal (a syscall):
 * with a stream per packet (`/edgevpn/0.1`) that was 5 % of the CPU.
 */
const silentLibp2pLogger: Libp2pLogger = Object.assign(() => {}, {
  error: () => {},
  trace: () => {},
  enabled: false,
  newScope: () => silentLibp2pLogger,
});
const silentComponentLogger: ComponentLogger = { forComponent: () => silentLibp2pLogger };
