/**
 * Every reach into the internals of our libp2p dependencies, in one place, written for:
 *
 * - `libp2p` 3.3.11 and `@libp2p/interface` 3.3.0 (connection muxers, the address manager)
 * - `@libp2p/utils` 7.4.1 (`AbstractStreamMuxer`, `AbstractMessageStream`)
 * - `@chainsafe/libp2p-yamux` 8.0.1 (stream creation, window updates, frame handling)
 * - `@libp2p/tcp` 11.0.28 (socket writes)
 * - `@libp2p/gossipsub` 17.1.1 (the heartbeat timer, RPC sizes, peer exchange, reads, scores,
 *   per-peer outbound streams)
 * - `libp2p` 3.3.11 components (address manager, registrar, connection manager) and
 *   `@libp2p/dcutr` 3.0.28 (its connection manager) for NAT traversal
 *
 * Each function checks the shape it expects and does nothing (or returns undefined) when it is
 * not there, so an upgrade falls back to stock behaviour instead of breaking; after upgrading
 * one of these packages, re-read the functions that name it. The architecture test keeps every
 * `as unknown as` of `lib/` in this file.
 */
import type { GossipSub } from "@libp2p/gossipsub";
import type { Connection, Libp2p, Metrics, PeerId, Stream, StreamMuxer } from "@libp2p/interface";
import { peerIdFromMultihash } from "@libp2p/peer-id";
import { decode as decodeMultihash } from "multiformats/hashes/digest";
import type { Multiaddr } from "@multiformats/multiaddr";
import type { ByteChunk } from "../util/bytes.ts";
import { EdgeVpnError } from "../util/errors.ts";
import { traceMark, tracing } from "../util/trace.ts";

// ---- libp2p 3.3.11 ----------------------------------------------------------------------

/**
 * The stream muxer of a connection (`connection.muxer`, not part of the `Connection` type).
 *
 * @example
 * ```ts ignore
 * const muxer = connectionMuxer(connection); // a yamux muxer, or undefined
 * ```
 */
export function connectionMuxer(connection: Connection): object | undefined {
  const muxer = (connection as unknown as { muxer?: unknown }).muxer;
  return typeof muxer === "object" && muxer !== null ? muxer : undefined;
}

/**
 * The muxer of `connection` when it is open and can open streams: what a stream opened without
 * libp2p's dial path (no negotiation round trip) is created on.
 *
 * @example
 * ```ts ignore
 * const stream = await openMuxer(connection)?.createStream({});
 * ```
 */
export function openMuxer(
  connection: Connection,
): { createStream(options: object): Promise<Stream> } | undefined {
  const muxer = connectionMuxer(connection) as
    | { createStream?: unknown; status?: string }
    | undefined;
  if (muxer?.status !== "open" || typeof muxer.createStream !== "function") return undefined;
  return muxer as { createStream(options: object): Promise<Stream> };
}

/**
 * `createLibp2p`'s result with its services typed: the options' service map (with the DHT
 * only when enabled) does not infer to one type.
 *
 * @example
 * ```ts ignore
 * const node = withServices<{ pubsub: GossipSub }>(await createLibp2p(options));
 * ```
 */
export function withServices<S extends Record<string, unknown>>(libp2p: unknown): Libp2p<S> {
  return libp2p as Libp2p<S>;
}

/**
 * libp2p's address manager re-arms a 1 s debounced peer-store update when its listeners
 * close during `stop()` and never clears it: a late write to a stopped store that also keeps
 * the process alive for that second. Cancels it if the internals are where we expect them.
 *
 * @example
 * ```ts ignore
 * await libp2p.stop();
 * cancelAddressUpdate(libp2p);
 * ```
 */
export function cancelAddressUpdate(libp2p: unknown): void {
  const update = (libp2p as {
    components?: { addressManager?: { _updatePeerStoreAddresses?: { stop?: () => void } } };
  }).components?.addressManager?._updatePeerStoreAddresses;
  update?.stop?.();
}

/**
 * A `metrics` component from an object implementing the few members libp2p calls on ours
 * (`trackProtocolStream`, the registrations): the `Metrics` type asks for more.
 *
 * @example
 * ```ts ignore
 * const metrics = asMetrics({ trackProtocolStream(stream) {}, registerMetric: () => ignored });
 * ```
 */
export function asMetrics(partial: object): Metrics {
  return partial as unknown as Metrics;
}

// ---- libp2p 3.3.11 components: NAT traversal ---------------------------------------------

/** The address manager's calls for addresses we learn ourselves (relay reservations). */
export interface AddressBook {
  confirmObservedAddr(
    ma: Multiaddr,
    options?: { type?: "transport" | "observed"; ttl?: number },
  ): void;
  removeObservedAddr(ma: Multiaddr): void;
}

/**
 * The components object every libp2p node (and every service and transport factory) is given
 * (not exported by libp2p's types).
 *
 * @example
 * ```ts ignore
 * const registrar = componentsOf(libp2p)?.registrar;
 * ```
 */
export function componentsOf(libp2p: unknown): Record<string, unknown> | undefined {
  const c = (libp2p as { components?: unknown } | undefined)?.components;
  return c !== null && typeof c === "object" ? c as Record<string, unknown> : undefined;
}

/**
 * The node's address manager, where addresses other than listen addresses are announced
 * (what identify and the DHT tell peers), or undefined if libp2p changed shape.
 *
 * @example
 * ```ts ignore
 * addressBookOf(libp2p)?.confirmObservedAddr(relayAddr, { type: "transport" });
 * ```
 */
export function addressBookOf(libp2p: unknown): AddressBook | undefined {
  const am = componentsOf(libp2p)?.addressManager as Partial<AddressBook> | undefined;
  if (
    typeof am?.confirmObservedAddr !== "function" || typeof am.removeObservedAddr !== "function"
  ) return undefined;
  return am as AddressBook;
}

/** A protocol handler as the registrar keeps it. */
export type RegistrarHandler = (stream: Stream, connection: Connection) => void | Promise<void>;

/** The registrar calls that re-register a protocol's handler. */
export interface RegistrarInternals {
  getHandler(protocol: string): { handler: RegistrarHandler; options: Record<string, unknown> };
  unhandle(protocol: string): Promise<void>;
  handle(
    protocol: string,
    handler: RegistrarHandler,
    options: Record<string, unknown>,
  ): Promise<void>;
}

/**
 * The node's registrar with the calls that wrap a service's handler (libp2p 3.3's `use()`
 * middleware runs a handler once per earlier stream, so handlers are wrapped instead).
 *
 * @example
 * ```ts ignore
 * const { handler, options } = registrarOf(libp2p)!.getHandler("/libp2p/autonat/1.0.0");
 * ```
 */
export function registrarOf(libp2p: unknown): RegistrarInternals | undefined {
  const r = componentsOf(libp2p)?.registrar as Partial<RegistrarInternals> | undefined;
  if (
    typeof r?.getHandler !== "function" || typeof r.unhandle !== "function" ||
    typeof r.handle !== "function"
  ) return undefined;
  return r as RegistrarInternals;
}

/** A transport's `dial` with the options libp2p's dial queue passes it. */
export type TransportDial<O> = (ma: Multiaddr, options: O) => Promise<Connection>;

/**
 * Replaces `transport.dial` with `wrap(original)`: libp2p's `Transport` type hides the dial
 * options `@libp2p/tcp` 11.0.28 reads (`localPort`) and those the dial queue passes
 * (`priority`, `upgrader`).
 *
 * @example
 * ```ts ignore
 * wrapTransportDial(transport, (dial) => (ma, o) => dial(ma, { ...o, localPort: 40000 }));
 * ```
 */
export function wrapTransportDial<O>(
  transport: object,
  wrap: (dial: TransportDial<O>) => TransportDial<O>,
): void {
  const t = transport as unknown as { dial: TransportDial<O> };
  t.dial = wrap(t.dial.bind(transport));
}

/**
 * The connection manager among a transport factory's components, or undefined.
 *
 * @example
 * ```ts ignore
 * connectionManagerOf(components)?.getConnections();
 * ```
 */
export function connectionManagerOf(
  components: unknown,
): { getConnections(peer?: PeerId): Connection[] } | undefined {
  const m = (components as { connectionManager?: { getConnections?: unknown } } | undefined)
    ?.connectionManager;
  return typeof m?.getConnections === "function"
    ? m as { getConnections(peer?: PeerId): Connection[] }
    : undefined;
}

/**
 * Puts `adjust` in front of a service's `connectionManager.openConnection` (e.g. DCUtR 3.0.28's
 * dials). Returns false when the service does not have the expected shape.
 *
 * @example
 * ```ts ignore
 * adjustServiceDials(libp2p.services.dcutr, (o) => ({ ...o, priority: 49 }));
 * ```
 */
export function adjustServiceDials(
  service: unknown,
  adjust: (options: { force?: boolean; priority?: number }) => object,
): boolean {
  const s = service as { connectionManager?: { openConnection?: unknown } } | undefined;
  const manager = s?.connectionManager;
  if (manager === undefined || typeof manager.openConnection !== "function") return false;
  s!.connectionManager = new Proxy(manager, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (key !== "openConnection") {
        return typeof value === "function" ? value.bind(target) : value;
      }
      return (peer: unknown, options: { force?: boolean; priority?: number } = {}) =>
        (value as (p: unknown, o: unknown) => Promise<Connection>).call(
          target,
          peer,
          adjust(options),
        );
    },
  });
  return true;
}

/**
 * The addresses the node's transports listen on (wildcards expanded to the interfaces'
 * addresses), verified or not, or undefined if libp2p changed shape.
 *
 * @example
 * ```ts ignore
 * transportAddrsOf(libp2p); // [/ip6/::1/tcp/4001, /ip6/3fff:72::1/tcp/4001]
 * ```
 */
export function transportAddrsOf(libp2p: unknown): Multiaddr[] | undefined {
  const tm = componentsOf(libp2p)?.transportManager as { getAddrs?: () => Multiaddr[] } | undefined;
  return typeof tm?.getAddrs === "function" ? tm.getAddrs() : undefined;
}

// ---- @libp2p/autonat 3.0.28 ---------------------------------------------------------------

/** The answer of an AutoNAT v1 server (only what the node reads of it). */
export interface AutoNatResponse {
  dialResponse?: { status?: number };
}

/** An address AutoNAT has decided about. */
export interface AutoNatResult {
  multiaddr: Multiaddr;
}

/** The AutoNAT service's methods the node wraps (instance properties looked up per call). */
export interface AutoNatInternals {
  /** The server: dials the requester back and builds the answer. */
  handleAutonatMessage(
    message: unknown,
    connection: Connection,
    options?: { signal?: AbortSignal; force?: boolean },
  ): Promise<AutoNatResponse>;
  /** The client: enough peers dialled this address back. */
  confirmAddress(results: AutoNatResult): void;
  /** The client: enough peers failed to dial this address back. */
  unconfirmAddress(results: AutoNatResult): void;
}

/**
 * The AutoNAT service's server and verdict methods, or undefined when it is not shaped as
 * 3.0.28 is.
 *
 * @example
 * ```ts ignore
 * autoNatInternalsOf(libp2p.services.autoNAT)?.confirmAddress;
 * ```
 */
export function autoNatInternalsOf(service: unknown): AutoNatInternals | undefined {
  const s = service as Partial<AutoNatInternals> | undefined;
  if (
    typeof s?.handleAutonatMessage !== "function" || typeof s.confirmAddress !== "function" ||
    typeof s.unconfirmAddress !== "function"
  ) return undefined;
  return s as AutoNatInternals;
}

// ---- @libp2p/gossipsub 17.1.1 -----------------------------------------------------------

/**
 * GossipSub 17.1.1's `stop()` leaves its next heartbeat timeout (up to 1 s) scheduled; it
 * then runs a heartbeat on the stopped router and holds the process open until it fires.
 * Captures the pending timeout as `stop()` begins and clears it afterwards.
 *
 * @example
 * ```ts ignore
 * clearHeartbeatOnStop(libp2p.services.pubsub);
 * ```
 */
export function clearHeartbeatOnStop(gossip: GossipSub): void {
  const internal = gossip as unknown as {
    status?: { heartbeatTimeout?: ReturnType<typeof setTimeout> };
    stop(): Promise<void>;
  };
  const stop = internal.stop.bind(gossip);
  internal.stop = async () => {
    const pending = internal.status?.heartbeatTimeout;
    await stop();
    clearTimeout(pending);
  };
}

/**
 * Adjustments of the router that its options do not reach: the size of the RPCs it sends,
 * peer exchange with members only, pull-based reads of each peer, and forgetting a cached
 * score at once. Each is guarded: when the internals are not where expected, the router is
 * left as it is.
 */

/** The gossipsub 17.1.x internals these patches rely on. */
interface GossipInternals {
  streamsOutbound?: Map<string, OutboundShape>;
  makePrune?: (
    id: string,
    topic: string,
    doPX: boolean,
    onUnsubscribe: boolean,
  ) => Promise<{ peers?: { peerID?: Uint8Array }[] }>;
  score?: { scoreCache?: Map<string, unknown> };
  acceptFromWhitelist?: Map<string, unknown>;
  createInboundStream?: (peerId: unknown, stream: Stream) => void;
  pxConnect?: (peers: unknown[]) => Promise<void>;
}

interface OutboundShape {
  push(data: Uint8Array): void;
  pushPrefixed(data: Uint8Array): void;
}

/**
 * Lets the router send RPCs of up to `maxBytes`. Gossipsub 17.1.1 length-prefixes each RPC it
 * sends with it-length-prefixed's default limit of 4 MiB and drops larger ones with a logged
 * error: since sealed hex doubles a payload, any ledger above ~2 MiB compressed silently never
 * left the node. Go reads RPCs up to the token's `max_message_size`; so do we.
 *
 * @example
 * ```ts ignore
 * liftOutboundRpcLimit(libp2p.services.pubsub, network.maxMessageSize);
 * ```
 */
export function liftOutboundRpcLimit(gossip: GossipSub, maxBytes: number): boolean {
  const streams = (gossip as unknown as GossipInternals).streamsOutbound;
  if (!(streams instanceof Map)) return false;
  const set = streams.set.bind(streams);
  streams.set = (peer: string, stream: OutboundShape) => {
    if (typeof stream?.push === "function" && typeof stream.pushPrefixed === "function") {
      stream.push = (data: Uint8Array) => {
        if (data.length > maxBytes) {
          throw new RangeError(`RPC of ${data.length} bytes exceeds ${maxBytes}`);
        }
        stream.pushPrefixed(varint(data.length));
        stream.pushPrefixed(data);
      };
    }
    return set(peer, stream);
  };
  return true;
}

/**
 * Peer exchange with members only: a PRUNE sent to a peer that is not a member carries no
 * peers, and the peers a PRUNE offers are members. (Taking PX is left to the score threshold:
 * only members reach `acceptPXThreshold`, see `PeerStanding.score`.)
 *
 * @example
 * ```ts ignore
 * memberOnlyPeerExchange(libp2p.services.pubsub, (peer) => mesh.isMember(peer));
 * ```
 */
export function memberOnlyPeerExchange(
  gossip: GossipSub,
  isMember: (peer: string) => boolean,
): boolean {
  const g = gossip as unknown as GossipInternals;
  const make = g.makePrune;
  if (typeof make !== "function") return false;
  g.makePrune = async (id, topic, doPX, onUnsubscribe) => {
    const prune = await make.call(gossip, id, topic, doPX && isMember(id), onUnsubscribe);
    if (Array.isArray(prune.peers) && prune.peers.length > 0) {
      prune.peers = prune.peers.filter((p) => {
        try {
          return p.peerID !== undefined &&
            isMember(peerIdFromMultihash(decodeMultihash(p.peerID)).toString());
        } catch {
          return false;
        }
      });
    }
    return prune;
  };
  return true;
}

/**
 * Reads each peer's gossip stream only as fast as the router handles it (run the router with
 * `awaitRpcHandler`): at most `maxBuffered` bytes wait unread per peer, beyond which the peer
 * is paused (see {@link readBounded}). A peer flooding the topic then costs its own stream's
 * window, not our memory.
 *
 * @example
 * ```ts ignore
 * boundInboundStreams(libp2p.services.pubsub, 4 << 20, 16 << 20);
 * ```
 */
export function boundInboundStreams(
  gossip: GossipSub,
  maxBuffered: number,
  windowBytes: number,
): boolean {
  const g = gossip as unknown as GossipInternals;
  const create = g.createInboundStream;
  if (typeof create !== "function") return false;
  g.createInboundStream = (peerId, stream) => {
    // Gossipsub pipes what it gets; a plain iterable (no events) is read by pulling. It also
    // closes or aborts it when the peer goes.
    const source = readBounded(stream, maxBuffered, windowBytes);
    create.call(gossip, peerId, {
      [Symbol.asyncIterator]: () => source[Symbol.asyncIterator](),
      close: (options?: object) => stream.close(options),
      abort: (error: Error) => stream.abort(error),
    } as unknown as Stream);
  };
  return true;
}

/**
 * Dials the peers a PRUNE offers (peer exchange) without holding up the offering peer's
 * next RPCs: with `awaitRpcHandler`, gossipsub would otherwise wait for every dial.
 *
 * @example
 * ```ts ignore
 * detachPeerExchangeDials(libp2p.services.pubsub);
 * ```
 */
export function detachPeerExchangeDials(gossip: GossipSub): boolean {
  const g = gossip as unknown as GossipInternals;
  const connect = g.pxConnect;
  if (typeof connect !== "function") return false;
  g.pxConnect = (peers) => {
    connect.call(gossip, peers).catch(() => {});
    return Promise.resolve();
  };
  return true;
}

/**
 * Drops the router's cached score of `peer` (kept for a heartbeat) and its short-lived
 * "accept without asking" pass, so a penalty takes effect on its next RPC.
 *
 * @example
 * ```ts ignore
 * forgetCachedScore(libp2p.services.pubsub, "12D3KooW…");
 * ```
 */
export function forgetCachedScore(gossip: GossipSub, peer: string): void {
  const g = gossip as unknown as GossipInternals;
  g.score?.scoreCache?.delete(peer);
  g.acceptFromWhitelist?.delete(peer);
}

function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Uint8Array.from(out);
}

/** GossipSub 17.1.1's per-peer outbound streams (what `stale_links.ts` moves between links). */
export interface GossipStreamInternals {
  peers: Map<string, PeerId>;
  streamsOutbound: Map<string, { close(): Promise<void> }>;
  /** Where GossipSub queues the outbound streams it is to open. */
  outboundInflightQueue?: { push(item: { peerId: PeerId; connection: Connection }): void };
  createOutboundStream(peerId: PeerId, connection: Connection): Promise<void>;
}

/**
 * GossipSub's outbound stream table and the method that opens one on a given connection, when
 * they are where 17.1.1 keeps them.
 *
 * @example
 * ```ts ignore
 * const g = gossipStreams(libp2p.services.pubsub); // undefined after an incompatible upgrade
 * ```
 */
export function gossipStreams(gossip: unknown): GossipStreamInternals | undefined {
  const g = gossip as Partial<GossipStreamInternals> | undefined;
  return g?.peers instanceof Map && g.streamsOutbound instanceof Map &&
      typeof g.createOutboundStream === "function"
    ? g as GossipStreamInternals
    : undefined;
}

// ---- @libp2p/utils 7.4.1 ----------------------------------------------------------------

/** The parts of `AbstractStreamMuxer` the coalescing patch relies on. */
export interface MuxerInternals {
  send(data: ByteChunk): boolean;
  maConn: ConnectionInternals;
  streams: { onMuxerNeedsDrain(): void }[];
}

/** The encrypted connection under the muxer (Noise), and the TCP connection under that. */
export interface ConnectionInternals {
  send(data: ByteChunk): boolean;
  addEventListener(type: "drain", listener: () => void): void;
  stream?: { sendData?: (data: Iterable<Uint8Array>) => unknown; socket?: unknown };
}

/**
 * A muxer's `send`, streams and connection, when it has the expected shape.
 *
 * @example
 * ```ts ignore
 * const m = muxerInternals(muxer);
 * if (m) m.send = (data) => queue(data);
 * ```
 */
export function muxerInternals(muxer: StreamMuxer): MuxerInternals | undefined {
  const m = muxer as unknown as Partial<MuxerInternals>;
  const conn = m.maConn;
  if (
    typeof m.send !== "function" || !Array.isArray(m.streams) || conn === undefined ||
    typeof conn.send !== "function" || typeof conn.addEventListener !== "function"
  ) return undefined;
  return m as MuxerInternals;
}

/** The `AbstractMessageStream` members byte counting wraps. */
export interface CountableStream {
  send: (data: { byteLength: number }) => boolean;
  onData: (data: { byteLength: number }) => void;
}

/**
 * A stream's `send` and `onData`, when it has them.
 *
 * @example
 * ```ts ignore
 * const s = countableStream(stream);
 * ```
 */
export function countableStream(stream: Stream): CountableStream | undefined {
  const s = stream as unknown as Partial<CountableStream>;
  return typeof s.send === "function" && typeof s.onData === "function"
    ? s as CountableStream
    : undefined;
}

/**
 * Pull-based reading of a libp2p stream: what arrived but was not read yet is bounded, and
 * beyond that the stream is paused, so the muxer stops granting the sender window.
 */

/** A chunk as libp2p streams deliver them (a `Uint8Array` or a `Uint8ArrayList`). */
export type Chunk = { byteLength: number; subarray(): Uint8Array };

/** The stream fields the bounded reader uses (libp2p 3.3 `AbstractStream`). */
interface StreamShape {
  readStatus?: string;
  maxReadBufferLength?: number;
  pause(): void;
  resume(): void;
  addEventListener(type: string, listener: (e: Event) => void): void;
  removeEventListener(type: string, listener: (e: Event) => void): void;
}

/**
 * Reads `stream` holding at most `maxBuffered` bytes the reader has not taken: past it the
 * stream is paused (yamux then stops sending window updates, so the sender stalls once its
 * window is spent) and it resumes once the reader caught up to half of it. libp2p 3.3's own
 * readers (the stream's async iterator, `pipe`) push every arriving chunk into an unbounded
 * queue, so a reader slower than its peer (GossipSub checking signatures of a flood) buffers
 * without end.
 *
 * While paused, the muxer still accepts what the peer's remaining window allows; the stream's
 * read buffer limit is raised to `windowBytes` above `maxBuffered` so that this never resets it.
 *
 * @example
 * ```ts ignore
 * for await (const chunk of readBounded(stream, 4 << 20, 16 << 20)) await handle(chunk);
 * ```
 */
export function readBounded(
  stream: Stream,
  maxBuffered: number,
  windowBytes: number,
): AsyncIterable<Chunk> {
  const s = stream as unknown as StreamShape;
  if (typeof s.pause !== "function" || typeof s.resume !== "function") {
    return stream as unknown as AsyncIterable<Chunk>;
  }
  s.maxReadBufferLength = Math.max(s.maxReadBufferLength ?? 0, maxBuffered + windowBytes);
  return { [Symbol.asyncIterator]: () => read(s, maxBuffered) };
}

async function* read(s: StreamShape, maxBuffered: number): AsyncGenerator<Chunk> {
  if (s.readStatus !== "readable" && s.readStatus !== "paused") return;
  const queue: Chunk[] = [];
  let buffered = 0;
  let paused = false;
  let ended = false;
  let error: unknown;
  let wake: (() => void) | undefined;
  const onMessage = (e: Event) => {
    const data = (e as Event & { data: Chunk }).data;
    queue.push(data);
    buffered += data.byteLength;
    if (!paused && buffered > maxBuffered && s.readStatus === "readable") {
      paused = true;
      s.pause();
    }
    wake?.();
  };
  const onClose = (e: Event) => {
    ended = true;
    error = (e as Event & { error?: unknown }).error;
    wake?.();
  };
  const onEnd = () => {
    ended = true;
    wake?.();
  };
  // The stream ends (`end`) only once its read buffer is empty: a paused one is resumed, so
  // that what it holds back is delivered (as `message` events) first.
  const onRemoteCloseWrite = () => {
    if (s.readStatus === "paused") s.resume();
  };
  s.addEventListener("message", onMessage);
  s.addEventListener("close", onClose);
  s.addEventListener("end", onEnd);
  s.addEventListener("remoteCloseWrite", onRemoteCloseWrite);
  try {
    for (;;) {
      const chunk = queue.shift();
      if (chunk !== undefined) {
        buffered -= chunk.byteLength;
        if (paused && buffered <= maxBuffered / 2) {
          paused = false;
          if (s.readStatus === "paused") s.resume();
        }
        yield chunk;
        continue;
      }
      if (ended) {
        if (error !== undefined) throw error;
        return;
      }
      await new Promise<void>((resolve) => wake = resolve);
      wake = undefined;
    }
  } finally {
    s.removeEventListener("message", onMessage);
    s.removeEventListener("close", onClose);
    s.removeEventListener("end", onEnd);
    s.removeEventListener("remoteCloseWrite", onRemoteCloseWrite);
  }
}

// ---- @libp2p/tcp 11.0.28 ----------------------------------------------------------------

/**
 * The TCP connection writes each chunk of a message separately (Noise: 2-byte length, then
 * ciphertext); joins them so that one message is one socket write.
 *
 * @example
 * ```ts ignore
 * joinSocketWrites(muxerInternals(muxer)!.maConn);
 * ```
 */
export function joinSocketWrites(conn: ConnectionInternals): void {
  const tcp = conn.stream;
  const sendData = tcp?.sendData;
  if (typeof sendData !== "function" || tcp?.socket === undefined) return;
  tcp.sendData = function (data: Iterable<Uint8Array>) {
    const list = data as unknown as { bufs?: unknown[]; subarray(): Uint8Array };
    const joined = Array.isArray(list.bufs) && list.bufs.length > 1 ? [list.subarray()] : data;
    if (tracing) traceMark("socket.write");
    return sendData.call(this, joined);
  };
}

// ---- @chainsafe/libp2p-yamux 8.0.1 ------------------------------------------------------

/** Yamux 8.0.x stream states (`StreamState`) that decide the flags of a window update. */
const STREAM_INIT = 0;
const STREAM_SYN_RECEIVED = 2;
const STREAM_PAUSED = 5;

/** The yamux 8.0.x stream fields the window-update patch reads. */
interface YamuxStreamInternals {
  state: number;
  recvWindow: number;
  recvWindowCapacity: number;
  sendWindowUpdate(): void;
}

/**
 * Calls `hook` with every stream `muxer` creates (inbound or outbound), as it is created.
 *
 * @example
 * ```ts ignore
 * onNewStream(muxer, (stream) => streamMuxers.set(stream, muxer));
 * ```
 */
export function onNewStream(muxer: StreamMuxer, hook: (stream: object) => void): void {
  const m = muxer as unknown as { _newStream?: (...args: unknown[]) => object };
  const create = m._newStream;
  if (typeof create !== "function") return;
  m._newStream = function (...args: unknown[]) {
    const stream = create.apply(this, args);
    hook(stream);
    return stream;
  };
}

let windowsPatched = false;

/**
 * Yamux 8.0.x answers every data frame with a window update: a second frame, Noise message and
 * socket write for each packet, sent before the packet is even handed to its reader, and one
 * more message the peer must decrypt before the next one. Go's yamux (and the spec's intent)
 * updates once half the receive window is consumed; so do we, on the stream class shared by
 * every muxer (patched once, through the first stream created). Updates that carry a SYN or an
 * ACK, and resumes after a pause, go out as before.
 *
 * @example
 * ```ts ignore
 * updateWindowsAtHalf(muxer);
 * ```
 */
export function updateWindowsAtHalf(muxer: StreamMuxer): void {
  if (windowsPatched) return;
  const m = muxer as unknown as { _newStream?: (...args: unknown[]) => unknown };
  const newStream = m._newStream;
  if (typeof newStream !== "function") return;
  m._newStream = function (...args: unknown[]) {
    const stream = newStream.apply(this, args);
    m._newStream = newStream;
    patchStreamClass(stream);
    return stream;
  };
}

function patchStreamClass(stream: unknown): void {
  if (windowsPatched) return;
  const proto = Object.getPrototypeOf(stream) as Partial<YamuxStreamInternals> | null;
  const s = stream as Partial<YamuxStreamInternals>;
  const update = proto?.sendWindowUpdate;
  if (
    typeof update !== "function" || typeof s.state !== "number" ||
    typeof s.recvWindow !== "number" || typeof s.recvWindowCapacity !== "number"
  ) return;
  windowsPatched = true;
  proto!.sendWindowUpdate = function (this: YamuxStreamInternals) {
    const state = this.state;
    if (
      state !== STREAM_INIT && state !== STREAM_SYN_RECEIVED && state !== STREAM_PAUSED &&
      this.recvWindow - this.recvWindowCapacity < this.recvWindow / 2
    ) return;
    update.call(this);
  };
}

/** Stream frames (and their bytes) held before the connection listens; later ones are dropped. */
const MAX_HELD_FRAMES = 1024;
const MAX_HELD_BYTES = 1 << 20;
const YAMUX_DATA = 0;

/**
 * libp2p 3.3 starts the muxer, then awaits the connection gater, and only then creates the
 * connection that listens for the muxer's new streams: a stream the peer opens at once (a
 * packet sent as soon as its dial completed) raises its event before anyone listens and is
 * lost. Stream frames are held until the first `stream` listener is added, then handled in
 * order (in a microtask, once the connection's constructor has finished).
 *
 * @example
 * ```ts ignore
 * holdStreamsUntilListened(muxer);
 * ```
 */
export function holdStreamsUntilListened(muxer: StreamMuxer): void {
  const m = muxer as unknown as {
    handleStreamMessage?: (frame: unknown) => void;
    addEventListener(type: string, ...rest: unknown[]): void;
  };
  const handle = m.handleStreamMessage;
  if (typeof handle !== "function" || typeof m.addEventListener !== "function") return;
  let held: unknown[] | undefined = [];
  let heldBytes = 0;
  m.handleStreamMessage = function (frame: unknown) {
    if (held === undefined) return handle.call(this, frame);
    const header = (frame as { header?: { type?: number; length?: number } }).header;
    if (header?.type === YAMUX_DATA) heldBytes += header.length ?? 0;
    if (held.length < MAX_HELD_FRAMES && heldBytes <= MAX_HELD_BYTES) held.push(frame);
  };
  const add = m.addEventListener;
  m.addEventListener = function (type: string, ...rest: unknown[]) {
    add.call(this, type, ...rest);
    if (type !== "stream" || held === undefined) return;
    m.addEventListener = add;
    queueMicrotask(() => {
      const frames = held!;
      held = undefined;
      for (const f of frames) handle.call(m, f);
    });
  };
}

/**
 * Stamps the receiving side of a connection for `--vpn-trace`: ciphertext read from the
 * socket, then the decrypted bytes reaching yamux.
 *
 * @example
 * ```ts ignore
 * if (tracing) traceConnection(muxer);
 * ```
 */
export function traceConnection(muxer: StreamMuxer): void {
  const m = muxer as unknown as {
    onData?: (data: unknown) => void;
    maConn?: { stream?: { socket?: { prependListener?(e: string, f: () => void): void } } };
  };
  m.maConn?.stream?.socket?.prependListener?.("data", () => traceMark("socket.data"));
  const onData = m.onData;
  if (typeof onData !== "function") return;
  m.onData = function (data: unknown) {
    traceMark("yamux.data");
    return onData.call(this, data);
  };
}

/** The yamux 8.0.x muxer fields a stream opened without a stream object relies on. */
export interface YamuxOpenerInternals {
  nextStreamID: number;
  status: string;
  localGoAway?: unknown;
  remoteGoAway?: unknown;
  send(data: ByteChunk): boolean;
}

/**
 * A yamux muxer's stream-ID counter, status and `send`, when it has them.
 *
 * @example
 * ```ts ignore
 * const m = yamuxOpener(muxer);
 * if (m?.status === "open") m.nextStreamID += 2;
 * ```
 */
export function yamuxOpener(muxer: unknown): YamuxOpenerInternals | undefined {
  const m = muxer as Partial<YamuxOpenerInternals> | undefined;
  return typeof m?.nextStreamID === "number" && typeof m.send === "function"
    ? m as YamuxOpenerInternals
    : undefined;
}

/** A decoded yamux frame as yamux 8.0.x hands it to `handleStreamMessage`. */
export interface YamuxFrame {
  header: { type: number; flag: number; streamID: number; length: number };
  data?: ByteChunk | null;
}

/** The yamux 8.0.x muxer internals the frame-level message path relies on. */
export interface YamuxFrameInternals {
  client?: boolean;
  localGoAway?: unknown;
  streams: { streamId?: number }[];
  handleStreamMessage: (frame: YamuxFrame) => void;
  send(data: ByteChunk): boolean;
}

/**
 * A yamux muxer's frame handler, streams and `send`, when it has them.
 *
 * @example
 * ```ts ignore
 * const m = yamuxFrames(muxer);
 * if (m) m.handleStreamMessage = (frame) => inspect(frame);
 * ```
 */
export function yamuxFrames(muxer: object): YamuxFrameInternals | undefined {
  const m = muxer as Partial<YamuxFrameInternals>;
  return typeof m.handleStreamMessage === "function" && Array.isArray(m.streams) &&
      typeof m.send === "function"
    ? m as YamuxFrameInternals
    : undefined;
}

/**
 * Yamux frame sizes checked when the header arrives: yamux 8.0.1 buffers a declared DATA frame
 * whole (up to 4 GiB) before anyone looks at its length, on any connection, before the peer is
 * known to be a member.
 */

/** Yamux's initial stream window (spec: 256 KiB): all a stream may receive before an update. */
export const YAMUX_INITIAL_WINDOW = 256 * 1024;

const HEADER = 12;
const DATA = 0;

/** The yamux 8.0.x internals the check relies on. */
interface DecoderShape {
  buffer?: { byteLength: number; subarray(start: number, end: number): Uint8Array };
  readFrame?: () => unknown;
}
interface MuxerShape {
  decoder?: DecoderShape;
  streams?: { streamId?: number; recvWindowCapacity?: number }[];
}

/**
 * Refuses, as soon as its header is read, a DATA frame longer than the receive window its
 * stream has left: that is a protocol violation yamux itself would find only after buffering
 * the whole frame. Frames up to the initial window (256 KiB) pass without a lookup; a larger
 * one needs a stream that granted that much. The error aborts the connection.
 *
 * Returns false, changing nothing, when the muxer does not have the expected internals.
 *
 * @example
 * ```ts ignore
 * const muxer = factory.createStreamMuxer(maConn);
 * boundFrames(muxer);
 * ```
 */
export function boundFrames(muxer: unknown): boolean {
  const m = muxer as MuxerShape;
  const decoder = m.decoder;
  const read = decoder?.readFrame;
  if (
    decoder === undefined || typeof read !== "function" || decoder.buffer === undefined ||
    !Array.isArray(m.streams)
  ) return false;
  decoder.readFrame = function (this: DecoderShape) {
    const buffer = this.buffer!;
    if (buffer.byteLength >= HEADER) {
      const h = buffer.subarray(0, HEADER);
      if (h[1] === DATA) {
        const length = h[8] * 2 ** 24 + (h[9] << 16) + (h[10] << 8) + h[11];
        if (length > YAMUX_INITIAL_WINDOW) {
          const id = h[4] * 2 ** 24 + (h[5] << 16) + (h[6] << 8) + h[7];
          const stream = m.streams!.find((s) => s.streamId === id);
          const window = stream?.recvWindowCapacity ?? YAMUX_INITIAL_WINDOW;
          if (length > window) {
            throw new EdgeVpnError(
              "YAMUX_FRAME_TOO_LARGE",
              `Yamux DATA frame of ${length} bytes on stream ${id} exceeds its window of ${window}`,
            );
          }
        }
      }
    }
    return read.call(this);
  };
  return true;
}
