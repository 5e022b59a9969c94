/** VPN end-to-end support: N namespaces on a bridge, VPN child nodes, small TCP/ping tools. */
import type { Namespace } from "../../scripts/netns.ts";
export { createNamespaceLan, type NamespaceLan } from "../../scripts/netns.ts";
import { type ChildEvent, type ChildNode, spawnJsonChild } from "./node_child_helpers.ts";
import type { VpnChildConfig } from "./vpn_child.ts";

const CHILD = new URL("./vpn_child.ts", import.meta.url).pathname;
const TCP_TOOL = new URL("./vpn_tcp_tool.ts", import.meta.url).pathname;

/** One JSON line of the child. */
export type VpnChildEvent = ChildEvent;

/** A running VPN child node. */
export interface VpnChild extends ChildNode {
  /** Asks for a fresh counters snapshot (SIGUSR2) and resolves with it. */
  counters(): Promise<ChildCounters>;
}

/** The `counters` event of the child. */
export interface ChildCounters {
  vpn: import("../../lib/vpn/counters.ts").VpnCounters;
  tun: import("../../ffi/tun.ts").TunStats;
  links: import("../../lib/vpn/link.ts").LinkInfo[];
  routes: import("../../lib/vpn/routes.ts").RouteEntry[];
  node: import("../../lib/node/node.ts").NodeCounters;
  connections: ReturnType<import("../../lib/node/node.ts").EdgeNode["connections"]>;
  staleLinks: import("../../lib/node/stale_links.ts").StaleLinkCounters;
  /** Per-peer counters of this node's relay service. */
  relayPeers: Record<string, import("../../lib/node/relay.ts").RelayPeerStats>;
  relaySlots: import("../../lib/node/autorelay.ts").RelaySlot[];
  /** Counters of the child's `services` (exposer when it exposes any, one per connector). */
  services: {
    exposer?: import("../../lib/services/expose.ts").ServiceExposerCounters;
    connectors: import("../../lib/services/connect.ts").ServiceConnectorCounters[];
  };
  addrs: string[];
}

/**
 * Starts `vpn_child.ts` in namespace `netns` (or here when undefined).
 *
 * @example
 * ```ts
 * const child = spawnVpnChild({ network, vpn: { address: "10.1.0.1/24" } }, "evv1");
 * await child.waitFor((e) => e.event === "ready", "ready");
 * ```
 */
export function spawnVpnChild(
  config: VpnChildConfig,
  netns?: string,
  denoFlags: string[] = [],
): VpnChild {
  const child = spawnJsonChild(CHILD, config, {
    wrap: netns ? ["ip", "netns", "exec", netns] : [],
    denoFlags,
  });
  return {
    ...child,
    async counters() {
      const start = child.events.length;
      child.process.kill("SIGUSR2");
      const e = await child.waitFor(
        (ev) => ev.event === "counters" && child.events.indexOf(ev) >= start,
        "a counters snapshot",
        10_000,
      );
      return e as unknown as ChildCounters;
    },
  };
}

/** Pings `address` from `ns` until one reply arrives; throws after `attempts` tries. */
export async function pingUntilReply(ns: Namespace, address: string, attempts = 40): Promise<void> {
  let last = "";
  for (let i = 0; i < attempts; i++) {
    try {
      await ns.run("ping", ["-c", "1", "-W", "1", address]);
      return;
    } catch (e) {
      last = String(e);
    }
  }
  throw new Error(`no ping reply from ${address} in ${ns.name}: ${last}`);
}

/** The JSON config of a VPN child with test-friendly defaults. */
export function childConfig(
  network: VpnChildConfig["network"],
  vpn: VpnChildConfig["vpn"],
  extra: Partial<VpnChildConfig> = {},
): VpnChildConfig {
  return { network, listenMaddrs: ["/ip4/0.0.0.0/tcp/4001"], bootstrapPeers: [], vpn, ...extra };
}

/** What each end of a TCP transfer counted and hashed. */
export interface TransferResult {
  sent: { bytes: number; sha256: string };
  received: { bytes: number; sha256: string };
}

/**
 * Sends `bytes` pseudo-random bytes over TCP from namespace `from` to `toAddress:port`, where a
 * receiver started in `to` listens; returns both ends' counts and hashes. Both tools are killed
 * after `timeoutMs`, so a stalled tunnel fails the transfer instead of hanging it.
 *
 * @example
 * ```ts
 * const { sent, received } = await transferOverTcp(pair.a, pair.b, "10.1.0.2", 5 << 20);
 * assert.equal(received.sha256, sent.sha256);
 * ```
 */
export async function transferOverTcp(
  from: Namespace,
  to: Namespace,
  toAddress: string,
  bytes: number,
  options: { port?: number; timeoutMs?: number; rateBytes?: number } = {},
): Promise<TransferResult> {
  const port = String(options.port ?? 7000);
  const signal = AbortSignal.timeout(options.timeoutMs ?? 60_000);
  const run = (ns: Namespace, args: string[]) =>
    ns.spawn(Deno.execPath(), ["run", "-A", TCP_TOOL, ...args], { signal });
  const lastLine = (out: Deno.CommandOutput, what: string) => {
    const dec = new TextDecoder();
    if (!out.success) {
      throw new Error(`${what} failed (${out.code}): ${dec.decode(out.stderr).trim()}`);
    }
    return JSON.parse(dec.decode(out.stdout).trim().split("\n").at(-1)!);
  };
  const receiver = run(to, ["recv", toAddress, port]).output();
  const rate = options.rateBytes === undefined ? [] : [String(options.rateBytes)];
  const sender = run(from, ["send", toAddress, port, String(bytes), ...rate]).output();
  const [sent, received] = await Promise.all([sender, receiver]);
  return {
    sent: lastLine(sent, `sender in ${from.name}`),
    received: lastLine(received, `receiver in ${to.name}`),
  };
}

/**
 * Asks `child` for counters until `done` holds of them; fails after `attempts` snapshots (every
 * 500 ms), showing `show` of the last one.
 */
export async function countersUntil(
  child: VpnChild,
  done: (c: ChildCounters) => boolean,
  what: string,
  show: (c: ChildCounters) => unknown,
  attempts = 40,
): Promise<ChildCounters> {
  let last: ChildCounters | undefined;
  for (let i = 0; i < attempts; i++) {
    last = await child.counters();
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${what}: not seen; last: ${JSON.stringify(last && show(last))}`);
}
