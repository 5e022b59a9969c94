/**
 * Adjustments of a `@libp2p/gossipsub` 17.1.x router that its options do not reach: the size
 * of the RPCs it sends, peer exchange with members only, and forgetting a cached score at once.
 * Each is guarded: when the internals are not where expected, the router is left as it is.
 */
import type { GossipSub } from "@libp2p/gossipsub";
import type { Stream } from "@libp2p/interface";
import { peerIdFromMultihash } from "@libp2p/peer-id";
import { decode as decodeMultihash } from "multiformats/hashes/digest";
import { readBounded } from "./bounded_reads.ts";

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
 * ```ts
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
 * ```ts
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
 * ```ts
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
 * ```ts
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
 * ```ts
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
