/**
 * Ledger benchmark: real nodes on loopback. For 5 and 10 nodes it measures how long a write
 * takes to reach every ledger (p50/p95) and the idle gossip each node originates with 100
 * entries, for our quiet protocol and for Go's full-block-every-interval scheme in the same run.
 *
 * Usage: ./deno run -A scripts/bench_ledger.ts [--nodes 5,10] [--sync 5] [--idle 30] [--writes 20]
 */
import { Command } from "commander";
import { generateNetworkConfig } from "../lib/config/token.ts";
import { createMesh, type Mesh } from "../lib/mesh/mesh.ts";

const cli = new Command("bench_ledger")
  .option("--nodes <list>", "node counts", "5,10")
  .option("--sync <seconds>", "ledger synchronisation interval", "5")
  .option("--idle <seconds>", "idle measurement window", "30")
  .option("--writes <n>", "writes timed for convergence", "20")
  .parse(["deno", "bench", ...Deno.args]);
const opts = cli.opts();
const NODES = String(opts.nodes).split(",").map(Number);
const SYNC_MS = Number(opts.sync) * 1000;
const IDLE_MS = Number(opts.idle) * 1000;
const WRITES = Number(opts.writes);
const ENTRIES = 100;

async function waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

interface Result {
  nodes: number;
  scheme: string;
  p50: number;
  p95: number;
  idleBytesPerSecond: number;
}

async function run(n: number, quiet: boolean): Promise<Result> {
  const network = generateNetworkConfig();
  const meshes: Mesh[] = [];
  const start = async (bootstrap: string[]) => {
    const mesh = await createMesh({
      node: {
        network,
        listenMaddrs: ["/ip4/127.0.0.1/tcp/0"],
        bootstrapPeers: bootstrap,
        mdns: false,
        dht: false,
      },
      ledger: { mode: "enforce", ownershipTtlMs: 3_600_000, syncIntervalMs: SYNC_MS, quiet },
    });
    await mesh.start();
    meshes.push(mesh);
  };
  try {
    await start([]);
    for (let i = 1; i < n; i++) await start(meshes[0].node.multiaddrs());
    await waitUntil(() => meshes.every((m) => m.node.topicPeers().length >= 1), 30_000, "gossip");
    // 100 entries spread over the nodes, then wait until every ledger holds them all.
    await Promise.all(meshes.map(async (m, i) => {
      for (let j = i; j < ENTRIES; j += n) {
        await m.ledger.add("bench", { [`entry-${j}`]: { Node: m.peerId, N: j } });
      }
    }));
    const full = () => meshes.every((m) => m.ledger.currentData().get("bench")?.size === ENTRIES);
    await waitUntil(full, 60_000, "the initial entries everywhere");
    await new Promise((r) => setTimeout(r, 2 * SYNC_MS));

    const before = meshes.map((m) => m.node.hub.counters.publishedBytes);
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const sent = meshes.map((m, i) => m.node.hub.counters.publishedBytes - before[i]);
    const idleBytesPerSecond = sent.reduce((a, b) => a + b, 0) / n / (IDLE_MS / 1000);

    const latencies: number[] = [];
    for (let w = 0; w < WRITES; w++) {
      const writer = meshes[Math.floor(Math.random() * n)];
      const key = `write-${w}`;
      const t0 = performance.now();
      await writer.ledger.add("bench", { [key]: w });
      await waitUntil(
        () => meshes.every((m) => m.ledger.getKey("bench", key) !== undefined),
        30_000,
        `write ${w}`,
      );
      latencies.push(performance.now() - t0);
    }
    return {
      nodes: n,
      scheme: quiet ? "quiet (ours)" : "full block every interval (Go)",
      p50: percentile(latencies, 0.5),
      p95: percentile(latencies, 0.95),
      idleBytesPerSecond,
    };
  } finally {
    await Promise.allSettled(meshes.map((m) => m.stop()));
  }
}

console.log(
  `ledger benchmark: enforce mode, ${ENTRIES} entries, sync every ${SYNC_MS / 1000} s, ` +
    `idle window ${IDLE_MS / 1000} s, ${WRITES} timed writes`,
);
const rows: Result[] = [];
for (const n of NODES) {
  for (const quiet of [true, false]) {
    const r = await run(n, quiet);
    rows.push(r);
    console.log(
      `${r.nodes} nodes, ${r.scheme}: write convergence p50 ${r.p50.toFixed(1)} ms, ` +
        `p95 ${r.p95.toFixed(1)} ms; idle gossip ${r.idleBytesPerSecond.toFixed(0)} B/s per node`,
    );
  }
}
console.log(
  "\n| nodes | scheme | write p50 (ms) | write p95 (ms) | idle B/s per node | idle vs full |",
);
console.log("|---|---|---|---|---|---|");
for (const r of rows) {
  const full = rows.find((x) => x.nodes === r.nodes && x.scheme.startsWith("full"))!;
  const ratio = r.idleBytesPerSecond / full.idleBytesPerSecond;
  console.log(
    `| ${r.nodes} | ${r.scheme} | ${r.p50.toFixed(1)} | ${r.p95.toFixed(1)} | ` +
      `${r.idleBytesPerSecond.toFixed(0)} | ${ratio === 1 ? "1" : `1/${(1 / ratio).toFixed(1)}`} |`,
  );
}
Deno.exit(0);
