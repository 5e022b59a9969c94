/** The VPN route table: a packet's peer from the `machines` bucket or a static table. */
import { peerIdOf } from "../ledger/buckets.ts";
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "../net/ip.ts";

/** Why a packet has no peer to go to. */
export const RouteMiss = {
  /** No `machines` entry (or static entry) for the destination. */
  NO_ROUTE: 0,
  /** The entry's `PeerID` has no fresh heartbeat (ownership on). */
  OWNER_NOT_LIVE: 1,
  /** The destination is our own address or resolves to our own peer. */
  SELF: 2,
} as const;

/** One of {@link RouteMiss}. */
export type RouteMissCode = typeof RouteMiss[keyof typeof RouteMiss];

/** A lookup result: the peer ID to send to, or a {@link RouteMissCode}. */
export type Route = string | RouteMissCode;

/**
 * What a route table is built from.
 *
 * @example
 * ```ts
 * const input: RouteInput = {
 *   selfPeerId: "12D3KooWA…",
 *   selfAddress: "10.1.0.1",
 *   machines: [["10.1.0.2", '{"PeerID":"12D3KooWB…"}']],
 *   isOwnerLive: () => true,
 * };
 * ```
 */
export interface RouteInput {
  selfPeerId: string;
  /** Our VPN address, canonical text. */
  selfAddress: string;
  /** Live `machines` entries: key (IP text) → value JSON text. */
  machines: Iterable<readonly [string, string]>;
  /** Go `IsOwnerLive` applied to the value's `PeerID` (always true with ownership off). */
  isOwnerLive: (peerId: string) => boolean;
  /** Static table (canonical IP text → peer ID): replaces `machines` when not empty. */
  staticPeers?: ReadonlyMap<string, string>;
  /** Router address (canonical text), "" or absent for none. */
  router?: string;
}

/** One row of {@link RouteTable.entries}, for the API. */
export interface RouteEntry {
  address: string;
  /** Peer ID, or the reason the address is not routed. */
  peerId: string | null;
  status: "ok" | "owner-not-live" | "self" | "invalid";
  source: "machines" | "static";
}

/**
 * An immutable route table implementing Go EdgeVPN's rules (§7): a packet from our own address
 * to an address without a `machines` entry goes to the router when one is set; with a static
 * table only its entries route; otherwise `machines[dst].PeerID`, unless its owner is not live.
 * IPv4 lookups are keyed by the u32 destination (no string per packet); IPv6 by canonical text.
 *
 * @example
 * ```ts
 * const table = RouteTable.build(input);
 * const route = table.routeIPv4(src, dst);
 * if (typeof route === "string") send(route, packet);
 * ```
 */
export class RouteTable {
  readonly #v4: Map<number, Route>;
  readonly #v6: Map<string, Route>;
  /** Keys of `machines` (whatever their state), for the router rule. */
  readonly #machines4: Set<number>;
  readonly #machines6: Set<string>;
  readonly #self4: number;
  readonly #self6: Uint8Array | undefined;
  readonly #router: Route | undefined;
  readonly #entries: RouteEntry[];

  private constructor(
    v4: Map<number, Route>,
    v6: Map<string, Route>,
    machines4: Set<number>,
    machines6: Set<string>,
    self: string,
    router: Route | undefined,
    entries: RouteEntry[],
  ) {
    this.#v4 = v4;
    this.#v6 = v6;
    this.#machines4 = machines4;
    this.#machines6 = machines6;
    this.#self4 = self.includes(":") ? -1 : parseIPv4(self) ?? -1;
    this.#self6 = self.includes(":") ? parseIPv6(self) ?? undefined : undefined;
    this.#router = router;
    this.#entries = entries;
  }

  /** An empty table for our address: every lookup misses. */
  static empty(selfAddress: string): RouteTable {
    return RouteTable.build({
      selfPeerId: "",
      selfAddress,
      machines: [],
      isOwnerLive: () => true,
    });
  }

  /** Builds the table; keys that are not canonical IPs and values without `PeerID` are skipped. */
  static build(input: RouteInput): RouteTable {
    const v4 = new Map<number, Route>();
    const v6 = new Map<string, Route>();
    const machines4 = new Set<number>();
    const machines6 = new Set<string>();
    const entries: RouteEntry[] = [];
    const liveness = new Map<string, boolean>();
    const resolve = (peerId: string | undefined, checkLive: boolean): Route => {
      if (peerId === undefined) return RouteMiss.NO_ROUTE;
      if (peerId === input.selfPeerId) return RouteMiss.SELF;
      if (!checkLive) return peerId;
      let live = liveness.get(peerId);
      if (live === undefined) liveness.set(peerId, live = input.isOwnerLive(peerId));
      return live ? peerId : RouteMiss.OWNER_NOT_LIVE;
    };
    const put = (key: string, route: Route) => {
      const v4key = key.includes(":") ? -1 : parseIPv4(key);
      if (v4key !== null && v4key >= 0) v4.set(v4key, route);
      else v6.set(key, route);
    };
    const fromMachines = new Map<string, string | undefined>();
    for (const [key, value] of input.machines) {
      const canonical = canonicalKey(key);
      if (canonical === null) continue;
      const peerId = peerIdOf(value) || undefined;
      fromMachines.set(key, peerId);
      if (canonical.includes(":")) machines6.add(canonical);
      else machines4.add(parseIPv4(canonical)!);
    }
    const staticPeers = input.staticPeers ?? new Map<string, string>();
    const useStatic = staticPeers.size > 0;
    if (useStatic) {
      for (const [key, peerId] of staticPeers) {
        const canonical = canonicalKey(key);
        if (canonical === null) continue;
        const route = resolve(peerId, false);
        put(canonical, route);
        entries.push(entryOf(canonical, peerId, route, "static"));
      }
    } else {
      for (const [key, peerId] of fromMachines) {
        const route = resolve(peerId, true);
        put(key, route);
        entries.push(entryOf(key, peerId ?? null, route, "machines"));
      }
    }
    let router: Route | undefined;
    if (input.router) {
      const key = canonicalKey(input.router);
      if (key !== null) {
        router = useStatic
          ? resolve(staticPeers.get(key), false)
          : resolve(fromMachines.get(key), true);
      }
    }
    entries.sort((a, b) => a.address < b.address ? -1 : a.address > b.address ? 1 : 0);
    return new RouteTable(v4, v6, machines4, machines6, input.selfAddress, router, entries);
  }

  /** Number of routed addresses (including those that currently miss). */
  get size(): number {
    return this.#v4.size + this.#v6.size;
  }

  /** Every address of the table with its peer or status, sorted by address. */
  entries(): readonly RouteEntry[] {
    return this.#entries;
  }

  /** Route of an IPv4 packet from `src` to `dst` (big-endian u32 addresses). */
  routeIPv4(src: number, dst: number): Route {
    if (dst === this.#self4) return RouteMiss.SELF;
    if (this.#router !== undefined && src === this.#self4 && !this.#machines4.has(dst)) {
      return this.#router;
    }
    return this.#v4.get(dst) ?? RouteMiss.NO_ROUTE;
  }

  /**
   * Route of the IPv6 packet at `offset` of `bytes` (a header of 40 bytes is present). An
   * IPv4-mapped destination is looked up as IPv4, as Go prints it dotted.
   */
  routeIPv6(bytes: Uint8Array, offset: number): Route {
    const dstText = formatIPv6(bytes, offset + 24);
    const fromSelf = this.#self6 !== undefined && sameBytes(bytes, offset + 8, this.#self6);
    if (!dstText.includes(":")) {
      const dst = parseIPv4(dstText)!;
      if (dst === this.#self4) return RouteMiss.SELF;
      return this.#v4.get(dst) ?? RouteMiss.NO_ROUTE;
    }
    if (this.#self6 !== undefined && sameBytes(bytes, offset + 24, this.#self6)) {
      return RouteMiss.SELF;
    }
    if (this.#router !== undefined && fromSelf && !this.#machines6.has(dstText)) {
      return this.#router;
    }
    return this.#v6.get(dstText) ?? RouteMiss.NO_ROUTE;
  }
}

/**
 * The key when it is an IP in canonical text, else null: Go looks keys up by `dst.String()`, so
 * only canonical text can ever match.
 *
 * @example
 * ```ts
 * canonicalKey("fd00::1"); // "fd00::1"
 * canonicalKey("fd00:0::1"); // null
 * ```
 */
export function canonicalKey(key: string): string | null {
  if (key.includes(":")) {
    const bytes = parseIPv6(key);
    return bytes !== null && formatIPv6(bytes) === key ? key : null;
  }
  const v4 = parseIPv4(key);
  return v4 !== null && formatIPv4(v4) === key ? key : null;
}

function entryOf(
  address: string,
  peerId: string | null,
  route: Route,
  source: RouteEntry["source"],
): RouteEntry {
  const status = typeof route === "string"
    ? "ok"
    : route === RouteMiss.OWNER_NOT_LIVE
    ? "owner-not-live"
    : route === RouteMiss.SELF
    ? "self"
    : "invalid";
  return { address, peerId, status, source };
}

function sameBytes(bytes: Uint8Array, offset: number, other: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) if (bytes[offset + i] !== other[i]) return false;
  return true;
}
