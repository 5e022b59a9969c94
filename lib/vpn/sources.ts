/** Which peer may send packets from which source address: the anti-spoofing table of ingress. */
import { parseIPv4, parseIPv6 } from "../net/ip.ts";
import { peerIdOf } from "../ledger/buckets.ts";
import { canonicalKey } from "./routes.ts";

/** Why a packet's source address is refused; 0 when it is accepted. */
export const SourceVerdict = {
  OK: 0,
  /** The source is another peer's address (a `machines` entry names someone else), or ours. */
  NOT_OWNED: 1,
  /** No entry holds the source, and the sender is not the peer our `--router` resolves to. */
  UNKNOWN: 2,
} as const;

/** One of {@link SourceVerdict}. */
export type SourceVerdictCode = typeof SourceVerdict[keyof typeof SourceVerdict];

/**
 * What a source table is built from: the same `machines` entries (or static table) and router
 * address as the route table, so that a peer may send from exactly the addresses we route to it.
 *
 * @example
 * ```ts
 * const input: SourceInput = {
 *   selfPeerId: "12D3KooWA…",
 *   machines: [["10.1.0.2", '{"PeerID":"12D3KooWB…"}']],
 *   router: "10.1.0.254",
 * };
 * ```
 */
export interface SourceInput {
  selfPeerId: string;
  /** Live `machines` entries: key (IP text) → value JSON text. */
  machines: Iterable<readonly [string, string]>;
  /** Static table (canonical IP text → peer ID): replaces `machines` when not empty. */
  staticPeers?: ReadonlyMap<string, string>;
  /** Our `--router` address (canonical text), "" or absent for none. */
  router?: string;
}

/**
 * A sender as ingress sees it: the peer ID of its stream and, cached by {@link SourceTable.check},
 * its index in the table that was current at its last packet.
 *
 * @example
 * ```ts
 * const sender = newSender(stream.remotePeer);
 * ```
 */
export interface Sender {
  peer: string;
  table: SourceTable | undefined;
  index: number;
}

/**
 * A fresh {@link Sender} for `peer`.
 *
 * @example
 * ```ts
 * table.check(packet, 0, newSender("12D3KooW…")); // SourceVerdict.OK when it owns the source
 * ```
 */
export function newSender(peer: string): Sender {
  return { peer, table: undefined, index: 0 };
}

/**
 * An immutable table from source address to the only peer allowed to send from it:
 *
 * - an address held by a `machines` entry (or the static table) may come only from the peer it
 *   names, the one our packets to that address go to; our own address never comes from a peer;
 * - an address no entry holds may come only from the peer our `--router` address resolves to:
 *   it forwards for hosts outside the VPN, and it is where our packets to them go. Without a
 *   router nothing outside the VPN can be answered, so such packets are dropped too. (Go
 *   EdgeVPN writes whatever source a member sends.)
 *
 * Lookups read the source bytes in place: IPv4 by its u32, IPv6 by a 32-bit hash of its 16
 * bytes and a byte comparison; senders compare by a small integer resolved once per table and
 * stream. A check allocates nothing.
 *
 * @example
 * ```ts
 * const table = SourceTable.build({ selfPeerId, machines, router });
 * if (table.check(packet, 0, sender) !== SourceVerdict.OK) drop();
 * ```
 */
export class SourceTable {
  /** Peer ID → index (1…n); our own peer ID is not in it, index 0 means "owns nothing". */
  readonly #peers: Map<string, number>;
  readonly #v4: Map<number, V4Owner>;
  readonly #v6: Map<number, V6Owner>;
  readonly #router: number;

  private constructor(
    peers: Map<string, number>,
    v4: Map<number, V4Owner>,
    v6: Map<number, V6Owner>,
    router: number,
  ) {
    this.#peers = peers;
    this.#v4 = v4;
    this.#v6 = v6;
    this.#router = router;
  }

  /** A table refusing every source. */
  static empty(): SourceTable {
    return new SourceTable(new Map(), new Map(), new Map(), -1);
  }

  /** Builds the table; keys that are not canonical IPs and values without `PeerID` are skipped. */
  static build(input: SourceInput): SourceTable {
    const peers = new Map<string, number>();
    const v4 = new Map<number, V4Owner>();
    const v6 = new Map<number, V6Owner>();
    // Our own addresses get an index no sender has, so that they are "owned by someone else".
    const SELF = -1;
    const indexOf = (peerId: string): number => {
      if (peerId === input.selfPeerId) return SELF;
      let index = peers.get(peerId);
      if (index === undefined) peers.set(peerId, index = peers.size + 1);
      return index;
    };
    const owners = new Map<string, string>();
    const staticPeers = input.staticPeers ?? new Map<string, string>();
    if (staticPeers.size > 0) {
      for (const [key, peerId] of staticPeers) owners.set(key, peerId);
    } else {
      for (const [key, value] of input.machines) {
        const peerId = peerIdOf(value);
        if (peerId !== "") owners.set(key, peerId);
      }
    }
    for (const [key, peerId] of owners) {
      const canonical = canonicalKey(key);
      if (canonical === null) continue;
      const owner = indexOf(peerId);
      if (!canonical.includes(":")) {
        const address = parseIPv4(canonical)!;
        const key = address & KEY_MASK;
        v4.set(key, { address, owner, next: v4.get(key) });
        continue;
      }
      const bytes = parseIPv6(canonical)!;
      const hash = hash16(bytes, 0);
      v6.set(hash, { bytes, owner, next: v6.get(hash) });
    }
    const routerPeer = input.router ? owners.get(input.router) : undefined;
    // -2: no sender has it, not even ours (SELF): without a router, unknown sources are refused.
    const router = routerPeer === undefined ? -2 : indexOf(routerPeer);
    return new SourceTable(peers, v4, v6, router);
  }

  /** Addresses in the table. */
  get size(): number {
    let n = 0;
    for (const first of this.#v4.values()) {
      for (let o: V4Owner | undefined = first; o; o = o.next) n++;
    }
    for (const first of this.#v6.values()) {
      for (let o: V6Owner | undefined = first; o; o = o.next) n++;
    }
    return n;
  }

  /**
   * Whether `sender` may send the IP packet at `offset` of `bytes` (a whole IPv4 header, or 40
   * bytes of IPv6 header, is present). An IPv4-mapped IPv6 source is looked up as IPv4.
   */
  check(bytes: Uint8Array, offset: number, sender: Sender): SourceVerdictCode {
    if (sender.table !== this) {
      sender.table = this;
      sender.index = this.#peers.get(sender.peer) ?? 0;
    }
    let owner: number | undefined;
    if (bytes[offset] >> 4 === 4) {
      owner = this.#owner4(u32(bytes, offset + 12));
    } else if (isV4Mapped(bytes, offset + 8)) {
      owner = this.#owner4(u32(bytes, offset + 20));
    } else {
      for (let o = this.#v6.get(hash16(bytes, offset + 8)); o; o = o.next) {
        if (sameBytes(o.bytes, bytes, offset + 8)) {
          owner = o.owner;
          break;
        }
      }
    }
    if (owner === undefined) {
      return sender.index === this.#router ? SourceVerdict.OK : SourceVerdict.UNKNOWN;
    }
    return owner === sender.index ? SourceVerdict.OK : SourceVerdict.NOT_OWNED;
  }

  #owner4(address: number): number | undefined {
    for (let o = this.#v4.get(address & KEY_MASK); o; o = o.next) {
      if (o.address === address) return o.owner;
    }
    return undefined;
  }
}

/** Map keys stay within V8's small integers (31 bits), which are compared without allocating. */
const KEY_MASK = 0x3fffffff;

interface V4Owner {
  address: number;
  owner: number;
  /** Another address with the same key. */
  next: V4Owner | undefined;
}

interface V6Owner {
  bytes: Uint8Array;
  owner: number;
  /** Another address with the same hash. */
  next: V6Owner | undefined;
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

// FNV-style mixing of the four words, kept in 31 bits so V8 holds the keys as small integers.
function hash16(b: Uint8Array, at: number): number {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < 16; i += 4) {
    h = Math.imul(
      h ^ ((b[at + i] << 24) | (b[at + i + 1] << 16) | (b[at + i + 2] << 8) | b[at + i + 3]),
      0x01000193,
    );
  }
  return h & KEY_MASK;
}

function isV4Mapped(b: Uint8Array, at: number): boolean {
  for (let i = 0; i < 10; i++) if (b[at + i] !== 0) return false;
  return b[at + 10] === 0xff && b[at + 11] === 0xff;
}

function sameBytes(address: Uint8Array, b: Uint8Array, at: number): boolean {
  for (let i = 0; i < 16; i++) if (address[i] !== b[at + i]) return false;
  return true;
}
