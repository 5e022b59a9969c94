/**
 * VPN benchmark between two network namespaces, all in one run: a single iperf3 TCP flow and
 * ping RTT (idle and under load) over the bare veth pair, wireguard-go (the userspace WireGuard
 * users would otherwise pick), our Go-compatible `/edgevpn/0.1` mode and our fast mode, each
 * figure beside its ratio to wireguard-go; the peak RSS of each node; the time from starting
 * the second node to the first ping reply; RSS across repeated transfers.
 *
 * Needs root, iperf3, ping and wireguard-go (`apt-get install iperf3 iputils-ping wireguard-go`).
 * Usage: ./deno task bench [--duration 10] [--repeats 3] [--modes bare,wireguard-go,legacy,fast]
 */
import { Command } from "commander";
import { encodeToken, generateNetworkConfig } from "../lib/config/token.ts";
import { generateIdentity } from "../lib/crypto/identity.ts";
import { createNamespacePair, type Namespace, namespaceSkipReason, sh } from "./netns.ts";
import { startWireguard } from "./wireguard.ts";

const cli = new Command("bench_vpn")
  .option("--duration <seconds>", "length of each iperf3 run", "10")
  .option("--repeats <n>", "transfers per mode (RSS is read after each)", "3")
  .option("--modes <list>", "paths to measure", "bare,wireguard-go,legacy,fast")
  .option("--mtu <bytes>", "MTU of the tunnels", "1420")
  .parse(["deno", "bench", ...Deno.args]);
const opts = cli.opts();
const DURATION = Number(opts.duration);
const REPEATS = Number(opts.repeats);
const MODES = String(opts.modes).split(",");
const MTU = Number(opts.mtu);
const ROOT = new URL("../", import.meta.url).pathname;
// Nodes run exactly as `deno task join` runs them (same runtime flags).
const JOIN_TASK: string = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks.join;
const JOIN_ARGS = JOIN_TASK.split(/\s+/).slice(1).map((a) => a === "cli.ts" ? `${ROOT}cli.ts` : a);

interface Measure {
  path: string;
  mbps: number[];
  /** Idle RTT before any traffic went through. */
  coldRtt: number;
  idleRtt: number;
  loadedRtt: number;
  peakRssMb?: number;
  rssAfterRunsMb?: number[];
  firstPingMs?: number;
}

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
};

async function pingRtts(ns: Namespace, target: string, count: number, interval = 0.2) {
  const out = await ns.run("ping", ["-c", String(count), "-i", String(interval), "-W", "1", target])
    .catch((e) => String(e));
  return [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
}

/** One iperf3 flow a → b while pinging b; returns Mbit/s and the loaded ping RTTs. */
async function transfer(a: Namespace, b: Namespace, target: string, seconds = DURATION) {
  const server = b.spawn("iperf3", ["-s", "-1", "-B", target], { stdout: "null", stderr: "null" });
  await new Promise((r) => setTimeout(r, 300));
  const pinger = pingRtts(a, target, Math.max(5, Math.floor((seconds - 1) / 0.2)));
  const json = await a.run("iperf3", ["-c", target, "-t", String(seconds), "-J"]);
  await server.status;
  const mbps = JSON.parse(json).end.sum_received.bits_per_second / 1e6;
  return { mbps, loaded: await pinger };
}

function rssMb(pid: number, field: "VmHWM" | "VmRSS"): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(new RegExp(`${field}:\\s+(\\d+)`))?.[1] ?? 0) / 1024;
}

async function measurePath(
  path: string,
  a: Namespace,
  b: Namespace,
  target: string,
  pids: number[] = [],
): Promise<Measure> {
  const cold = await pingRtts(a, target, 20);
  // A node serves traffic for hours: its idle latency is measured after one short transfer
  // has run through the code once (for every path alike), the cold figure is printed aside.
  await transfer(a, b, target, 2);
  const idle = await pingRtts(a, target, 20);
  const mbps: number[] = [];
  const loaded: number[] = [];
  const rssAfterRunsMb: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const t = await transfer(a, b, target);
    mbps.push(t.mbps);
    loaded.push(...t.loaded);
    if (pids.length) rssAfterRunsMb.push(Math.max(...pids.map((p) => rssMb(p, "VmRSS"))));
  }
  return {
    path,
    mbps,
    coldRtt: median(cold),
    idleRtt: median(idle),
    loadedRtt: median(loaded),
    peakRssMb: pids.length ? Math.max(...pids.map((p) => rssMb(p, "VmHWM"))) : undefined,
    rssAfterRunsMb: pids.length ? rssAfterRunsMb : undefined,
  };
}

/** Starts `cli.ts join` in both namespaces; measures the time to the first ping reply. */
async function measureEdgeVpn(mode: "legacy" | "fast", a: Namespace, b: Namespace) {
  const dir = await Deno.makeTempDir({ prefix: "bench-vpn-" });
  const token = encodeToken(generateNetworkConfig());
  const ids = [await generateIdentity(), await generateIdentity()];
  const nodes = [
    { ns: a, vpn: "10.96.0.1", id: ids[0], dir: `${dir}/a` },
    { ns: b, vpn: "10.96.0.2", id: ids[1], dir: `${dir}/b` },
  ];
  for (const n of nodes) {
    await Deno.mkdir(n.dir, { recursive: true });
    await Deno.writeFile(`${n.dir}/privkey`, n.id.privateKeyProtobuf, { mode: 0o600 });
  }
  const children: Deno.ChildProcess[] = [];
  const start = (i: number) => {
    const n = nodes[i];
    const peer = nodes[1 - i];
    children.push(n.ns.spawn(Deno.execPath(), [
      ...JOIN_ARGS,
      "--token",
      token,
      "--address",
      `${n.vpn}/24`,
      "--interface",
      `evb${i}`,
      "--mtu",
      String(MTU),
      "--vpn-protocol",
      mode === "legacy" ? "legacy" : "auto",
      "--listen-maddrs",
      `/ip4/${n.ns.address}/tcp/4001`,
      "--discovery-bootstrap-peers",
      `/ip4/${peer.ns.address}/tcp/4001/p2p/${peer.id.peerId}`,
      "--mdns=false",
      "--dht=false",
      "--privkey-cache",
      "--privkey-cache-dir",
      n.dir,
      "--state-dir",
      n.dir,
      "--log-level",
      "warn",
    ], { stdout: "null", stderr: "null" }));
  };
  try {
    start(0);
    for (let i = 0; i < 100; i++) {
      if ((await a.run("ip", ["-j", "addr", "show"])).includes(nodes[0].vpn)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const t0 = performance.now();
    start(1);
    let firstPingMs = NaN;
    while (performance.now() - t0 < 60_000) {
      const ok = await a.run("ping", ["-c", "1", "-W", "0.2", nodes[1].vpn]).then(
        () => true,
        () => false,
      );
      if (ok) {
        firstPingMs = performance.now() - t0;
        break;
      }
    }
    const m = await measurePath(
      mode === "legacy" ? "edgevpn /edgevpn/0.1" : "edgevpn fast",
      a,
      b,
      nodes[1].vpn,
      children.map((c) => c.pid),
    );
    return { ...m, firstPingMs };
  } finally {
    for (const c of children) {
      try {
        c.kill("SIGTERM");
      } catch { /* gone */ }
      await c.status;
    }
    await Deno.remove(dir, { recursive: true });
  }
}

const skip = namespaceSkipReason({ tun: true });
if (skip) {
  console.error(`cannot run the VPN benchmark: ${skip}`);
  Deno.exit(1);
}
for (
  const tool of ["iperf3", "ping", ...(MODES.includes("wireguard-go") ? ["wireguard-go"] : [])]
) {
  await sh("sh", ["-c", `command -v ${tool}`]).catch(() => {
    console.error(
      `cannot run the VPN benchmark: ${tool} is missing (apt-get install ${
        tool === "ping" ? "iputils-ping" : tool
      })`,
    );
    Deno.exit(1);
  });
}

const results: Measure[] = [];
const pair = await createNamespacePair("bench", 95);
try {
  for (const mode of MODES) {
    console.error(`measuring ${mode} …`);
    if (mode === "bare") {
      results.push(await measurePath("bare veth", pair.a, pair.b, pair.b.address));
    } else if (mode === "wireguard-go") {
      const wg = await startWireguard(pair.a, pair.b, 97, MTU);
      try {
        results.push(await measurePath("wireguard-go", pair.a, pair.b, wg.addressB, wg.pids));
      } finally {
        await wg.close();
      }
    } else if (mode === "legacy" || mode === "fast") {
      results.push(await measureEdgeVpn(mode, pair.a, pair.b));
    } else {
      console.error(`unknown mode ${mode}`);
      Deno.exit(2);
    }
  }
} finally {
  await pair.close();
}

const wg = results.find((r) => r.path === "wireguard-go");
const bare = results.find((r) => r.path === "bare veth");
const fmt = (n: number | undefined, digits = 0) =>
  n === undefined || isNaN(n) ? "–" : n.toFixed(digits);
const ratio = (n: number, base: number | undefined) => base ? `${(n / base).toFixed(2)}x` : "–";
console.log(
  `\nVPN benchmark: one iperf3 TCP flow, ${DURATION} s × ${REPEATS}, MTU ${MTU}, ` +
    `${navigator.hardwareConcurrency} CPUs, ${new Date().toISOString()}\n`,
);
console.log(
  "| path | Mbit/s (median) | vs wireguard-go | RTT idle p50 (ms) | RTT loaded p50 (ms) | added RTT idle / loaded vs wireguard-go's | RTT cold p50 (ms) | peak RSS (MB) | RSS after each run (MB) | first ping (ms) |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|");
for (const r of results) {
  const mbps = median(r.mbps);
  const addedIdle = bare ? r.idleRtt - bare.idleRtt : NaN;
  const addedLoaded = bare ? r.loadedRtt - bare.loadedRtt : NaN;
  const wgAddedIdle = wg && bare ? wg.idleRtt - bare.idleRtt : NaN;
  const wgAddedLoaded = wg && bare ? wg.loadedRtt - bare.loadedRtt : NaN;
  const addedCell = r.path === "bare veth" || !wg
    ? "–"
    : `${(addedIdle / wgAddedIdle).toFixed(2)}x / ${(addedLoaded / wgAddedLoaded).toFixed(2)}x`;
  console.log(
    `| ${r.path} | ${fmt(mbps)} (${r.mbps.map((x) => fmt(x)).join(", ")}) | ${
      ratio(mbps, wg && median(wg.mbps))
    } | ` +
      `${fmt(r.idleRtt, 3)} | ${fmt(r.loadedRtt, 3)} | ${addedCell} | ${fmt(r.coldRtt, 3)} | ` +
      `${fmt(r.peakRssMb)} | ` +
      `${r.rssAfterRunsMb ? r.rssAfterRunsMb.map((x) => fmt(x)).join(", ") : "–"} | ${
        fmt(r.firstPingMs)
      } |`,
  );
}
Deno.exit(0);
