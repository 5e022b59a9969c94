/** The libp2p host of an EdgeVPN node: transports, gossip hub, discovery, member-only streams. */
import type { Connection, Libp2p, PeerId, Stream } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { type Multiaddr, multiaddr } from "@multiformats/multiaddr";
import type { CID } from "multiformats/cid";
import { generateIdentity, type Identity } from "../crypto/identity.ts";
import { type Clock, systemClock } from "../util/clock.ts";
import { TypedEventTarget } from "../util/events.ts";
import { createHub, DEFAULT_MAX_MESSAGE_SIZE, type Hub, type HubCounters } from "../hub/hub.ts";
import { EdgeVpnError, errorMessage } from "../util/errors.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { timeoutSignal } from "./abort.ts";
import { BootstrapDialer } from "./bootstrap.ts";
import { installDenoCompat } from "./deno_compat.ts";
import { createConnectionGater, GaterRules, type RefusalReason } from "./gater.ts";
import { GossipPubSub } from "./gossip.ts";
import { MdnsDiscovery } from "./mdns.ts";
import { MessageStreams } from "./message_streams.ts";
import { isRelayed, type NatCounters, natLibp2pParts, NatRuntime } from "./nat.ts";
import { openStream } from "./connect.ts";
import {
  flushMuxer,
  lazySelectHeader,
  muxerOfStream,
  sendOnce,
  type StreamOpener,
} from "./muxer.ts";
import { NODE_DEFAULTS, type NodeOptions } from "./options.ts";
import { skipRedundantProtocolMerges } from "./peer_store.ts";
import { PeerStanding } from "./peer_standing.ts";
import { type StaleLinkCounters, StaleLinks } from "./stale_links.ts";
import { loadOrCreateIdentity } from "./privkey.ts";
import { type FoundPeer, RendezvousDiscovery } from "./rendezvous.ts";
import { type NodeStream, wrapStream } from "./stream.ts";
import { TrafficMeter } from "./traffic.ts";
import { createLibp2pHost, type Services } from "./libp2p_config.ts";
import {
  boundInboundStreams,
  cancelAddressUpdate,
  clearHeartbeatOnStop,
  connectionMuxer,
  detachPeerExchangeDials,
  forgetCachedScore,
  liftOutboundRpcLimit,
  memberOnlyPeerExchange,
  openMuxer,
} from "./workarounds.ts";
import { concatBytes } from "../util/bytes.ts";

/** Where a peer was discovered. */
export type DiscoverySource = "bootstrap" | "dht" | "mdns";

/** Events of an {@link EdgeNode}. */
export interface NodeEvents {
  "peer:connect": { peerId: string };
  "peer:disconnect": { peerId: string };
  /** A peer found by discovery was dialled successfully. */
  "peer:discovery": { peerId: string; source: DiscoverySource };
  /** The subscribers of one of the hub's topics changed. */
  "topic:peers": { topic: string; peers: string[] };
  /**
   * A direct (not relayed) connection to the peer opened, e.g. hole punching succeeded:
   * streams on relayed connections to it should move.
   */
  "peer:direct": { peerId: string };
}

/**
 * Counters of refused input, for metrics and the API.
 *
 * @example
 * ```ts ignore
 * node.counters().streams.nonMember; // 0
 * ```
 */
export interface NodeCounters {
  hub: HubCounters;
  /**
   * Inbound streams served and outbound ones opened, inbound ones refused to non-members, and
   * how many inbound streams were message streams read straight off the connection.
   */
  streams: { inbound: number; outbound: number; nonMember: number; messages: number };
  refused: Record<RefusalReason, number>;
  /** Peers banned for sending gossip that failed to open while not members. */
  bans: number;
  /** Relay service, relay slots and AutoNAT limits (see `nat.ts`). */
  nat: NatCounters;
}

/** Decides whether a peer may use member-only protocols. */
export type MembershipPredicate = (peerId: string) => boolean;

/** Options of {@link EdgeNode.handle}. */
export interface HandleOptions {
  /**
   * Reset streams from peers that are not members (default true): `true` applies the node's
   * membership rule, a predicate replaces it for this protocol.
   */
  membersOnly?: boolean | MembershipPredicate;
  /** Concurrent inbound streams per connection (default 256). */
  maxInboundStreams?: number;
  /** Concurrent outbound streams per connection (default 256). */
  maxOutboundStreams?: number;
  /**
   * Streams of this protocol move to a direct connection by themselves (the VPN's): they do
   * not keep a relayed connection open after hole punching replaced it. Other streams do,
   * so a service or file transfer running over the relay is not cut at the switch.
   */
  movesToDirect?: boolean;
}

/** Options of {@link EdgeNode.handleMessages}. */
export interface HandleMessagesOptions extends HandleOptions {
  /** Longest message; longer streams are reset (default 65 575: an IPv6 header + 64 KiB). */
  maxBytes?: number;
}

/**
 * Gets the whole content of one inbound message stream; returning `false` resets the stream
 * (bad input). `message` is valid only during the call.
 */
export type MessageHandler = (peer: string, message: Uint8Array) => boolean | void;

/** Handles one inbound stream; the stream is reset if it throws. */
export type StreamHandler = (stream: NodeStream) => void | Promise<void>;

const DEFAULT_MAX_STREAMS = 256;
const DEFAULT_MAX_MESSAGE_BYTES = 40 + 0xffff;
/** How many peers {@link EdgeNode.knownPeers} remembers. */
const MAX_KNOWN_PEERS = 10_000;
/** How many peers the default membership remembers. */
const MAX_SEEN_MEMBERS = 4096;
/** How long `stop()` lets connections close gracefully. */
const CLOSE_TIMEOUT_MS = 500;
/** How long a non-member that kept sending gossip we could not open is refused. */
const BAN_MS = 10 * 60_000;
/** Unread gossip bytes held per peer before its stream is paused. */
const INBOUND_GOSSIP_BUFFER = 2 << 20;
/** The largest receive window yamux 8.0 grants a stream (its `MAX_STREAM_WINDOW`). */
const YAMUX_MAX_WINDOW = 16 << 20;
/** Bytes GossipSub adds around a hub envelope (topic, author, seqno, signature, framing). */
const RPC_HEADROOM = 1024;

/**
 * An EdgeVPN node: a libp2p host (TCP, Noise, Yamux, identify, ping, GossipSub, Kademlia)
 * with the sealed gossip hub, bootstrap/DHT/mDNS discovery, a connection gater and
 * member-only application protocols. The only part of the project that touches libp2p.
 *
 * @example
 * ```ts ignore
 * const node = await createNode({ network, listenMaddrs: ["/ip4/127.0.0.1/tcp/0"], mdns: false });
 * node.hub.addEventListener("message", (e) => console.log(e.detail.from));
 * await node.start();
 * await node.hub.publish(new TextEncoder().encode("hi"));
 * await node.stop();
 * ```
 */
export class EdgeNode extends TypedEventTarget<NodeEvents> {
  readonly identity: Identity;
  readonly hub: Hub;
  readonly #libp2p: Libp2p<Services>;
  readonly #options: NodeOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #rules: GaterRules;
  readonly #pubsub: GossipPubSub;
  readonly #bootstrap: BootstrapDialer;
  readonly #rendezvous: RendezvousDiscovery | undefined;
  readonly #mdns: MdnsDiscovery | undefined;
  readonly #streams = new Set<Stream>();
  /** Protocols whose streams move to a direct connection by themselves. */
  readonly #movesToDirect = new Set<string>();
  readonly #messages: MessageStreams;
  readonly #staleLinks: StaleLinks;
  readonly #seen = new Map<string, true>();
  readonly #known = new Set<string>();
  readonly #peerIds = new Map<string, PeerId>();
  readonly #counters: Omit<NodeCounters, "hub" | "nat">;
  readonly #traffic: TrafficMeter;
  readonly #standing: PeerStanding;
  readonly #nat: NatRuntime;
  /** Aborted by `stop()`: ends dials that discovery started. */
  readonly #lifetime = new AbortController();
  #membership: MembershipPredicate | undefined;
  #state: "new" | "starting" | "started" | "stopping" | "stopped" = "new";

  /** Use {@link createNode}. */
  constructor(
    identity: Identity,
    libp2p: Libp2p<Services>,
    rules: GaterRules,
    refused: Record<RefusalReason, number>,
    options: NodeOptions,
    traffic: TrafficMeter = new TrafficMeter(),
    score: { of(peer: string): number } = { of: () => 0 },
    dialPort?: number,
  ) {
    super();
    this.identity = identity;
    this.#traffic = traffic;
    this.#counters = {
      streams: { inbound: 0, outbound: 0, nonMember: 0, messages: 0 },
      refused,
      bans: 0,
    };
    this.#messages = new MessageStreams(
      this.#counters.streams,
      options.inboundTimeoutMs ?? NODE_DEFAULTS.inboundTimeoutMs,
      traffic,
    );
    this.#libp2p = libp2p;
    this.#rules = rules;
    this.#options = options;
    this.#log = (options.logger ?? silentLogger).child("node");
    this.#clock = options.clock ?? systemClock;
    this.#pubsub = new GossipPubSub(libp2p.services.pubsub);
    this.#staleLinks = new StaleLinks(libp2p, libp2p.services.pubsub, this.#log.child("links"));
    this.#nat = new NatRuntime(
      libp2p,
      options.nat ?? {},
      (peer) => this.isMember(peer),
      this.#log.child("nat"),
      dialPort,
      (stream) => this.#streams.has(stream) && !this.#movesToDirect.has(stream.protocol),
    );
    this.hub = createHub({
      pubsub: this.#pubsub,
      network: options.network,
      clock: this.#clock,
      logger: (options.logger ?? silentLogger).child("hub"),
      leadMs: options.hub?.leadMs,
      graceMs: options.hub?.graceMs,
      envelopeHeadroom: RPC_HEADROOM,
    });
    this.hub.addEventListener("message", (e) => this.#remember(e.detail.author ?? e.detail.from));
    const member = (peer: string) => this.isMember(peer) || this.#seen.has(peer);
    this.#standing = new PeerStanding({ isMember: member });
    score.of = (peer) => this.#standing.score(peer);
    memberOnlyPeerExchange(libp2p.services.pubsub, member);
    this.hub.addEventListener("rejected", (e) => {
      const { peer, author, reason } = e.detail;
      // A Go member relays without opening: what it forwards from others is not its doing.
      if (author !== undefined && author !== peer && member(peer)) return;
      // Bytes that are not even an envelope: no node sends them. A seal that does not open may
      // be a clock far off, so it takes three.
      this.#penalise(peer, reason === "badSeal" ? 1 : 3);
    });
    const bootstrapPeers = (options.bootstrapPeers ?? NODE_DEFAULTS.bootstrapPeers)
      .filter((m) => !m.endsWith(`/p2p/${identity.peerId}`));
    this.#bootstrap = new BootstrapDialer(bootstrapPeers, {
      dial: async (maddr, signal, transportOpen) => {
        await this.#libp2p.dial(multiaddr(maddr), {
          signal,
          // The upgrader's first event comes once the TCP connection is open.
          onProgress: (e: { type: string }) => {
            if (e.type.startsWith("upgrader:")) transportOpen?.();
          },
        });
        const peerId = maddr.match(/\/p2p\/([^/]+)$/)?.[1];
        if (peerId) this.dispatch("peer:discovery", { peerId, source: "bootstrap" });
      },
      isConnected: (id) => this.#isConnected(id),
      clock: this.#clock,
      logger: this.#log.child("bootstrap"),
    });
    const dht = libp2p.services.dht;
    if (dht && (options.dht ?? NODE_DEFAULTS.dht)) {
      this.#rendezvous = new RendezvousDiscovery(
        options.network,
        options.discoveryIntervalMs ?? NODE_DEFAULTS.discoveryIntervalMs,
        {
          selfId: identity.peerId,
          provide: async (cid, signal) => {
            await this.#libp2p.contentRouting.provide(cid, { signal });
          },
          findProviders: (cid, signal) => this.#findProviders(cid, signal),
          isConnected: (id) => this.#isConnected(id),
          dial: (peer, signal) => this.#dialFound(peer, signal),
          beforeRound: () => this.#bootstrap.dialAll(),
          onPeer: (peer) => this.dispatch("peer:discovery", { peerId: peer.id, source: "dht" }),
          clock: this.#clock,
          logger: this.#log.child("dht"),
        },
      );
    }
    if (options.mdns ?? NODE_DEFAULTS.mdns) {
      this.#mdns = new MdnsDiscovery({
        serviceName: options.network.mdns,
        peerId: identity.peerId,
        addresses: () => this.#lanAddresses(),
        onPeer: (peer) => {
          if (this.#isConnected(peer.id)) return;
          const t = timeoutSignal(NODE_DEFAULTS.dialTimeoutMs, this.#lifetime.signal);
          this.#dialFound(peer, t.signal).then(
            () => this.dispatch("peer:discovery", { peerId: peer.id, source: "mdns" }),
            (e) =>
              this.#log.debug("cannot dial mDNS peer", { peer: peer.id, error: errorMessage(e) }),
          ).finally(t.clear);
        },
        clock: this.#clock,
        logger: this.#log.child("mdns"),
      });
    }
  }

  /** This node's peer ID (`12D3KooW…`). */
  get peerId(): string {
    return this.identity.peerId;
  }

  /** Starts listening, joins the hub and starts discovery; dials happen in the background. */
  async start(): Promise<void> {
    if (this.#state !== "new") {
      throw new EdgeVpnError("NODE_STATE", `Cannot start a node that is ${this.#state}`);
    }
    this.#state = "starting";
    const l = this.#libp2p;
    l.addEventListener("peer:connect", this.#onConnect);
    l.addEventListener("peer:disconnect", this.#onDisconnect);
    l.addEventListener("connection:open", this.#onConnectionOpen);
    l.services.pubsub.addEventListener("subscription-change", this.#onSubscriptionChange);
    this.#staleLinks.attach();
    await l.start();
    const requested = this.#options.listenMaddrs ?? NODE_DEFAULTS.listenMaddrs;
    if (requested.length > 0 && l.getMultiaddrs().length === 0) {
      await l.stop();
      this.#state = "stopped";
      throw new EdgeVpnError(
        "LISTEN_FAILED",
        `Cannot listen on any of ${requested.join(", ")}: addresses unavailable or in use`,
      );
    }
    await this.#nat.start();
    this.#pubsub.start();
    await this.hub.start();
    this.#bootstrap.start();
    this.#rendezvous?.start();
    if (this.#mdns) {
      try {
        await this.#mdns.start();
      } catch (e) {
        this.#log.warn("mDNS discovery disabled", { error: errorMessage(e) });
      }
    }
    this.#state = "started";
    this.#log.info("node started", { peerId: this.peerId, addrs: this.multiaddrs() });
  }

  /**
   * Stops discovery, the hub, every stream and connection, and the libp2p host; releases
   * every timer and socket this node opened.
   */
  async stop(): Promise<void> {
    if (this.#state === "stopped" || this.#state === "new") {
      this.#state = "stopped";
      return;
    }
    this.#state = "stopping";
    this.#lifetime.abort();
    await this.#nat.stop();
    await Promise.allSettled([
      this.#mdns?.stop(),
      this.#rendezvous?.stop(),
      this.#bootstrap.stop(),
    ]);
    await this.hub.stop();
    this.#pubsub.stop();
    const l = this.#libp2p;
    l.services.pubsub.removeEventListener("subscription-change", this.#onSubscriptionChange);
    for (const s of this.#streams) s.abort(new Error("node stopping"));
    this.#streams.clear();
    this.#messages.stop();
    this.#staleLinks.stop();
    // Close connections here with a timer we clear: libp2p's own close uses
    // AbortSignal.timeout(), which keeps a Deno process alive until it fires.
    const t = timeoutSignal(CLOSE_TIMEOUT_MS);
    await Promise.all(
      l.getConnections().map((c) => c.close({ signal: t.signal }).catch((e) => c.abort(e))),
    );
    t.clear();
    await l.stop();
    l.removeEventListener("peer:connect", this.#onConnect);
    l.removeEventListener("peer:disconnect", this.#onDisconnect);
    l.removeEventListener("connection:open", this.#onConnectionOpen);
    cancelAddressUpdate(l);
    this.#state = "stopped";
    this.#log.info("node stopped");
  }

  /** Addresses this node listens on, each with `/p2p/<peerId>`. */
  multiaddrs(): string[] {
    return this.#libp2p.getMultiaddrs().map((m) => m.toString());
  }

  /** Peers this node has met since it started (connected now or before): Go's peerstore. */
  knownPeers(): string[] {
    return [...this.#known];
  }

  /** Peers with an open connection. */
  connectedPeers(): string[] {
    return this.#libp2p.getPeers().map((p) => p.toString());
  }

  /** Peers known to be subscribed to `topic` (e.g. a second hub's, such as the trust zone's). */
  subscribers(topic: string): string[] {
    return this.#pubsub.subscribers(topic);
  }

  /** Peers subscribed to the hub's current topic. */
  topicPeers(): string[] {
    const topic = this.hub.topic;
    return topic ? this.#pubsub.subscribers(topic) : [];
  }

  /** Connects to a multiaddr (with `/p2p/`) or to a known peer ID. */
  async dial(target: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    this.#assertStarted("dial");
    const t = timeoutSignal(NODE_DEFAULTS.dialTimeoutMs, options.signal);
    try {
      await this.#libp2p.dial(
        target.startsWith("/") ? multiaddr(target) : peerIdFromString(target),
        { signal: t.signal },
      );
    } finally {
      t.clear();
    }
  }

  /**
   * Serves `protocol`. With `membersOnly` (the default) streams from peers the membership
   * predicate rejects are reset and counted as `streams.nonMember`.
   */
  async handle(
    protocol: string,
    handler: StreamHandler,
    options: HandleOptions = {},
  ): Promise<void> {
    const admits = this.#admission(options.membersOnly);
    if (options.movesToDirect) this.#movesToDirect.add(protocol);
    else this.#movesToDirect.delete(protocol);
    await this.#libp2p.handle(protocol, async (stream, connection) => {
      const peer = connection.remotePeer.toString();
      if (!admits(peer)) {
        this.#counters.streams.nonMember++;
        this.#log.debug("reset stream from non-member", { peer, protocol });
        stream.abort(new EdgeVpnError("NOT_A_MEMBER", `Peer ${peer} is not a network member`));
        return;
      }
      this.#counters.streams.inbound++;
      const wrapped = this.#track(stream, peer, isRelayed(connection));
      try {
        await handler(wrapped);
      } catch (e) {
        this.#log.debug("stream handler failed", { peer, protocol, error: errorMessage(e) });
        wrapped.reset();
      }
    }, {
      runOnLimitedConnection: this.#nat.limitedConnections,
      maxInboundStreams: options.maxInboundStreams ?? DEFAULT_MAX_STREAMS,
      maxOutboundStreams: options.maxOutboundStreams ?? DEFAULT_MAX_STREAMS,
    });
  }

  /**
   * Serves `protocol` whose streams each carry one message from the dialer and nothing back
   * (Go EdgeVPN's `/edgevpn/0.1`: one IP packet per stream). `handler` gets the message once
   * the dialer ends the stream. On our yamux connections such streams are read at the frame
   * level, without stream objects or libp2p's per-stream negotiation machinery (see
   * `message_streams.ts`); elsewhere they take the normal path. Membership as {@link handle}.
   */
  async handleMessages(
    protocol: string,
    handler: MessageHandler,
    options: HandleMessagesOptions = {},
  ): Promise<void> {
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    const admits = this.#admission(options.membersOnly);
    await this.handle(protocol, async (stream) => {
      const chunks: Uint8Array[] = [];
      let bytes = 0;
      for await (const chunk of stream) {
        bytes += chunk.length;
        if (bytes > maxBytes) return stream.reset();
        chunks.push(chunk);
      }
      const message = chunks.length === 1 ? chunks[0] : concatBytes(chunks, bytes);
      if (handler(stream.remotePeer, message) === false) return stream.reset();
      await stream.close();
    }, { ...options, membersOnly: admits });
    this.#messages.route({
      protocol,
      header: lazySelectHeader(protocol),
      admits,
      deliver: handler,
      maxBytes,
    });
  }

  /** Stops serving `protocol`. */
  async unhandle(protocol: string): Promise<void> {
    this.#messages.unroute(protocol);
    this.#movesToDirect.delete(protocol);
    await this.#libp2p.unhandle(protocol);
  }

  /**
   * Opens a stream to `peerId` on its best connection: a direct one, else (unless
   * `--transient-conn=false`) a relayed one, dialling through member relays when the peer
   * cannot be reached otherwise (see `connect.ts`). With a list, the first of
   * `protocols` the peer supports is chosen in one multistream-select exchange; the stream's
   * `protocol` tells which.
   *
   * @throws {EdgeVpnError} `PROTOCOL_UNSUPPORTED` when the peer supports none of them.
   */
  async dialProtocol(
    peerId: string,
    protocols: string | readonly string[],
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<NodeStream> {
    this.#assertStarted("open a stream");
    const t = timeoutSignal(options.timeoutMs ?? NODE_DEFAULTS.dialTimeoutMs, options.signal);
    try {
      const { stream, connection } = await openStream(
        this.#libp2p,
        peerIdFromString(peerId),
        typeof protocols === "string" ? [protocols] : [...protocols],
        {
          signal: t.signal,
          allowLimited: this.#nat.limitedConnections,
          isMember: (peer) => this.isMember(peer),
        },
      );
      this.#counters.streams.outbound++;
      return this.#track(stream, peerId, isRelayed(connection));
    } catch (e) {
      if ((e as Error)?.name === "UnsupportedProtocolError") {
        throw new EdgeVpnError(
          "PROTOCOL_UNSUPPORTED",
          `Peer ${peerId} supports none of ${[protocols].flat().join(", ")}`,
          { cause: e },
        );
      }
      throw e;
    } finally {
      t.clear();
    }
  }

  /**
   * Sends `data` on a new stream to `peerId` and closes it, without waiting for the peer to
   * confirm the protocol: the multistream-select lines, the data and the FIN leave together
   * (go-libp2p's "lazy" negotiation, which libp2p 3.3 does not implement). For one-shot
   * protocols the peer is known to speak (Go EdgeVPN's `/edgevpn/0.1`); if it does not, the
   * peer resets the stream and the data is lost. On a direct connection the frames are
   * written without a stream object ({@link sendOneShot}) and the promise resolves at once; it
   * rejects with `CONNECTION_SATURATED`, sending nothing, while the connection is not draining.
   * On other muxers it resolves once the stream is finished in both directions (rejecting if
   * `signal` aborts first); without an open direct connection it takes the normal path (dial,
   * negotiate). `data` is copied at once.
   */
  async sendOnce(
    peerId: string,
    protocol: string,
    data: Uint8Array,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<void> {
    this.#assertStarted("open a stream");
    const muxer = this.#directMuxer(peerId);
    if (muxer === undefined) {
      // Copied before the first await: the caller may reuse `data` as soon as this returns.
      const copy = data.slice();
      const s = await this.dialProtocol(peerId, protocol, options);
      await s.write(copy);
      await s.close();
      return s.closed;
    }
    await sendOnce(muxer, protocol, data, {
      signal: options.signal,
      sent: () => {
        this.#counters.streams.outbound++;
        this.#traffic.record(peerId, protocol, "out", data.length);
      },
      track: (stream, open) => open ? this.#streams.add(stream) : this.#streams.delete(stream),
      peer: peerId,
    });
  }

  /**
   * Sends now what {@link sendOnce} calls made during this task left pending on the direct
   * connection to `peerId` (they are otherwise sent together at the end of the task).
   */
  flushSends(peerId: string): void {
    const muxer = this.#directMuxer(peerId);
    if (muxer !== undefined) flushMuxer(muxer);
  }

  // The stream muxer of an open, direct (not relayed) connection to `peerId`.
  #directMuxer(peerId: string): StreamOpener | undefined {
    const id = this.#peerIdOf(peerId);
    if (id === undefined) return undefined;
    const connections = this.#libp2p.getConnections(id);
    for (const c of connections) {
      if (c.status !== "open" || c.limits !== undefined) continue;
      const muxer = openMuxer(c);
      if (muxer !== undefined) return muxer;
    }
    return undefined;
  }

  /**
   * Replaces the membership rule (the ledger's `users`/`machines` rules); `undefined`
   * restores the interim default: a peer is a member once it has sent a message that opened
   * with the network's seal key.
   */
  setMembership(predicate: MembershipPredicate | undefined): void {
    this.#membership = predicate;
  }

  /** Whether `peerId` may use member-only protocols. */
  isMember(peerId: string): boolean {
    return this.#membership ? this.#membership(peerId) : this.#seen.has(peerId);
  }

  /**
   * Ranges libp2p must never dial or accept (the VPN's own subnet). Existing connections to
   * addresses in them are closed.
   *
   * @throws {InputError} `CIDR_INVALID` on a bad entry.
   */
  setBlockedCidrs(cidrs: readonly string[]): void {
    this.#rules.setBlockedCidrs(cidrs);
    for (const c of this.#libp2p.getConnections()) {
      const ip = c.remoteAddr.getComponents().find((x) => x.name === "ip4" || x.name === "ip6");
      if (ip?.value && this.#rules.addressRefusal(ip.value) === "blockedAddress") {
        c.close().catch((e) => c.abort(e));
      }
    }
  }

  /** What was done about connections a newer one to the same peer replaced. */
  get staleLinks(): StaleLinkCounters {
    return { ...this.#staleLinks.counters };
  }

  /** Bytes moved per peer and per protocol, and in total (Go's bandwidth counter). */
  get traffic(): TrafficMeter {
    return this.#traffic;
  }

  /**
   * A second sealed room on the same gossip router: the PeerGuard "public" topic (Go's generic
   * hub). The caller starts and stops it.
   */
  createPublicHub(): Hub {
    return createHub({
      pubsub: this.#pubsub,
      network: this.#options.network,
      clock: this.#clock,
      logger: this.#log.child("public-hub"),
      room: "public",
    });
  }

  /** NAT traversal: relay service, relay slots, per-peer relay counters. */
  get nat(): NatRuntime {
    return this.#nat;
  }

  /** The open connections: peer, transport (`tcp`, …), direction, relayed or not. */
  connections(): {
    peer: string;
    transport: string;
    direction: string;
    relayed: boolean;
    limited: boolean;
  }[] {
    return this.#libp2p.getConnections().map((c) => {
      const names = c.remoteAddr.getComponents().map((x) => x.name);
      const relayed = names.includes("p2p-circuit");
      const transport = relayed
        ? "relay"
        : names.find((n) => ["tcp", "udp", "ws", "wss", "quic-v1", "webrtc"].includes(n)) ??
          "other";
      return {
        peer: c.remotePeer.toString(),
        transport,
        direction: c.direction,
        relayed,
        limited: c.limits !== undefined,
      };
    });
  }

  /** A snapshot of the counters. */
  counters(): NodeCounters {
    return {
      hub: this.hub.counters,
      streams: { ...this.#counters.streams },
      refused: { ...this.#counters.refused },
      bans: this.#counters.bans,
      nat: this.#nat.counters(),
    };
  }

  /**
   * A peer delivered gossip that failed to open: GossipSub ranks it lower at once, and a
   * non-member that keeps at it is disconnected and refused for a while.
   */
  #penalise(peer: string, points: number): void {
    const gossip = this.#libp2p.services.pubsub;
    const outcome = this.#standing.penalise(peer, points);
    forgetCachedScore(gossip, peer);
    if (outcome !== "ban" || this.#state !== "started") return;
    this.#rules.ban(peer, Date.now() + BAN_MS);
    this.#counters.bans++;
    this.#log.info("banned a peer that is not a member for junk on the gossip topic", {
      peer,
      minutes: BAN_MS / 60_000,
    });
    const id = this.#peerIdOf(peer);
    // Aborted, not closed: a graceful close waits on streams the peer keeps filling.
    const reason = new EdgeVpnError("PEER_BANNED", `Peer ${peer} is banned`);
    // After the router's current call returns (this may run inside its validator).
    queueMicrotask(() => {
      for (const c of id ? this.#libp2p.getConnections(id) : []) c.abort(reason);
    });
  }

  #admission(membersOnly: HandleOptions["membersOnly"] = true): MembershipPredicate {
    if (typeof membersOnly === "function") return membersOnly;
    return membersOnly ? (peer: string) => this.isMember(peer) : () => true;
  }

  #onConnectionOpen = (e: CustomEvent<Connection>): void => {
    const muxer = connectionMuxer(e.detail);
    if (muxer) this.#traffic.connectionOpened(muxer, e.detail.remotePeer.toString());
    this.#messages.attach(e.detail);
    if (!isRelayed(e.detail)) {
      this.dispatch("peer:direct", { peerId: e.detail.remotePeer.toString() });
    }
  };

  #track(stream: Stream, peer: string, relayed = false): NodeStream {
    const muxer = muxerOfStream(stream);
    this.#streams.add(stream);
    return wrapStream(
      stream,
      peer,
      () => this.#streams.delete(stream),
      muxer === undefined ? undefined : () => flushMuxer(muxer),
      relayed,
    );
  }

  #remember(peerId: string): void {
    this.#seen.delete(peerId);
    this.#seen.set(peerId, true);
    if (this.#seen.size > MAX_SEEN_MEMBERS) this.#seen.delete(this.#seen.keys().next().value!);
  }

  // Parsed peer IDs are kept: parsing and printing one costs base58 work on every packet.
  #peerIdOf(peerId: string): PeerId | undefined {
    let id = this.#peerIds.get(peerId);
    if (id === undefined) {
      try {
        id = peerIdFromString(peerId);
      } catch {
        return undefined;
      }
      if (this.#peerIds.size >= MAX_KNOWN_PEERS) this.#peerIds.clear();
      this.#peerIds.set(peerId, id);
    }
    return id;
  }

  #isConnected(peerId: string): boolean {
    try {
      return this.#libp2p.getConnections(peerIdFromString(peerId)).length > 0;
    } catch {
      return false;
    }
  }

  async #dialFound(peer: FoundPeer, signal: AbortSignal): Promise<void> {
    const id = peerIdFromString(peer.id);
    const addrs: Multiaddr[] = [];
    for (const text of peer.addrs) {
      try {
        const ma = multiaddr(text);
        const p2p = ma.getComponents().findLast((c) => c.name === "p2p")?.value;
        if (p2p && p2p !== peer.id) continue;
        addrs.push(p2p ? ma.decapsulate(`/p2p/${p2p}`) : ma);
      } catch {
        continue;
      }
    }
    if (addrs.length === 0) throw new Error(`no usable address for ${peer.id}`);
    await this.#libp2p.peerStore.merge(id, { multiaddrs: addrs });
    await this.#libp2p.dial(id, { signal });
  }

  async *#findProviders(cid: CID, signal: AbortSignal): AsyncIterable<FoundPeer> {
    for await (const info of this.#libp2p.contentRouting.findProviders(cid, { signal })) {
      yield { id: info.id.toString(), addrs: info.multiaddrs.map((m) => m.toString()) };
    }
  }

  /** Listen addresses worth announcing on the LAN: IP + TCP, not loopback, not blocked. */
  #lanAddresses(): string[] {
    return this.multiaddrs().filter((a) => {
      const m = a.match(/^\/(ip4|ip6)\/([^/]+)\/tcp\/\d+\/p2p\/[^/]+$/);
      if (!m) return false;
      if (m[2].startsWith("127.") || m[2] === "::1") return false;
      return this.#rules.addressRefusal(m[2]) === undefined;
    });
  }

  #assertStarted(what: string): void {
    if (this.#state !== "started") {
      throw new EdgeVpnError("NODE_NOT_STARTED", `Cannot ${what}: the node is ${this.#state}`);
    }
  }

  #onConnect = (e: CustomEvent<PeerId>) => {
    const peerId = e.detail.toString();
    if (this.#known.size < MAX_KNOWN_PEERS) this.#known.add(peerId);
    this.#log.debug("peer connected", { peer: peerId });
    this.dispatch("peer:connect", { peerId });
  };

  #onDisconnect = (e: CustomEvent<PeerId>) => {
    const peerId = e.detail.toString();
    this.dispatch("peer:disconnect", { peerId });
    this.#bootstrap.peerDisconnected(peerId);
  };

  #onSubscriptionChange = (
    e: CustomEvent<{ subscriptions: { topic: string }[] }>,
  ) => {
    const ours = new Set(this.hub.topics);
    for (const { topic } of e.detail.subscriptions) {
      if (ours.has(topic)) {
        this.dispatch("topic:peers", { topic, peers: this.#pubsub.subscribers(topic) });
      }
    }
  };
}

/**
 * Builds a node (not started): resolves the identity (given, cached, or new) and configures
 * libp2p as Go EdgeVPN does.
 *
 * @throws {EdgeVpnError} `PRIVKEY_CACHE_DIR_MISSING`, `KEY_INVALID`, `PRIVKEY_CACHE_FAILED`;
 * {@link InputError} `CIDR_INVALID` for a bad blacklist or blocked range.
 * @example
 * ```ts ignore
 * const node = await createNode({ network, bootstrapPeers: [], mdns: false });
 * await node.start();
 * await node.stop();
 * ```
 */
export async function createNode(options: NodeOptions): Promise<EdgeNode> {
  installDenoCompat();
  const identity = options.identity ?? await cachedOrNewIdentity(options);
  const gaterLog = (options.logger ?? silentLogger).child("node.gater");
  const rules = new GaterRules(options.blacklist ?? []);
  rules.setBlockedCidrs(options.blockedCidrs ?? []);
  const refused: Record<RefusalReason, number> = {
    blacklistedPeer: 0,
    blacklistedAddress: 0,
    blockedAddress: 0,
    bannedPeer: 0,
  };
  const traffic = new TrafficMeter();
  const score = { of: (_peer: string) => 0 };
  const nat = natLibp2pParts(
    options.nat ?? {},
    options.listenMaddrs ?? NODE_DEFAULTS.listenMaddrs,
  );
  const libp2p = await createLibp2pHost({
    identity,
    options,
    gater: createConnectionGater(rules, (reason, subject) => {
      refused[reason]++;
      gaterLog.debug("refused", { reason, subject });
    }),
    traffic,
    score: (peer) => score.of(peer),
    nat,
  });
  clearHeartbeatOnStop(libp2p.services.pubsub);
  const maxMessageSize = options.network.maxMessageSize > 0
    ? options.network.maxMessageSize
    : DEFAULT_MAX_MESSAGE_SIZE;
  liftOutboundRpcLimit(libp2p.services.pubsub, maxMessageSize);
  boundInboundStreams(libp2p.services.pubsub, INBOUND_GOSSIP_BUFFER, YAMUX_MAX_WINDOW);
  detachPeerExchangeDials(libp2p.services.pubsub);
  skipRedundantProtocolMerges(libp2p);
  return new EdgeNode(identity, libp2p, rules, refused, options, traffic, score, nat.dialPort);
}

async function cachedOrNewIdentity(options: NodeOptions): Promise<Identity> {
  if (!(options.privkeyCache ?? NODE_DEFAULTS.privkeyCache)) return await generateIdentity();
  if (!options.privkeyCacheDir) {
    throw new EdgeVpnError(
      "PRIVKEY_CACHE_DIR_MISSING",
      "Cannot cache the node key: privkeyCache is set but privkeyCacheDir is empty",
    );
  }
  return await loadOrCreateIdentity(options.privkeyCacheDir);
}
