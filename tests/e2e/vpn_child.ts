/**
 * A VPN node in a child process for end-to-end tests and benchmarks: `deno run -A --unstable-net
 * tests/e2e/vpn_child.ts '<json>'` (usually under `ip netns exec`). Writes one JSON object per
 * line on stdout: `ready` (peerId, addrs, interface, offload), `counters` (answer to
 * SIGUSR1), and `stopped` after SIGTERM/SIGINT; then returns without `Deno.exit`, so
 * the process ending by itself proves `stop()` released everything.
 */
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
   * Serve {@link TEST_SERVICE_PROTOCOL} to members, as services and files are served (a member-only
   * stream protocol on `EdgeNode.handle`); SIGUSR2 then calls it on every peer with a route
   * and writes one `service` event per peer.
   */
  testService?: { bytes: number };
}

/** Reads everything, answers with the byte count and SHA-256 (hex) of what it read. */
export const TEST_SERVICE_PROTOCOL = "/edgevpn-test/digest/1";

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
out({
  event: "ready",
  peerId: mesh.peerId,
  addrs: mesh.node.multiaddrs(),
  interface: vpn.interfaceName,
  offload: vpn.offload,
});

async function hex(data: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function readAll(
  s: AsyncIterable<Uint8Array>,
  max: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const c of s) {
    n += c.length;
    if (n > max) throw new Error(`more than ${max} bytes`);
    chunks.push(c.slice());
  }
  const all = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    all.set(c, o);
    o += c.length;
  }
  return all;
}

const testService = config.testService;
if (testService) {
  await mesh.node.handle(TEST_SERVICE_PROTOCOL, async (s) => {
    const data = await readAll(s, testService.bytes);
    await s.write(new TextEncoder().encode(`${data.length} ${await hex(data)}`));
    await s.close();
  }, { membersOnly: true });
}

/** Calls the test service of every peer with a route; one `service` event each. */
async function callServices(bytes: number): Promise<void> {
  for (const peer of new Set(vpn.routes().flatMap((r) => r.peerId ?? []))) {
    const data = new Uint8Array(bytes);
    for (let i = 0; i < bytes; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
    try {
      const s = await mesh.node.dialProtocol(peer, TEST_SERVICE_PROTOCOL);
      const reply = (async () => new TextDecoder().decode(await readAll(s, 1024)))();
      for (let i = 0; i < bytes; i += 16384) await s.write(data.subarray(i, i + 16384));
      await s.close();
      const expected = `${bytes} ${await hex(data)}`;
      const got = await reply;
      out({ event: "service", peer, ok: got === expected, got, relayed: s.relayed });
    } catch (e) {
      out({ event: "service", peer, ok: false, error: String(e) });
    }
  }
}
const onUsr2 = () => void callServices(testService?.bytes ?? 0);
if (testService) Deno.addSignalListener("SIGUSR2", onUsr2);

const report = () =>
  out({
    event: "counters",
    ...vpn.counters(),
    links: vpn.links(),
    routes: vpn.routes(),
    node: mesh.node.counters(),
    connections: mesh.node.connections(),
    relayPeers: Object.fromEntries(mesh.node.nat.relayPeerStats()),
    relaySlots: mesh.node.nat.slots(),
    addrs: mesh.node.multiaddrs(),
    memory: Deno.memoryUsage(),
  });
Deno.addSignalListener("SIGUSR1", report);

const signal = await untilStopSignal();
const t0 = performance.now();
Deno.removeSignalListener("SIGUSR1", report);
if (testService) Deno.removeSignalListener("SIGUSR2", onUsr2);
await vpn.stop();
await mesh.stop();
out({ event: "stopped", signal, stopMs: Math.round(performance.now() - t0) });
