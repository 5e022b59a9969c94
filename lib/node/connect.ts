/** Which connection a stream goes on: direct first, relayed when nothing else reaches the peer. */
import type { Connection, Libp2p, PeerId, Stream } from "@libp2p/interface";
import { multiaddr } from "@multiformats/multiaddr";
import { isRelayed } from "./autorelay.ts";
import { HOP_PROTOCOL } from "./relay_pb.ts";

/**
 * The best open connection among `connections`: direct ones first, then relayed ones without
 * limits, then (when `allowLimited`) limited relayed ones; the newest wins a tie.
 *
 * @example
 * ```ts ignore
 * const c = bestConnection(libp2p.getConnections(peer), true);
 * ```
 */
export function bestConnection(
  connections: readonly Connection[],
  allowLimited: boolean,
): Connection | undefined {
  let best: Connection | undefined;
  let bestRank = -1;
  for (const c of connections) {
    if (c.status !== "open") continue;
    const rank = !isRelayed(c) ? 3 : c.limits === undefined ? 2 : allowLimited ? 1 : -1;
    if (
      rank > bestRank || (rank === bestRank && rank >= 0 && c.timeline.open > best!.timeline.open)
    ) {
      best = c;
      bestRank = rank;
    }
  }
  return bestRank >= 0 ? best : undefined;
}

/**
 * Opens a stream for `protocols` on the best connection to `peer`: an open one (see
 * {@link bestConnection}), else a new dial to its known addresses, else a circuit through
 * each connected member that serves as relay, until one answers. libp2p's own `dialProtocol`
 * would never use a limited connection, and dials again (failing behind NAT) when one is all
 * there is.
 *
 * @example
 * ```ts ignore
 * const { stream } = await openStream(libp2p, peer, ["/edgevpn/fast/1"], { signal, allowLimited: true, isRelay });
 * ```
 */
export async function openStream(
  libp2p: Libp2p,
  peer: PeerId,
  protocols: string[],
  options: {
    signal: AbortSignal;
    allowLimited: boolean;
    /** Members that may relay for us. */
    isMember: (peerId: string) => boolean;
  },
): Promise<{ stream: Stream; connection: Connection }> {
  let connection = bestConnection(libp2p.getConnections(peer), options.allowLimited);
  if (connection === undefined) {
    try {
      connection = await libp2p.dial(peer, { signal: options.signal });
    } catch (e) {
      connection = await dialThroughRelays(libp2p, peer, options);
      if (connection === undefined) throw e;
    }
  }
  const stream = await connection.newStream(protocols, {
    signal: options.signal,
    runOnLimitedConnection: options.allowLimited,
  });
  return { stream, connection };
}

/**
 * Dials `peer` through connected members that serve the hop protocol; undefined when none
 * relays for it (no reservation there) or relaying is not allowed.
 */
export async function dialThroughRelays(
  libp2p: Libp2p,
  peer: PeerId,
  options: { signal: AbortSignal; allowLimited: boolean; isMember: (peerId: string) => boolean },
): Promise<Connection | undefined> {
  const tried = new Set<string>();
  for (const c of libp2p.getConnections()) {
    const relay = c.remotePeer;
    const id = relay.toString();
    if (tried.has(id) || relay.equals(peer) || c.status !== "open" || isRelayed(c)) continue;
    tried.add(id);
    if (!options.isMember(id)) continue;
    try {
      const info = await libp2p.peerStore.get(relay);
      if (!info.protocols.includes(HOP_PROTOCOL)) continue;
      const base = c.remoteAddr.getComponents().some((x) => x.name === "p2p")
        ? c.remoteAddr
        : c.remoteAddr.encapsulate(`/p2p/${id}`);
      const circuit = base.encapsulate(`/p2p-circuit/p2p/${peer.toString()}`);
      const connection = await libp2p.dial(multiaddr(circuit.toString()), {
        signal: options.signal,
      });
      if (connection.limits !== undefined && !options.allowLimited) {
        continue;
      }
      return connection;
    } catch {
      if (options.signal.aborted) return undefined;
      continue;
    }
  }
  return undefined;
}
