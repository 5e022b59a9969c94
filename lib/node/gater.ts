/** Which peers and addresses libp2p may talk to: the blacklist and the VPN's own range. */
import type { ConnectionGater, MultiaddrConnection, PeerId } from "@libp2p/interface";
import type { Multiaddr } from "@multiformats/multiaddr";
import { type Cidr, cidrContains, parseCidr } from "../net/ip.ts";
import { InputError } from "../util/errors.ts";

/** Why a connection or dial was refused. */
export type RefusalReason = "blacklistedPeer" | "blacklistedAddress" | "blockedAddress";

/**
 * The refusal rules: `blacklist` entries are CIDRs, bare addresses or peer IDs (Go EdgeVPN's
 * `--blacklist`); `blockedCidrs` are ranges libp2p must never use, e.g. the VPN's own subnet.
 *
 * @example
 * ```ts
 * const rules = new GaterRules(["10.9.0.0/16", "12D3KooWBad…"]);
 * rules.setBlockedCidrs(["10.1.0.0/24"]);
 * rules.addressRefusal("10.1.0.5"); // "blockedAddress"
 * ```
 */
export class GaterRules {
  readonly #nets: Cidr[] = [];
  readonly #peers = new Set<string>();
  #blocked: { text: string; cidr: Cidr }[] = [];

  constructor(blacklist: readonly string[] = []) {
    for (const entry of blacklist) {
      const text = entry.trim();
      if (text === "") continue;
      if (/^[0-9a-fA-F:.]+(\/\d+)?$/.test(text) && (text.includes(".") || text.includes(":"))) {
        this.#nets.push(gaterCidr(text));
      } else {
        this.#peers.add(text);
      }
    }
  }

  /** Replaces the blocked ranges (CIDR text); throws `CIDR_INVALID` on a bad entry. */
  setBlockedCidrs(cidrs: readonly string[]): void {
    this.#blocked = cidrs.map((text) => ({ text, cidr: gaterCidr(text) }));
  }

  /** The blocked ranges as given. */
  get blockedCidrs(): string[] {
    return this.#blocked.map((b) => b.text);
  }

  /** Why `peerId` is refused, or undefined. */
  peerRefusal(peerId: string): RefusalReason | undefined {
    return this.#peers.has(peerId) ? "blacklistedPeer" : undefined;
  }

  /** Why the IP address `ip` is refused, or undefined. */
  addressRefusal(ip: string): RefusalReason | undefined {
    if (this.#blocked.some((b) => cidrContains(b.cidr, ip))) return "blockedAddress";
    if (this.#nets.some((n) => cidrContains(n, ip))) return "blacklistedAddress";
    return undefined;
  }

  /** Why a multiaddr is refused (its IP, or its `/p2p/` peer), or undefined. */
  multiaddrRefusal(ma: Multiaddr): RefusalReason | undefined {
    for (const c of ma.getComponents()) {
      if ((c.name === "ip4" || c.name === "ip6") && c.value !== undefined) {
        const r = this.addressRefusal(c.value);
        if (r) return r;
      } else if (c.name === "p2p" && c.value !== undefined) {
        const r = this.peerRefusal(c.value);
        if (r) return r;
      }
    }
    return undefined;
  }
}

/**
 * A libp2p connection gater applying `rules`; `onRefused` is told about every refusal.
 *
 * @example
 * ```ts
 * const gater = createConnectionGater(new GaterRules(["10.0.0.0/8"]), (r) => console.log(r));
 * ```
 */
export function createConnectionGater(
  rules: GaterRules,
  onRefused: (reason: RefusalReason, subject: string) => void,
): ConnectionGater {
  const refuse = (reason: RefusalReason | undefined, subject: string): boolean => {
    if (reason === undefined) return false;
    onRefused(reason, subject);
    return true;
  };
  const byPeer = (peer: PeerId) => refuse(rules.peerRefusal(peer.toString()), peer.toString());
  const byConn = (conn: MultiaddrConnection) =>
    refuse(rules.multiaddrRefusal(conn.remoteAddr), conn.remoteAddr.toString());
  return {
    denyDialPeer: byPeer,
    denyDialMultiaddr: (ma) => refuse(rules.multiaddrRefusal(ma), ma.toString()),
    denyInboundConnection: byConn,
    denyOutboundConnection: (peer, conn) => byPeer(peer) || byConn(conn),
    denyInboundEncryptedConnection: (peer, conn) => byPeer(peer) || byConn(conn),
    denyOutboundEncryptedConnection: (peer, conn) => byPeer(peer) || byConn(conn),
    filterMultiaddrForPeer: (_peer, ma) => rules.multiaddrRefusal(ma) === undefined,
  };
}

// A blacklist or blocked entry: a CIDR or a bare address (a one-address network).
function gaterCidr(text: string): Cidr {
  const cidr = parseCidr(text, { bareAddress: true });
  if (cidr === null) {
    throw new InputError(
      "CIDR_INVALID",
      `Cannot parse CIDR ${
        JSON.stringify(text)
      }: expected an IPv4 or IPv6 address with an optional prefix length such as 10.1.0.0/24`,
    );
  }
  return cidr;
}
