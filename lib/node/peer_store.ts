/** A fast path for libp2p's per-stream peer-store write of the negotiated protocol. */
import type { Libp2p, PeerId, PeerStore } from "@libp2p/interface";

/** Peers whose recorded protocols are remembered (least recently used are forgotten). */
const MAX_PEERS = 4096;

/**
 * libp2p 3.3 records the negotiated protocol in the peer store for every stream it opens or
 * accepts (`peerStore.merge(peer, { protocols: [p] })`): a write lock, a datastore read, a
 * protobuf encode and compare, even when nothing changes. With a stream per packet (Go's
 * `/edgevpn/0.1`) that was the largest part of the receive cost and added about a millisecond
 * of latency. Such merges are skipped once they are known to change nothing; any update of the
 * peer (`peer:update`) forgets what was known about it.
 *
 * @example
 * ```ts ignore
 * skipRedundantProtocolMerges(libp2p);
 * ```
 */
export function skipRedundantProtocolMerges(libp2p: Libp2p): void {
  const store = libp2p.peerStore as PeerStore & { merge: PeerStore["merge"] };
  const merge = store.merge;
  if (typeof merge !== "function") return;
  const known = new Map<string, { protocols: Set<string>; peer: unknown }>();
  libp2p.addEventListener("peer:update", (e) => known.delete(e.detail.peer.id.toString()));
  store.merge = async function (id: PeerId, data, options) {
    const keys = Object.keys(data);
    const protocols = data.protocols;
    if (keys.length !== 1 || keys[0] !== "protocols" || !Array.isArray(protocols)) {
      return await merge.call(this, id, data, options);
    }
    const key = id.toString();
    const entry = known.get(key);
    if (entry !== undefined && protocols.every((p) => entry.protocols.has(p))) {
      known.delete(key);
      known.set(key, entry);
      return entry.peer as Awaited<ReturnType<PeerStore["merge"]>>;
    }
    const peer = await merge.call(this, id, data, options);
    known.delete(key);
    known.set(key, { protocols: new Set(peer.protocols), peer });
    if (known.size > MAX_PEERS) known.delete(known.keys().next().value!);
    return peer;
  };
}
