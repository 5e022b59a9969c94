/** Names of the network's machines under a zone of ours (`<hostname>.edgevpn.`), derived from the `machines` bucket. */
import { machineCodec } from "../ledger/buckets.ts";
import { parseIP } from "../net/ip.ts";
import { domainName } from "./records.ts";

/** A live machine of the zone: its peer, its names and its VPN addresses. */
export interface ZoneMachine {
  peerId: string;
  /** Names that resolve to this machine, best first (absolute, lower case). */
  names: string[];
  ipv4: string[];
  ipv6: string[];
}

/** What the zone says about a name. */
export type ZoneLookup =
  /** The name is not under the zone. */
  | { kind: "outside" }
  /** The zone's apex. */
  | { kind: "apex" }
  /** A machine's name. */
  | { kind: "machine"; machine: ZoneMachine }
  /** Under the zone but no machine's (or a name several machines claim). */
  | { kind: "none" };

/**
 * Checks a zone name given by the user: a domain name other than the root; the result is
 * lower case with its trailing dot. Empty text gives undefined (no zone).
 *
 * @throws {Error} naming what was expected.
 * @example
 * ```ts
 * parseZone("EdgeVPN"); // "edgevpn."
 * parseZone(""); // undefined
 * ```
 */
export function parseZone(text: string): string | undefined {
  if (text === "") return undefined;
  const name = domainName(text.toLowerCase());
  if (name === undefined || name === ".") {
    throw new Error(
      `expected a domain name such as edgevpn or mesh.example.com, got ${JSON.stringify(text)}`,
    );
  }
  return name;
}

/**
 * The DNS label of a hostname: its first dot-separated part, lower case, every run of
 * characters other than `a-z`, `0-9` and `-` replaced by one `-`, no `-` at either end, at
 * most 63 characters; undefined when nothing is left.
 *
 * @example
 * ```ts
 * hostnameLabel("Web_Server.local"); // "web-server"
 * hostnameLabel("___"); // undefined
 * ```
 */
export function hostnameLabel(hostname: string): string | undefined {
  const first = hostname.split(".")[0].toLowerCase();
  const label = first.replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 63)
    .replace(/-+$/, "");
  return label === "" ? undefined : label;
}

/**
 * The machine names of a zone. Rules (documented in the README):
 * - every live machine is `<peer id in lower case>.<zone>`;
 * - a machine whose hostname gives a label (see {@link hostnameLabel}) is also
 *   `<label>.<zone>`; when several peers give the same label, none has the bare name and each
 *   is `<label>-<last 6 characters of its peer id>.<zone>` instead;
 * - a name that two peers would still share answers for neither (a member cannot take over
 *   another's name, only make it ambiguous);
 * - A answers with the machine's IPv4 VPN addresses, AAAA with its IPv6 ones; reverse
 *   (PTR) names of those addresses answer with the machine's first name.
 *
 * @example
 * ```ts
 * const zone = new MachineZone("edgevpn.");
 * zone.rebuild(new Map([["10.1.0.5", '{"PeerID":"12D3KooWA","Hostname":"web"}']]), () => true);
 * zone.lookup("web.edgevpn."); // { kind: "machine", machine: { ipv4: ["10.1.0.5"], ... } }
 * ```
 */
export class MachineZone {
  readonly zone: string;
  #names = new Map<string, ZoneMachine>();
  #reverse = new Map<string, ZoneMachine>();
  #machines: ZoneMachine[] = [];

  constructor(zone: string) {
    this.zone = zone;
  }

  /** Live machines, by peer ID order. */
  get machines(): readonly ZoneMachine[] {
    return this.#machines;
  }

  /**
   * Rebuilds the names from the `machines` bucket (VPN address → machine JSON); machines
   * whose peer `isLive` rejects are left out.
   */
  rebuild(machines: ReadonlyMap<string, string>, isLive: (peerId: string) => boolean): void {
    const byPeer = new Map<string, { hostname: string; ipv4: string[]; ipv6: string[] }>();
    for (const [address, valueText] of machines) {
      const bytes = parseIP(address);
      const machine = machineCodec.parse(valueText);
      if (!bytes || machine.PeerID === "" || !isLive(machine.PeerID)) continue;
      const entry = byPeer.get(machine.PeerID) ??
        { hostname: machine.Hostname, ipv4: [], ipv6: [] };
      byPeer.set(machine.PeerID, entry);
      if (bytes.length === 4) entry.ipv4.push(address);
      else entry.ipv6.push(address);
      if (entry.hostname === "") entry.hostname = machine.Hostname;
    }
    const peers = [...byPeer.keys()].sort();
    const byLabel = new Map<string, string[]>();
    for (const peer of peers) {
      const label = hostnameLabel(byPeer.get(peer)!.hostname);
      if (label !== undefined) byLabel.set(label, [...byLabel.get(label) ?? [], peer]);
    }
    const claims = new Map<string, Set<string>>();
    const claim = (label: string, peer: string) => {
      const name = `${label}.${this.zone}`;
      if (domainName(name) === undefined) return;
      claims.set(name, (claims.get(name) ?? new Set()).add(peer));
    };
    for (const [label, owners] of byLabel) {
      for (const peer of owners) {
        claim(owners.length === 1 ? label : `${label}-${peer.slice(-6).toLowerCase()}`, peer);
      }
    }
    for (const peer of peers) claim(peer.toLowerCase(), peer);

    const built = new Map<string, ZoneMachine>();
    for (const peer of peers) {
      const { ipv4, ipv6 } = byPeer.get(peer)!;
      built.set(peer, {
        peerId: peer,
        names: [],
        ipv4: ipv4.sort(),
        ipv6: ipv6.sort(),
      });
    }
    this.#names = new Map();
    for (const [name, owners] of claims) {
      if (owners.size !== 1) continue;
      const machine = built.get([...owners][0])!;
      machine.names.push(name);
      this.#names.set(name, machine);
    }
    this.#reverse = new Map();
    for (const machine of built.values()) {
      // The hostname's name first, the peer ID's (always there) last.
      const byId = `${machine.peerId.toLowerCase()}.${this.zone}`;
      machine.names.sort((a, b) => Number(a === byId) - Number(b === byId));
      for (const address of [...machine.ipv4, ...machine.ipv6]) {
        if (machine.names.length > 0) this.#reverse.set(reverseName(address), machine);
      }
    }
    this.#machines = [...built.values()].filter((m) => m.names.length > 0);
  }

  /** What the zone says about `name` (absolute, any case). */
  lookup(name: string): ZoneLookup {
    const lower = name.toLowerCase();
    if (lower === this.zone) return { kind: "apex" };
    if (!lower.endsWith(`.${this.zone}`)) return { kind: "outside" };
    const machine = this.#names.get(lower);
    return machine ? { kind: "machine", machine } : { kind: "none" };
  }

  /** The machine whose VPN address has the reverse name `name` (`5.0.1.10.in-addr.arpa.`). */
  reverse(name: string): ZoneMachine | undefined {
    return this.#reverse.get(name.toLowerCase());
  }
}

/**
 * The reverse-lookup name of an IP address (`in-addr.arpa.` or `ip6.arpa.`).
 *
 * @example
 * ```ts
 * reverseName("10.1.0.5"); // "5.0.1.10.in-addr.arpa."
 * ```
 */
export function reverseName(address: string): string {
  const bytes = parseIP(address)!;
  if (bytes.length === 4) return `${[...bytes].reverse().join(".")}.in-addr.arpa.`;
  const nibbles: string[] = [];
  for (const b of bytes) nibbles.push((b >> 4).toString(16), (b & 0xf).toString(16));
  return `${nibbles.reverse().join(".")}.ip6.arpa.`;
}
