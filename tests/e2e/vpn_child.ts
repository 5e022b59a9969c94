/**
 * A VPN node in a child process for end-to-end tests and benchmarks: `deno run -A --unstable-net
 * tests/e2e/vpn_child.ts '<json>'` (usually under `ip netns exec`). Writes one JSON object per
 * line on stdout: `ready` (peerId, addrs, interface, offload), `counters` (answer to
 * SIGUSR2), and `stopped` after SIGTERM/SIGINT; then returns without `Deno.exit`, so
 * the process ending by itself proves `stop()` released everything.
 */
import { type ServicePlan, startServices } from "../../lib/commands/services.ts";
import type { NetworkConfig } from "../../lib/config/network.ts";
import type { OwnershipMode } from "../../lib/ledger/policy.ts";
import type { NatOptions } from "../../lib/node/nat.ts";
import { createMesh } from "../../lib/mesh/mesh.ts";
import { createLogger, type LogLevel } from "../../lib/util/logger.ts";
import { vpnComponentsOf } from "../../lib/vpn/components.ts";
import type { VpnOptions } from "../../lib/vpn/config.ts";
import { createVpn } from "../../lib/vpn/vpn.ts";
import { untilStopSignal } from "./node_child_helpers.ts";

/** The JSON argument. */
export interface VpnChildConfig {
  network: NetworkConfig;
  listenMaddrs?: string[];
  bootstrapPeers?: string[];
  /** Ledger ownership mode (default enforce, as the CLI). */
  mode?: OwnershipMode;
  /** Heartbeat interval (default 2 s so enforce-mode routes come up fast). */
  aliveIntervalMs?: number;
  syncIntervalMs?: number;
  vpn: VpnOptions;
  logLevel?: LogLevel;
  /** NAT traversal (relay service, relay slots, hole punching); default none. */
  nat?: NatOptions;
  /**
   * TCP services as `join --expose/--connect` runs them (the CLI's own wiring): backends this
   * node exposes and local `[ip]:port` listeners it connects to services through.
   */
  services?: ServicePlan;
}

const config = JSON.parse(Deno.args[0] ?? "{}") as VpnChildConfig;
const encoder = new TextEncoder();
const out = (event: Record<string, unknown>) =>
  Deno.stdout.writeSync(encoder.encode(JSON.stringify(event) + "\n"));
const logger = createLogger({
  level: config.logLevel ?? "warn",
  sink: (r) => console.error(JSON.stringify({ ...r, time: r.time.toISOString() })),
});

const aliveMs = config.aliveIntervalMs ?? 2_000;
const mesh = await createMesh({
  node: {
    network: config.network,
    listenMaddrs: config.listenMaddrs ?? ["/ip4/0.0.0.0/tcp/0"],
    bootstrapPeers: config.bootstrapPeers ?? [],
    mdns: false,
    dht: false,
    nat: config.nat,
    // DEBUG=libp2p:* in the test's environment shows libp2p's own logs on stderr.
    libp2pDebugLogs: Deno.env.get("DEBUG") !== undefined,
  },
  ledger: {
    mode: config.mode ?? "enforce",
    ownershipTtlMs: 0,
    syncIntervalMs: config.syncIntervalMs ?? 1_000,
  },
  alive: { intervalMs: aliveMs, scrubIntervalMs: 600_000, maxIntervalMs: 900_000 },
  logger,
});
await mesh.start();
const vpn = createVpn(vpnComponentsOf(mesh, { logger }), {
  announceIntervalMs: 1_000,
  ...config.vpn,
});
await vpn.start();
const services = config.services
  ? await startServices(mesh, config.services, {
    announceIntervalMs: 1_000,
    timeoutMs: 15_000,
    logger,
  })
  : undefined;

const report = () =>
  out({
    event: "counters",
    ...vpn.counters(),
    links: vpn.links(),
    routes: vpn.routes(),
    node: mesh.node.counters(),
    connections: mesh.node.connections(),
    staleLinks: mesh.node.staleLinks,
    relayPeers: Object.fromEntries(mesh.node.nat.relayPeerStats()),
    relaySlots: mesh.node.nat.slots(),
    services: {
      exposer: services?.exposer?.counters(),
      connectors: services?.connectors.map((c) => c.counters()) ?? [],
    },
    addrs: mesh.node.multiaddrs(),
    memory: Deno.memoryUsage(),
  });
// Both listeners go in before `ready`: a signal that beats its listener has its default action
// (SIGUSR2 and SIGTERM end the process), and Deno's first listener of a signal takes a moment
// to install. Not SIGUSR1: since Deno 2.9.2 it opens the inspector on 127.0.0.1:9229.
Deno.addSignalListener("SIGUSR2", report);
const stopSignal = untilStopSignal();
out({
  event: "ready",
  peerId: mesh.peerId,
  addrs: mesh.node.multiaddrs(),
  interface: vpn.interfaceName,
  offload: vpn.offload,
});

const signal = await stopSignal;
const t0 = performance.now();
Deno.removeSignalListener("SIGUSR2", report);
await services?.stop();
await vpn.stop();
await mesh.stop();
out({ event: "stopped", signal, stopMs: Math.round(performance.now() - t0) });
