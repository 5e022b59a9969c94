/** Counters of the VPN data plane: traffic per protocol and every reason a packet was dropped. */

/** Packets and bytes (IP bytes, without framing) moved on one protocol. */
export interface Traffic {
  packets: number;
  bytes: number;
}

/**
 * Counters of a VPN service. A TCP super-packet counts as one packet on `fastGso`.
 *
 * @example
 * ```ts ignore
 * const c = vpn.counters();
 * c.sent.fast.packets + c.sent.fastGso.packets; // carried by our fast protocols
 * c.dropped.noRoute; // packets to addresses without a machines entry
 * ```
 */
export interface VpnCounters {
  sent: {
    /** `/edgevpn/fast-gso/1.0.0`; `batches` counts stream writes. */
    fastGso: Traffic & { batches: number };
    /** `/edgevpn/fast/1.0.0`. */
    fast: Traffic & { batches: number };
    /** `/edgevpn/0.1`; one stream per packet. */
    legacy: Traffic;
  };
  received: {
    fastGso: Traffic;
    fast: Traffic;
    legacy: Traffic;
  };
  /** Packets read from the interface and not sent, by reason. */
  dropped: {
    /** Not an IPv4/IPv6 packet, or its length disagrees with its header. */
    malformed: number;
    /** Larger than a fast frame can carry (64 KiB). */
    tooBig: number;
    /** An offload frame whose virtio header cannot be segmented. */
    badOffload: number;
    /** No `machines` (or static) entry for the destination. */
    noRoute: number;
    /** The destination's owner has no fresh heartbeat. */
    ownerNotLive: number;
    /** Addressed to ourselves. */
    self: number;
    /** The peer's fast queue was full (tail drop). */
    queueFull: number;
    /** Too many `/edgevpn/0.1` streams already open to the peer. */
    inflightFull: number;
    /** The peer's link was down (failed stream, dial back-off): queued or new packets. */
    linkDown: number;
    /** An `/edgevpn/0.1` stream could not be opened or written. */
    legacyFailed: number;
  };
  /** Refused or broken input from peers. */
  inbound: {
    /** VPN streams reset: the peer owns no `machines` entry (or is not in the static table). */
    nonMember: number;
    /** Fast streams reset for an impossible frame. */
    badFrame: number;
    /** Packets dropped: a malformed `/edgevpn/0.1` stream. */
    badPacket: number;
    /**
     * Offload frames dropped: a virtio header that does not match its packet, `gso_size` below
     * 48 or too many segments, a GSO type other than TCP.
     */
    badOffload: number;
    /** Packets dropped: their source address belongs to another peer (or to us). */
    spoofedSource: number;
    /** Packets dropped: no entry holds their source and the sender is not our router. */
    unknownSource: number;
    /** Packets the interface did not take. */
    tunWriteErrors: number;
  };
  /** Packets and bytes per peer (the 4096 most recently added peers). */
  peers: Map<string, PeerTraffic>;
  /** Fast-protocol stream management. */
  links: {
    /** Fast streams opened (attempts). */
    dials: number;
    /** Attempts that failed (dial error, timeout). */
    dialFailures: number;
    /** Peers found to support no fast protocol (then sent `/edgevpn/0.1`). */
    fallbacks: number;
    /** Fast streams that ended (reset by the peer, connection lost). */
    streamsClosed: number;
    /** Fast streams moved from a relayed connection to a direct one. */
    moves: number;
  };
}

/**
 * All-zero counters.
 *
 * @example
 * ```ts
 * const counters = newVpnCounters();
 * counters.dropped.noRoute++;
 * ```
 */
export function newVpnCounters(): VpnCounters {
  const traffic = () => ({ packets: 0, bytes: 0 });
  return {
    sent: {
      fastGso: { ...traffic(), batches: 0 },
      fast: { ...traffic(), batches: 0 },
      legacy: traffic(),
    },
    received: { fastGso: traffic(), fast: traffic(), legacy: traffic() },
    dropped: {
      malformed: 0,
      tooBig: 0,
      badOffload: 0,
      noRoute: 0,
      ownerNotLive: 0,
      self: 0,
      queueFull: 0,
      inflightFull: 0,
      linkDown: 0,
      legacyFailed: 0,
    },
    inbound: {
      nonMember: 0,
      badFrame: 0,
      badPacket: 0,
      badOffload: 0,
      spoofedSource: 0,
      unknownSource: 0,
      tunWriteErrors: 0,
    },
    links: { dials: 0, dialFailures: 0, fallbacks: 0, streamsClosed: 0, moves: 0 },
    peers: new Map(),
  };
}

/** What the VPN moved to and from one peer. */
export interface PeerTraffic {
  sent: Traffic;
  received: Traffic;
}

const MAX_PEERS = 4096;

/**
 * The per-peer traffic of `peer` in `counters`, added on first use (the oldest peer is
 * forgotten beyond 4096).
 *
 * @example
 * ```ts ignore
 * peerTraffic(counters, "12D3KooW…").sent.packets++;
 * ```
 */
export function peerTraffic(counters: VpnCounters, peer: string): PeerTraffic {
  let t = counters.peers.get(peer);
  if (t === undefined) {
    if (counters.peers.size >= MAX_PEERS) {
      counters.peers.delete(counters.peers.keys().next().value!);
    }
    t = { sent: { packets: 0, bytes: 0 }, received: { packets: 0, bytes: 0 } };
    counters.peers.set(peer, t);
  }
  return t;
}
