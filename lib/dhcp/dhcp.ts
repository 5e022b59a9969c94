/** DHCP over the ledger (Go `--dhcp`): the leader of the nodes without an address hands one out. */
import { BUCKETS, dhcpCodec, peerIdOf } from "../ledger/buckets.ts";
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
  | { action: "allocate"; address: string };

/** The ledger view one DHCP round needs. */
export interface DhcpView {
  self: string;
  /** Peers with a heartbeat in the alive window. */
  alive: readonly string[];
  /** machines bucket: address → owner peer ID. */
  machines: ReadonlyMap<string, string>;
  /** Current `dhcp/leader` value (a peer ID), if any. */
  lead: string | undefined;
  base: string;
}

/**
 * One round of Go's DHCP (pure): among alive nodes without an address, the FNV leader claims
 * `dhcp/leader`; the node named there allocates the next address.
 *
 * @example
 * ```ts
 * dhcpDecision({ self: "a", alive: ["a"], machines: new Map(), lead: undefined, base: "10.1.0.1" });
 * // { action: "wait", why: "alone" }
 * ```
 */
export function dhcpDecision(view: DhcpView): DhcpDecision {
  const owners = new Set(view.machines.values());
  const withoutAddress = view.alive.filter((p) => !owners.has(p));
  if (view.alive.length <= 1) return { action: "wait", why: "alone" };
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
  // A node that holds the leadership while another should (their views of the alive nodes
  // differed when they claimed it) may be allocating at the same moment as that one: each
  // skips one free address per node ranked before it in the election, so that two concurrent
  // leaders never pick the same address. The elected leader, rank 0, picks as Go does.
  const rank = Math.max(0, electionOrder(withoutAddress).indexOf(view.self));
  const used = [...view.machines.keys()];
  let address = nextFreeIP(view.base, used);
  for (let i = 0; i < rank; i++) {
    used.push(address);
    address = nextFreeIP(view.base, used);
  }
  return { action: "allocate", address };
}

/** `nodes` in the order Go's {@link leader} prefers them: highest FNV-1a hash first. */
function electionOrder(nodes: readonly string[]): string[] {
  return nodes
    .map((node, i) => ({ node, i, hash: fnv1a32(node) }))
    .sort((a, b) => b.hash - a.hash || a.i - b.i)
    .map((e) => e.node);
}

/** The ledger calls DHCP makes. */
export type DhcpLedger =
  & Pick<Ledger, "availableNodes" | "currentData" | "getKey" | "persist">
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
  logger?: Logger;
}

/**
 * Returns this node's address: the saved lease when it is still ours to use, otherwise one
 * allocated through the ledger (then saved). Resolves with the address without prefix.
 *
 * @throws {EdgeVpnError} `DHCP_ABORTED` when `signal` aborts first.
 * @example
 * ```ts
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
  const view = (): DhcpView => {
    const machines = new Map<string, string>();
    for (const [ip, value] of ledger.currentData().get(BUCKETS.machines) ?? []) {
      const owner = peerIdOf(value);
      if (owner) machines.set(ip, owner);
    }
    const lead = ledger.getKey(BUCKETS.dhcp, "leader");
    return {
      self,
      alive: ledger.availableNodes(options.aliveWindowMs ?? DHCP_ALIVE_WINDOW_MS),
      machines,
      lead: lead === undefined ? undefined : dhcpCodec.parse(lead) || undefined,
      base: options.base,
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
  let claim: Job | undefined;
  let lastWhy = "";
  let leadingSince: number | undefined;
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
      if (decision.action === "allocate") {
        leadingSince ??= Date.now();
        if (Date.now() - leadingSince >= settleMs) {
          await Deno.mkdir(options.leaseDir, { recursive: true, mode: 0o700 });
          await writeFileAtomic(leasePath, new TextEncoder().encode(decision.address), {
            mode: 0o600,
          });
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
  }
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
