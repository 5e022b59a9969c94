/**
 * DHCP over the ledger (Go `--dhcp`).
 *
 * Beyond Go: a node waiting for an address asks the established nodes (alive owners of a
 * `machines` entry) with a `dhcp/request/<peer ID>` key; the alive one with the lowest address
 * answers every request in one `dhcp/offers` value (see {@link serveDhcp}). One writer, whose
 * view of the machines has long converged, hands out every address: nodes joining together never
 * elect several leaders whose views differ. Without an established node (a network where every
 * node starts with `--dhcp`), or when none answered for {@link DHCP_FALLBACK_MS} (only Go nodes
 * hold addresses), Go's scheme runs: the leader of the nodes without an address takes one, and
 * offers one to each of the others.
 */
import {
  BUCKETS,
  DHCP_OFFERS_KEY,
  dhcpCodec,
  type DhcpOffers,
  dhcpOffersCodec,
  MAX_DHCP_OFFERS,
  peerIdOf,
} from "../ledger/buckets.ts";
import type { Job, Ledger } from "../ledger/ledger.ts";
import { writeFileAtomic } from "../util/atomic_file.ts";
import { EdgeVpnError, errorMessage, UsageError } from "../util/errors.ts";
import { fnv1a32, leader } from "../util/leader.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { clampTimerMs } from "../util/timer.ts";
import { cidrHosts, cidrNetwork, formatCidr, formatIPv4, parseCidr, parseIPv4 } from "../net/ip.ts";

/** Nodes count as alive for DHCP when their heartbeat is younger than this (Go: 15 min). */
export const DHCP_ALIVE_WINDOW_MS = 15 * 60_000;
/** Go polls the ledger every 5 s while waiting for an address. */
export const DHCP_POLL_MS = 5_000;
/**
 * How long a node must have held the leadership, as the ledger shows it, before it hands out
 * an address: two nodes whose views of the alive nodes differed may both claim it, and the
 * ledger needs a few exchanges to keep one claim.
 */
export const DHCP_SETTLE_MS = 3_000;
/** Prefix of every DHCP address (Go hands out `<ip>/24`). */
export const DHCP_PREFIX = 24;
/**
 * Prefix of the `dhcp` keys by which a waiting node asks the established nodes for an address:
 * `request/<peer ID>`, its value the base address asked for (a JSON string).
 */
export const DHCP_REQUEST_PREFIX = "request/";
/**
 * A waiting node that sees established nodes but no change of `dhcp/offers` this long falls
 * back to Go's election among waiting nodes (the established nodes may all be Go nodes, or ours
 * may have lost the one that answers). Generous: one ledger write took up to a minute to cross
 * fifteen nodes on two busy cores.
 */
export const DHCP_FALLBACK_MS = 120_000;
/**
 * How long a connected peer without a heartbeat in our ledger holds DHCP decisions up (its
 * ledger has not reached us yet, see {@link DhcpView.connected}).
 */
export const DHCP_CONNECTED_GRACE_MS = 15_000;
/** Fewest milliseconds between two `dhcp/offers` writes of one established node. */
export const DHCP_OFFER_GAP_MS = 1_000;

/**
 * Go's `utils.NextIP`: `base` when nothing is used, else the highest used address plus one.
 *
 * @example
 * ```ts
 * nextIP("10.1.1.0", ["1.1.0.1"]); // "1.1.0.2"
 * nextIP("10.1.1.0", []); // "10.1.1.0"
 * ```
 */
export function nextIP(base: string, used: readonly string[]): string {
  // A loop, not Math.max(...used): spreading ~130 000 arguments throws RangeError.
  let highest = -1;
  for (const ip of used) {
    const n = parseIPv4(ip);
    if (n !== null && n > highest) highest = n;
  }
  return highest < 0 ? base : formatIPv4((highest + 1) >>> 0);
}

/**
 * The address to hand out: Go's {@link nextIP} when it is free and a host address of the
 * base's /24, otherwise the lowest free host address of that /24 (Go would step outside the
 * subnet or onto its broadcast address).
 *
 * @throws {EdgeVpnError} `DHCP_EXHAUSTED` when the /24 is full.
 * @example
 * ```ts
 * nextFreeIP("10.1.0.1", ["10.1.0.1", "10.1.0.254"]); // "10.1.0.2"
 * ```
 */
export function nextFreeIP(base: string, used: readonly string[]): string {
  const subnet = parseCidr(`${base}/${DHCP_PREFIX}`);
  const hosts = subnet === null ? null : cidrHosts(subnet);
  if (subnet === null || hosts === null) {
    throw new UsageError("BAD_FLAG", `--address: DHCP needs an IPv4 base address, got ${base}`);
  }
  const taken = new Set(used.map(parseIPv4).filter((n): n is number => n !== null));
  const isFreeHost = (n: number) => n >= hosts.first && n <= hosts.last && !taken.has(n);
  const goChoice = parseIPv4(nextIP(base, used));
  if (goChoice !== null && isFreeHost(goChoice)) return formatIPv4(goChoice);
  for (let n = hosts.first; n <= hosts.last; n++) {
    if (isFreeHost(n)) return formatIPv4(n);
  }
  throw new EdgeVpnError(
    "DHCP_EXHAUSTED",
    `No free address left in ${formatCidr(cidrNetwork(subnet))}`,
  );
}

/** What one DHCP round decides. */
export type DhcpDecision =
  | { action: "wait"; why: string }
  | { action: "lead" }
  /** The leader's own address, and the offers to write first (empty: none to write). */
  | { action: "allocate"; address: string; offers: ReadonlyMap<string, string> }
  /** An address the leader offered us. */
  | { action: "accept"; address: string }
  /** Ask the established nodes for an address, and wait for their offer. */
  | { action: "request" };

/** The ledger view one DHCP round needs. */
export interface DhcpView {
  self: string;
  /** Peers with a heartbeat in the alive window. */
  alive: readonly string[];
  /** machines bucket: address → owner peer ID. */
  machines: ReadonlyMap<string, string>;
  /** Current `dhcp/leader` value (a peer ID), if any. */
  lead: string | undefined;
  /** Current `dhcp/offers` value, if any. */
  offers?: DhcpOffers;
  base: string;
  /**
   * Peers we hold a connection to. Each of them heartbeats, so one missing from `alive` means
   * its ledger has not reached us yet: our view of the machines may be empty or partial.
   */
  connected?: readonly string[];
  /**
   * Ask the established nodes (alive owners of a machine) when there are any, instead of
   * electing a leader among the waiting nodes (see {@link serveDhcp}). Off: Go's scheme only.
   */
  allocators?: boolean;
}

/**
 * One round of Go's DHCP (pure): among alive nodes without an address, the FNV leader claims
 * `dhcp/leader`; the node named there allocates the next address. Beyond Go, the leader also
 * offers an address to every other node without one, in the election's order, and a node that
 * finds an offer for itself from the current leader takes it.
 *
 * Addresses go by rank in the election (highest FNV-1a first): the node of rank `i` gets the
 * `i`-th free address, counting neither the machines' addresses nor those offered and not yet
 * taken. A node that holds the leadership while another should (their views of the alive nodes
 * differed when they claimed it) therefore never picks the address the elected leader picks for
 * itself, and two leaders with the same view offer the same addresses. Offers carry over from
 * one leader to the next while their node is alive and has no machine.
 *
 * @example
 * ```ts
 * dhcpDecision({ self: "a", alive: ["a"], machines: new Map(), lead: undefined, base: "10.1.0.1" });
 * // { action: "wait", why: "alone" }
 * ```
 */
export function dhcpDecision(view: DhcpView): DhcpDecision {
  const owners = new Set(view.machines.values());
  const alive = new Set(view.alive);
  const offers = view.offers;
  // Offers count from the current leader, or from an established node (an alive owner of a
  // machine, see serveDhcp).
  const fromAllocator = offers !== undefined && offers.Leader !== view.self &&
    owners.has(offers.Leader) && alive.has(offers.Leader);
  const offered = offers !== undefined && (offers.Leader === view.lead || fromAllocator)
    ? offers.Addresses.get(view.self)
    : undefined;
  if (offered !== undefined && isOfferable(view, offered, view.self)) {
    return { action: "accept", address: offered };
  }
  const withoutAddress = view.alive.filter((p) => !owners.has(p));
  if (view.alive.length <= 1) return { action: "wait", why: "alone" };
  if (view.connected?.some((p) => p !== view.self && !alive.has(p))) {
    // A node that had only other joiners' heartbeats took the base address, which a machine
    // of the ledger it had not received yet already held.
    return { action: "wait", why: "the ledger of connected peers has not reached us yet" };
  }
  if (view.allocators && [...owners].some((p) => p !== view.self && alive.has(p))) {
    return { action: "request" };
  }
  if (withoutAddress.length === 0) {
    return { action: "wait", why: "no heartbeat from this node yet" };
  }
  const should = leader(withoutAddress);
  if (should !== view.self && view.lead !== view.self) {
    return { action: "wait", why: `another node (${should}) assigns addresses` };
  }
  if (should === view.self && (!view.lead || !withoutAddress.includes(view.lead))) {
    return { action: "lead" };
  }
  if (view.lead !== view.self) return { action: "wait", why: "leadership not settled" };
  // A leader listed as a machine's owner (its lease was lost) still takes a new address, as Go's.
  const nodes = withoutAddress.includes(view.self)
    ? withoutAddress
    : [view.self, ...withoutAddress];
  const plan = assignAddresses(view, nodes);
  const address = plan.get(view.self)!;
  plan.delete(view.self);
  return { action: "allocate", address, offers: plan };
}

/**
 * Addresses for `nodes` (all without one): offers still pending keep theirs, the others get
 * successive free addresses in the election's order.
 */
function assignAddresses(view: DhcpView, nodes: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  const used = [...view.machines.keys()];
  const pending = new Set<string>();
  for (const [peer, address] of view.offers?.Addresses ?? []) {
    if (nodes.includes(peer) && !pending.has(address) && isOfferable(view, address, peer)) {
      out.set(peer, address);
      pending.add(address);
      used.push(address);
    }
  }
  const fresh: string[] = [];
  for (const node of electionOrder(nodes)) {
    if (out.has(node)) continue;
    let address: string;
    try {
      address = nextFreeIP(view.base, used);
    } catch (e) {
      // Fewer free addresses than nodes waiting: the others wait for a later turn, and the
      // leader takes the last address offered if none is left for it.
      if (!(e instanceof EdgeVpnError && e.code === "DHCP_EXHAUSTED")) throw e;
      if (!out.has(view.self)) {
        const last = fresh.pop();
        if (last === undefined) throw e;
        out.set(view.self, out.get(last)!);
        out.delete(last);
      }
      break;
    }
    out.set(node, address);
    fresh.push(node);
    used.push(address);
  }
  return out;
}

/** True when `address` is a host address of the base's /24 that no other machine holds. */
function isOfferable(view: DhcpView, address: string, peer: string): boolean {
  const n = parseIPv4(address);
  const subnet = parseCidr(`${view.base}/${DHCP_PREFIX}`);
  const hosts = subnet === null ? null : cidrHosts(subnet);
  if (n === null || hosts === null || formatIPv4(n) !== address) return false;
  if (n < hosts.first || n > hosts.last) return false;
  const owner = view.machines.get(address);
  return owner === undefined || owner === peer;
}

/** `nodes` in the order Go's {@link leader} prefers them: highest FNV-1a hash first. */
function electionOrder(nodes: readonly string[]): string[] {
  return nodes
    .map((node, i) => ({ node, i, hash: fnv1a32(node) }))
    .sort((a, b) => b.hash - a.hash || a.i - b.i)
    .map((e) => e.node);
}

/** The ledger view of an established node answering DHCP requests. */
export interface AllocatorView {
  self: string;
  /** Peers with a heartbeat in the alive window. */
  alive: readonly string[];
  /** machines bucket: address → owner peer ID. */
  machines: ReadonlyMap<string, string>;
  /** Requests: peer ID → base address asked for. */
  requests: ReadonlyMap<string, string>;
  /** Current `dhcp/offers` value, if any. */
  offers?: DhcpOffers;
}

/** What an established node does with the requests it sees. */
export type AllocatorPlan =
  | { action: "idle"; why: string }
  /** Write `offers`: the pending ones kept, and one for each of `unserved`. */
  | { action: "offer"; unserved: readonly string[]; offers: ReadonlyMap<string, string> };

/**
 * What an established node does about DHCP requests (pure). Only the alive owner of the lowest
 * machine address answers; each pending offer stays as it is while its node is alive
 * without a machine (it may have taken it already); each request of an alive node without a
 * machine and without an offer gets the next free address of its base's /24, in the election's
 * order, counting the machines' addresses and the pending offers. Requests for a base that is no
 * IPv4 address, or whose /24 is full, are left unanswered.
 *
 * @example
 * ```ts
 * const plan = allocatorPlan({
 *   self: "a",
 *   alive: ["a", "b"],
 *   machines: new Map([["10.1.0.1", "a"]]),
 *   requests: new Map([["b", "10.1.0.1"]]),
 * });
 * // { action: "offer", unserved: ["b"], offers: Map { "b" => "10.1.0.2" } }
 * ```
 */
export function allocatorPlan(view: AllocatorView): AllocatorPlan {
  const alive = new Set(view.alive);
  const owners = new Set(view.machines.values());
  const first = allocatorOrder(view.machines, alive)[0];
  if (first !== view.self) {
    return { action: "idle", why: "not the alive owner of the lowest machine address" };
  }
  const waiting = (peer: string) => alive.has(peer) && !owners.has(peer);
  const used = [...view.machines.keys()];
  const held = new Set(used);
  const offers = new Map<string, string>();
  for (const [peer, address] of view.offers?.Addresses ?? []) {
    if (!waiting(peer) || held.has(address) || offers.size >= MAX_DHCP_OFFERS) continue;
    const n = parseIPv4(address);
    if (n === null || formatIPv4(n) !== address) continue;
    offers.set(peer, address);
    held.add(address);
    used.push(address);
  }
  const unserved = electionOrder(
    [...view.requests.keys()].filter((p) => waiting(p) && !offers.has(p)),
  ).slice(0, MAX_DHCP_OFFERS);
  const answered: string[] = [];
  for (const peer of unserved) {
    if (offers.size >= MAX_DHCP_OFFERS) break;
    let address: string;
    try {
      address = nextFreeIP(view.requests.get(peer)!, used);
    } catch (e) {
      // A base that is no IPv4 address (UsageError), or a full /24: that request waits.
      if (e instanceof EdgeVpnError) continue;
      throw e;
    }
    offers.set(peer, address);
    used.push(address);
    answered.push(peer);
  }
  if (answered.length === 0) {
    return { action: "idle", why: unserved.length === 0 ? "no request" : "no address to offer" };
  }
  return { action: "offer", unserved: answered, offers };
}

/**
 * The alive owners of a machine, lowest address first: the order in which they answer requests.
 * Not Go's election: nodes that just took an address (usually the highest ones) would come
 * first in some views and not yet in others, and two nodes would answer at once.
 */
function allocatorOrder(
  machines: ReadonlyMap<string, string>,
  alive: ReadonlySet<string>,
): string[] {
  const lowest = new Map<string, number>();
  for (const [address, owner] of machines) {
    if (!alive.has(owner)) continue;
    const n = parseIPv4(address) ?? Infinity;
    if (!(lowest.get(owner)! <= n)) lowest.set(owner, n);
  }
  return [...lowest.keys()].sort((a, b) =>
    lowest.get(a)! - lowest.get(b)! || (a < b ? -1 : a > b ? 1 : 0)
  );
}

/** Options of {@link serveDhcp}. */
export interface DhcpServerOptions {
  /** Stops serving. */
  signal: AbortSignal;
  /** See {@link DHCP_ALIVE_WINDOW_MS}. */
  aliveWindowMs?: number;
  /** Longest pause between two looks at the ledger (it also looks on each change). */
  pollMs?: number;
  logger?: Logger;
}

/**
 * Answers the DHCP requests of waiting nodes while this node is the alive owner of the lowest
 * machine address (every VPN node runs it; one writer only: two, each with its own view of the
 * requests, offered one address twice). When that node is gone but still inside the alive
 * window, waiting nodes fall back to Go's election after {@link DHCP_FALLBACK_MS}. Resolves once
 * `signal` aborts.
 *
 * @example
 * ```ts ignore
 * const served = serveDhcp(mesh.ledger, mesh.peerId, { signal: stop.signal });
 * ```
 */
export async function serveDhcp(
  ledger: DhcpLedger,
  self: string,
  options: DhcpServerOptions,
): Promise<void> {
  const log = (options.logger ?? silentLogger).child("dhcp");
  let lastWrite = -Infinity;
  while (!options.signal.aborted) {
    let pause = options.pollMs ?? 2_000;
    try {
      const plan = allocatorPlan(allocatorViewOf(ledger, self, options.aliveWindowMs));
      if (plan.action === "offer") {
        const due = lastWrite + DHCP_OFFER_GAP_MS - Date.now();
        if (due <= 0) {
          lastWrite = Date.now();
          await ledger.add(BUCKETS.dhcp, {
            [DHCP_OFFERS_KEY]: dhcpOffersCodec.value({ Leader: self, Addresses: plan.offers }),
          });
          log.info("offered DHCP addresses", {
            requests: plan.unserved.length,
            offers: plan.offers.size,
          });
          continue;
        }
        pause = Math.min(pause, due);
      }
    } catch (e) {
      if (options.signal.aborted) break;
      log.warn("cannot answer DHCP requests", { error: errorMessage(e) });
    }
    await sleep(pause, options.signal, ledger);
  }
}

/** The ledger as {@link allocatorPlan} needs it. */
function allocatorViewOf(ledger: DhcpLedger, self: string, aliveWindowMs?: number): AllocatorView {
  const dhcp = ledger.currentData().get(BUCKETS.dhcp);
  const requests = new Map<string, string>();
  for (const [key, value] of dhcp ?? []) {
    if (!key.startsWith(DHCP_REQUEST_PREFIX)) continue;
    const base = dhcpCodec.parse(value);
    if (base) requests.set(key.slice(DHCP_REQUEST_PREFIX.length), base);
  }
  const offersText = dhcp?.get(DHCP_OFFERS_KEY);
  return {
    self,
    alive: ledger.availableNodes(aliveWindowMs ?? DHCP_ALIVE_WINDOW_MS),
    machines: machinesOf(ledger),
    requests,
    offers: offersText === undefined ? undefined : dhcpOffersCodec.parse(offersText),
  };
}

/** machines bucket: address → owner peer ID. */
function machinesOf(ledger: DhcpLedger): Map<string, string> {
  const machines = new Map<string, string>();
  for (const [ip, value] of ledger.currentData().get(BUCKETS.machines) ?? []) {
    const owner = peerIdOf(value);
    if (owner) machines.set(ip, owner);
  }
  return machines;
}

/** The ledger calls DHCP makes. */
export type DhcpLedger =
  & Pick<
    Ledger,
    "add" | "announceUpdate" | "availableNodes" | "currentData" | "delete" | "getKey" | "persist"
  >
  & Partial<Pick<Ledger, "addEventListener" | "removeEventListener">>;

/** Options of {@link obtainAddress}. */
export interface DhcpOptions {
  /** First address to hand out (the `--address` IP). */
  base: string;
  /** Directory of lease files (`--lease-dir`). */
  leaseDir: string;
  /** File name of this network's lease (`leaseFileName(network)`). */
  leaseName: string;
  signal?: AbortSignal;
  pollMs?: number;
  /** See {@link DHCP_SETTLE_MS}. */
  settleMs?: number;
  aliveWindowMs?: number;
  /** Peers connected now (see {@link DhcpView.connected}); none checked when absent. */
  connectedPeers?: () => readonly string[];
  /** See {@link DHCP_CONNECTED_GRACE_MS}. */
  connectedGraceMs?: number;
  /** See {@link DHCP_FALLBACK_MS}; 0 runs Go's scheme only. */
  fallbackMs?: number;
  logger?: Logger;
}

/**
 * Returns this node's address: the saved lease when it is still ours to use, otherwise one
 * allocated through the ledger (then saved). Resolves with the address without prefix.
 *
 * @throws {EdgeVpnError} `DHCP_ABORTED` when `signal` aborts first.
 * @example
 * ```ts ignore
 * const ip = await obtainAddress(mesh.ledger, mesh.peerId, { base: "10.1.0.1", leaseDir, leaseName });
 * ```
 */
export async function obtainAddress(
  ledger: DhcpLedger,
  self: string,
  options: DhcpOptions,
): Promise<string> {
  const log = (options.logger ?? silentLogger).child("dhcp");
  const leasePath = `${options.leaseDir.replace(/\/+$/, "")}/${options.leaseName}`;
  const leased = await readLease(leasePath, log);
  const fallbackMs = options.fallbackMs ?? DHCP_FALLBACK_MS;
  const graceMs = options.connectedGraceMs ?? DHCP_CONNECTED_GRACE_MS;
  /** Connected peers → when we first saw them connected. */
  const connectedSince = new Map<string, number>();
  // A connected peer whose heartbeat never reaches us (its clock runs ahead, so every node
  // refuses its heartbeats as from the future) must not hold DHCP up for good.
  const recentlyConnected = () => {
    const peers = options.connectedPeers?.();
    if (peers === undefined) return undefined;
    const now = Date.now();
    const current = new Set(peers);
    for (const p of connectedSince.keys()) if (!current.has(p)) connectedSince.delete(p);
    for (const p of peers) if (!connectedSince.has(p)) connectedSince.set(p, now);
    return peers.filter((p) => now - connectedSince.get(p)! < graceMs);
  };
  /** Go's scheme only: no established node answered (or fallbackMs is 0). */
  let goScheme = fallbackMs <= 0;
  const view = (): DhcpView => {
    const machines = machinesOf(ledger);
    const lead = ledger.getKey(BUCKETS.dhcp, "leader");
    const offersText = ledger.getKey(BUCKETS.dhcp, DHCP_OFFERS_KEY);
    return {
      self,
      alive: ledger.availableNodes(options.aliveWindowMs ?? DHCP_ALIVE_WINDOW_MS),
      machines,
      lead: lead === undefined ? undefined : dhcpCodec.parse(lead) || undefined,
      offers: offersText === undefined ? undefined : dhcpOffersCodec.parse(offersText),
      base: options.base,
      connected: recentlyConnected(),
      allocators: !goScheme,
    };
  };
  if (leased) {
    const owner = view().machines.get(leased);
    if (owner === undefined || owner === self) {
      log.info("reusing the DHCP lease", { address: leased });
      return leased;
    }
    log.warn("the leased address now belongs to another node; asking for a new one", {
      address: leased,
      owner,
    });
  }
  const saveLease = async (address: string) => {
    await Deno.mkdir(options.leaseDir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(leasePath, new TextEncoder().encode(address), { mode: 0o600 });
  };
  let claim: Job | undefined;
  let request: Job | undefined;
  let requestedAt: number | undefined;
  /** True once an established node offered addresses while we waited. */
  let served = false;
  let offersAtRequest: string | undefined;
  const requestKey = `${DHCP_REQUEST_PREFIX}${self}`;
  let lastWhy = "";
  let leadingSince: number | undefined;
  /** The nodes waiting for an address when `leadingSince` was set. */
  let waitingThen = "";
  const settleMs = options.settleMs ?? DHCP_SETTLE_MS;
  try {
    while (true) {
      if (options.signal?.aborted) {
        throw new EdgeVpnError("DHCP_ABORTED", "Stopped while waiting for a DHCP address");
      }
      const seen = view();
      const decision = dhcpDecision(seen);
      log.debug("DHCP round", {
        alive: seen.alive.length,
        addressed: seen.machines.size,
        lead: seen.lead,
        action: decision.action,
      });
      let pause = options.pollMs ?? DHCP_POLL_MS;
      // An established node answers: the offers changed while we waited.
      const offersNow = ledger.getKey(BUCKETS.dhcp, DHCP_OFFERS_KEY);
      if (requestedAt !== undefined && offersNow !== offersAtRequest) served = true;
      if (decision.action === "request") {
        leadingSince = undefined;
        if (request === undefined) {
          log.info("asking the established nodes for a DHCP address");
          // Written again whenever it is missing, until we have an address.
          request = ledger.announceUpdate(2_000, BUCKETS.dhcp, requestKey, options.base);
          requestedAt = Date.now();
          offersAtRequest = ledger.getKey(BUCKETS.dhcp, DHCP_OFFERS_KEY);
        } else if (!served && Date.now() - requestedAt! >= fallbackMs) {
          // Established nodes, none of which answers: Go nodes, or ours all gone.
          log.warn("no established node answered the DHCP request; electing a leader as Go does");
          goScheme = true;
          continue;
        }
        const left = Math.max(0, requestedAt! + fallbackMs - Date.now());
        await sleep(Math.min(pause, left), options.signal, ledger);
        continue;
      }
      if (decision.action === "accept") {
        await saveLease(decision.address);
        log.info("obtained a DHCP address offered by the leader", {
          address: decision.address,
          leader: seen.lead,
        });
        return decision.address;
      }
      if (decision.action === "allocate") {
        // Settled once our claim held, and no new node appeared waiting, for settleMs: nodes
        // joining together are heard one after another (their heartbeats cross the network at
        // its pace), and one heard after we hand out addresses could lead on its own view.
        const waiting = waitingNodes(seen).join(",");
        if (waiting !== waitingThen) leadingSince = undefined;
        waitingThen = waiting;
        leadingSince ??= Date.now();
        if (Date.now() - leadingSince >= settleMs) {
          // The offers go out before our own machine entry: whoever sees that entry (and so
          // becomes the next leader) sees the addresses already offered.
          if (decision.offers.size > 0) {
            await ledger.add(BUCKETS.dhcp, {
              [DHCP_OFFERS_KEY]: dhcpOffersCodec.value({
                Leader: self,
                Addresses: decision.offers,
              }),
            });
            log.info("offered DHCP addresses", { offers: decision.offers.size });
          }
          await saveLease(decision.address);
          log.info("obtained a DHCP address", { address: decision.address });
          return decision.address;
        }
        pause = Math.min(pause, settleMs);
      } else {
        leadingSince = undefined;
        if (decision.action === "lead") {
          claim?.stop();
          claim = ledger.persist(5_000, 15_000, BUCKETS.dhcp, "leader", self);
        } else if (decision.why !== lastWhy) {
          lastWhy = decision.why;
          log.info(`waiting for a DHCP address: ${decision.why}`);
        }
      }
      await sleep(pause, options.signal, ledger);
    }
  } finally {
    claim?.stop();
    request?.stop();
    if (request !== undefined) {
      // The offer we took stays pending while we have no machine: the request may go.
      await ledger.delete(BUCKETS.dhcp, requestKey).catch(() => false);
    }
  }
}

/** The alive nodes without a machine, sorted. */
function waitingNodes(view: DhcpView): string[] {
  const owners = new Set(view.machines.values());
  return view.alive.filter((p) => !owners.has(p)).sort();
}

async function readLease(path: string, log: Logger): Promise<string | undefined> {
  let text: string;
  try {
    text = (await Deno.readTextFile(path)).trim();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      log.warn("cannot read the DHCP lease", { path, error: errorMessage(e) });
    }
    return undefined;
  }
  if (parseIPv4(text) === null) {
    log.warn("ignoring a DHCP lease that is not an IPv4 address", { path });
    return undefined;
  }
  return text;
}

/**
 * Waits `ms`, or less when the ledger changes (a machine took an address, a leader was
 * claimed): ten nodes joining at once take their addresses one after another, and a fixed
 * poll would add its whole period to each turn.
 */
function sleep(ms: number, signal: AbortSignal | undefined, ledger: DhcpLedger): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, clampTimerMs(ms));
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      ledger.removeEventListener?.("change", onChange);
      resolve();
    }
    function onChange(e: Event) {
      if ((e as CustomEvent<{ contentChanged?: boolean }>).detail?.contentChanged) done();
    }
    signal?.addEventListener("abort", done, { once: true });
    ledger.addEventListener?.("change", onChange);
  });
}
