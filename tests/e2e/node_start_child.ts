/**
 * A node in a child process for end-to-end tests: `deno run -A --unstable-net
 * tests/e2e/node_start_child.ts '<json>'`. Writes one JSON object per line on stdout:
 * `ready` (peerId, addrs), `message` (from, text), `peer:connect`, `peer:discovery`, and
 * `stopped` after SIGTERM/SIGINT; then returns without `Deno.exit`, so the process ending by
 * itself proves `stop()` released everything. Lines on stdin are published on the hub.
 */
import type { NetworkConfig } from "../../lib/config/network.ts";
import { createNode } from "../../lib/node/node.ts";
import type { DhtMode } from "../../lib/node/options.ts";
import { createLogger } from "../../lib/util/logger.ts";
import { untilStopSignal } from "./node_child_helpers.ts";

/** The JSON argument. */
export interface ChildConfig {
  network: NetworkConfig;
  listenMaddrs?: string[];
  bootstrapPeers?: string[];
  mdns?: boolean;
  dht?: boolean;
  dhtMode?: DhtMode;
  discoveryIntervalMs?: number;
  privkeyCacheDir?: string;
  /** Publish `hello from <peerId>` this often (0: never). */
  publishEveryMs?: number;
  logLevel?: "debug" | "info" | "warn" | "error";
}

const config = JSON.parse(Deno.args[0] ?? "{}") as ChildConfig;
const encoder = new TextEncoder();
const out = (event: Record<string, unknown>) =>
  Deno.stdout.writeSync(encoder.encode(JSON.stringify(event) + "\n"));

const node = await createNode({
  network: config.network,
  listenMaddrs: config.listenMaddrs ?? ["/ip4/0.0.0.0/tcp/0"],
  bootstrapPeers: config.bootstrapPeers ?? [],
  mdns: config.mdns ?? false,
  dht: config.dht ?? false,
  dhtMode: config.dhtMode,
  discoveryIntervalMs: config.discoveryIntervalMs,
  privkeyCache: config.privkeyCacheDir !== undefined,
  privkeyCacheDir: config.privkeyCacheDir,
  logger: createLogger({
    level: config.logLevel ?? "warn",
    sink: (r) => console.error(JSON.stringify({ ...r, time: r.time.toISOString() })),
  }),
});
node.hub.addEventListener("message", (e) => {
  out({ event: "message", from: e.detail.from, text: new TextDecoder().decode(e.detail.data) });
});
node.addEventListener("peer:connect", (e) => out({ event: "peer:connect", ...e.detail }));
node.addEventListener("peer:discovery", (e) => out({ event: "peer:discovery", ...e.detail }));
await node.start();
// Listen for the stop signals before saying ready: a parent may signal as soon as it reads it.
const stopped = untilStopSignal();
out({ event: "ready", peerId: node.peerId, addrs: node.multiaddrs() });

let publisher: ReturnType<typeof setInterval> | undefined;
if (config.publishEveryMs) {
  publisher = setInterval(() => {
    node.hub.publish(encoder.encode(`hello from ${node.peerId}`)).catch((e) =>
      console.error(String(e))
    );
  }, config.publishEveryMs);
}

const stdinDone = (async () => {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of Deno.stdin.readable) {
    buffered += decoder.decode(chunk, { stream: true });
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line) await node.hub.publish(encoder.encode(line)).catch((e) => console.error(String(e)));
    }
  }
})();

const signal = await stopped;
const t0 = performance.now();
clearInterval(publisher);
await node.stop();
out({ event: "stopped", signal, stopMs: Math.round(performance.now() - t0) });
// stdin stays open when the parent keeps it; do not wait for it.
void stdinDone;
