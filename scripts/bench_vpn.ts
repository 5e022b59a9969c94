/**
 * VPN benchmark between two network namespaces, all in one run: ping RTT (p50 and p90) at
 * several rates, a single iperf3 TCP flow (with the RTT under it) and the memory of each node,
 * over the bare veth pair, wireguard-go (the userspace WireGuard users would otherwise pick),
 * our Go-compatible `/edgevpn/0.1` mode, our fast mode and, when `EDGEVPN_GO` names a Go EdgeVPN
 * v0.35 binary, Go EdgeVPN on both ends and Go EdgeVPN talking to ours. Figures are printed
 * beside their ratios to wireguard-go's and Go EdgeVPN's from the same run.
 *
 * Needs root, iperf3, ping and wireguard-go (`apt-get install iperf3 iputils-ping wireguard-go`).
 * Usage: ./deno task bench [--paths bare,wireguard-go,legacy,fast,go,go-ours]
 *   [--rates 1,5,20,100] [--ping-seconds 8] [--duration 10] [--repeats 3] [--mtu 1420]
 *   [--baseline OTHER/cli.ts] [--rounds 1]
 * `--duration 0` skips the throughput runs (RTT only), for quick iterations. `--baseline` also
 * measures our paths with the `cli.ts` of another checkout (e.g. `git worktree add /tmp/base
 * main`), right after each of ours, and prints ours as a ratio to it: an A/B in one run.
 * `--rounds N` measures every path N times, in turn, to spread the machine's load over both.
 */
import { Command } from "commander";
import { createNamespacePair, type Namespace, namespaceSkipReason, sh } from "./netns.ts";
import { type Implementation, startVpnPair } from "./vpn_pair.ts";
import { startWireguard } from "./wireguard.ts";

const ALL_PATHS = ["bare", "wireguard-go", "legacy", "fast", "go", "go-ours"];
const cli = new Command("bench_vpn")
  .option("--paths <list>", `paths to measure, of ${ALL_PATHS.join(",")}`, ALL_PATHS.join(","))
  .option("--rates <list>", "ping rates (per second) to measure the RTT at", "1,5,20,100")
  .option("--ping-seconds <s>", "how long pings run at each rate (at least 10 pings)", "8")
  .option("--duration <seconds>", "length of each iperf3 run (0: no throughput runs)", "10")
  .option("--repeats <n>", "iperf3 runs per path (RSS is read after each)", "3")
  .option("--mtu <bytes>", "MTU of the tunnels", "1420")
  .option("--baseline <cli>", "cli.ts of another checkout to compare our paths with")
  .option("--rounds <n>", "measure every path this many times, in turn", "1")
  .parse(["deno", "bench", ...Deno.args]);
const opts = cli.opts();
const PATHS = String(opts.paths).split(",");
const RATES = String(opts.rates).split(",").map(Number);
const PING_SECONDS = Number(opts.pingSeconds);
const DURATION = Number(opts.duration);
const REPEATS = DURATION > 0 ? Number(opts.repeats) : 0;
const MTU = Number(opts.mtu);
const GO_BINARY = Deno.env.get("EDGEVPN_GO") ?? "";
const BASELINE: string | undefined = opts.baseline;
const ROUNDS = Number(opts.rounds);
if (!(Number.isInteger(ROUNDS) && ROUNDS >= 1 && ROUNDS <= 20)) {
  console.error(`--rounds: expected 1 to 20, got ${opts.rounds}`);
  Deno.exit(2);
}
if (BASELINE !== undefined) {
  try {
    Deno.statSync(BASELINE);
  } catch {
    console.error(`--baseline: no file ${BASELINE}`);
    Deno.exit(2);
  }
}
const LABELS: Record<string, string> = {
  "bare": "bare veth",
  "wireguard-go": "wireguard-go",
  "legacy": "ours /edgevpn/0.1",
  "fast": "ours fast",
  "go": "Go EdgeVPN ↔ Go EdgeVPN",
  "go-ours": "Go EdgeVPN ↔ ours",
};

for (const p of PATHS) {
  if (!ALL_PATHS.includes(p)) {
    console.error(`--paths: expected some of ${ALL_PATHS.join(",")}, got ${p}`);
    Deno.exit(2);
  }
}
for (const r of RATES) {
  if (!(r > 0 && r <= 1000)) {
    console.error(`--rates: expected pings per second between 0 and 1000, got ${r}`);
    Deno.exit(2);
  }
}

interface Measure {
  path: string;
  /** RTTs by rate, in ms. */
  rtt: Map<number, number[]>;
  /** RTT before any traffic went through (1 ping/s). */
  coldRtt: number[];
  mbps: number[];
  loadedRtt: number[];
  idleRssMb?: number;
  peakRssMb?: number;
  rssAfterRunsMb?: number[];
  firstPingMs?: number;
  note?: string;
}

const quantile = (v: number[], q: number) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};

async function pingRtts(ns: Namespace, target: string, count: number, interval: number) {
  const out = await ns.run("ping", [
    "-c",
    String(count),
    "-i",
    String(interval),
    "-W",
    "1",
    target,
  ]).catch((e) => String(e));
  return [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
}

/** One iperf3 flow a → b while pinging b; returns Mbit/s and the loaded ping RTTs. */
async function transfer(a: Namespace, b: Namespace, target: string, seconds: number) {
  const server = b.spawn("iperf3", ["-s", "-1", "-B", target], { stdout: "null", stderr: "null" });
  await new Promise((r) => setTimeout(r, 300));
  const pinger = pingRtts(a, target, Math.max(5, Math.floor((seconds - 1) / 0.2)), 0.2);
  const json = await a.run("iperf3", ["-c", target, "-t", String(seconds), "-J"]);
  await server.status;
  const mbps = JSON.parse(json).end.sum_received.bits_per_second / 1e6;
  return { mbps, loaded: await pinger };
}

function rssMb(pid: number, field: "VmHWM" | "VmRSS"): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(status.match(new RegExp(`${field}:\\s+(\\d+)`))?.[1] ?? 0) / 1024;
  } catch {
    return NaN;
  }
}

const maxRss = (pids: number[], field: "VmHWM" | "VmRSS") =>
  Math.max(...pids.map((p) => rssMb(p, field)));

async function measurePath(
  path: string,
  a: Namespace,
  b: Namespace,
  target: string,
  pids: number[] = [],
): Promise<Measure> {
  const idleRssMb = pids.length ? maxRss(pids, "VmRSS") : undefined;
  const coldRtt = await pingRtts(a, target, 5, 1);
  // A node serves traffic for hours: the RTT at each rate is measured after one short
  // transfer has run through the code (for every path alike); the cold figure is printed aside.
  await transfer(a, b, target, 2);
  const rtt = new Map<number, number[]>();
  for (const rate of RATES) {
    const count = Math.max(10, Math.round(rate * PING_SECONDS));
    rtt.set(rate, await pingRtts(a, target, count, 1 / rate));
  }
  const mbps: number[] = [];
  const loadedRtt: number[] = [];
  const rssAfterRunsMb: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const t = await transfer(a, b, target, DURATION);
    mbps.push(t.mbps);
    loadedRtt.push(...t.loaded);
    if (pids.length) rssAfterRunsMb.push(maxRss(pids, "VmRSS"));
  }
  return {
    path,
    rtt,
    coldRtt,
    mbps,
    loadedRtt,
    idleRssMb,
    peakRssMb: pids.length ? maxRss(pids, "VmHWM") : undefined,
    rssAfterRunsMb: pids.length ? rssAfterRunsMb : undefined,
  };
}

async function measureVpn(
  path: string,
  sides: [Implementation, Implementation],
  protocol: "auto" | "legacy",
  a: Namespace,
  b: Namespace,
): Promise<Measure> {
  const vpn = await startVpnPair(a, b, { sides, protocol, mtu: MTU, subnet: 96 });
  try {
    // In the mixed pair only our node's memory is reported.
    const ours = vpn.children.filter((_, i) => sides[i].kind === "deno");
    const pids = (ours.length ? ours : vpn.children).map((c) => c.pid);
    const m = await measurePath(LABELS[path], a, b, vpn.addressB, pids);
    return { ...m, firstPingMs: vpn.firstPingMs };
  } finally {
    await vpn.close();
  }
}

const skip = namespaceSkipReason({ tun: true });
if (skip) {
  console.error(`cannot run the VPN benchmark: ${skip}`);
  Deno.exit(1);
}
const tools = ["iperf3", "ping", ...(PATHS.includes("wireguard-go") ? ["wireguard-go"] : [])];
for (const tool of tools) {
  await sh("sh", ["-c", `command -v ${tool}`]).catch(() => {
    console.error(
      `cannot run the VPN benchmark: ${tool} is missing (apt-get install ${
        tool === "ping" ? "iputils-ping" : tool
      })`,
    );
    Deno.exit(1);
  });
}

const notes: string[] = [];
const results: Measure[] = [];
const pair = await createNamespacePair("bench", 95);
const baseline: Implementation = { kind: "deno", cli: BASELINE };
const BASE_SUFFIX = " (baseline)";
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const path of PATHS) {
      console.error(`measuring ${LABELS[path]} …`);
      const deno: Implementation = { kind: "deno" };
      const go: Implementation = { kind: "go", binary: GO_BINARY };
      if ((path === "go" || path === "go-ours") && GO_BINARY === "") {
        notes.push(
          `${LABELS[path]}: skipped, set EDGEVPN_GO to a Go EdgeVPN v0.35 binary to measure it`,
        );
        continue;
      }
      try {
        if (path === "bare") {
          results.push(await measurePath(LABELS[path], pair.a, pair.b, pair.b.address));
        } else if (path === "wireguard-go") {
          const wg = await startWireguard(pair.a, pair.b, 97, MTU);
          try {
            results.push(await measurePath(LABELS[path], pair.a, pair.b, wg.addressB, wg.pids));
          } finally {
            await wg.close();
          }
        } else if (path === "legacy" || path === "fast") {
          const protocol = path === "legacy" ? "legacy" : "auto";
          results.push(await measureVpn(path, [deno, deno], protocol, pair.a, pair.b));
          if (BASELINE !== undefined) {
            const m = await measureVpn(path, [baseline, baseline], protocol, pair.a, pair.b);
            results.push({ ...m, path: m.path + BASE_SUFFIX });
          }
        } else if (path === "go") {
          results.push(await measureVpn(path, [go, go], "auto", pair.a, pair.b));
        } else {
          results.push(await measureVpn(path, [go, deno], "auto", pair.a, pair.b));
        }
      } catch (e) {
        notes.push(`${LABELS[path]}: failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
} finally {
  await pair.close();
}

const wg = results.find((r) => r.path === LABELS["wireguard-go"]);
const goGo = results.find((r) => r.path === LABELS["go"]);
const fmt = (n: number | undefined, digits = 0) =>
  n === undefined || isNaN(n) ? "–" : n.toFixed(digits);
const ratio = (n: number, base: number | undefined) =>
  base === undefined || isNaN(base) || isNaN(n) || base === 0 ? "–" : `${(n / base).toFixed(2)}x`;
const p50 = (r: Measure | undefined, rate: number) =>
  r ? quantile(r.rtt.get(rate) ?? [], 0.5) : NaN;

console.log(
  `\nVPN benchmark, ${
    new Date().toISOString()
  }: ${navigator.hardwareConcurrency} CPUs, MTU ${MTU}, ` +
    `pings for ${PING_SECONDS} s per rate (at least 10), ` +
    (REPEATS > 0 ? `one iperf3 TCP flow ${DURATION} s × ${REPEATS}` : "no throughput runs") +
    `${GO_BINARY ? `, Go EdgeVPN ${GO_BINARY}` : ""}\n`,
);
console.log("RTT p50 / p90 (ms) by pings per second:\n");
console.log(`| path | ${RATES.map((r) => `${r}/s`).join(" | ")} | cold (1/s) |`);
console.log(`|---|${RATES.map(() => "---:|").join("")}---:|`);
for (const r of results) {
  const cells = RATES.map((rate) => {
    const v = r.rtt.get(rate) ?? [];
    return `${fmt(quantile(v, 0.5), 3)} / ${fmt(quantile(v, 0.9), 3)}`;
  });
  console.log(`| ${r.path} | ${cells.join(" | ")} | ${fmt(quantile(r.coldRtt, 0.5), 3)} |`);
}
for (const [name, base] of [["wireguard-go", wg], ["Go EdgeVPN", goGo]] as const) {
  if (base === undefined) continue;
  console.log(`\nRTT p50 as a ratio to ${name}'s at the same rate:\n`);
  console.log(`| path | ${RATES.map((r) => `${r}/s`).join(" | ")} |`);
  console.log(`|---|${RATES.map(() => "---:|").join("")}`);
  for (const r of results) {
    if (r.path === LABELS.bare) continue;
    console.log(
      `| ${r.path} | ${RATES.map((rate) => ratio(p50(r, rate), p50(base, rate))).join(" | ")} |`,
    );
  }
}
if (BASELINE !== undefined) {
  console.log(
    `\nOurs as a ratio to the baseline (${BASELINE}) on the same path, in the same run:\n`,
  );
  console.log(
    `| path | round | ${RATES.map((r) => `RTT p50 ${r}/s`).join(" | ")} | Mbit/s | peak RSS |`,
  );
  console.log(`|---|---:|${RATES.map(() => "---:|").join("")}---:|---:|`);
  const seen = new Map<string, number>();
  for (const r of results) {
    if (r.path.endsWith(BASE_SUFFIX)) continue;
    const nth = seen.get(r.path) ?? 0;
    seen.set(r.path, nth + 1);
    const base = results.filter((b) => b.path === r.path + BASE_SUFFIX)[nth];
    if (base === undefined) continue;
    console.log(
      `| ${r.path} | ${nth + 1} | ${
        RATES.map((rate) => ratio(p50(r, rate), p50(base, rate))).join(" | ")
      } | ${ratio(quantile(r.mbps, 0.5), quantile(base.mbps, 0.5))} | ${
        ratio(r.peakRssMb ?? NaN, base.peakRssMb)
      } |`,
    );
  }
}
console.log("\nThroughput and memory (RSS of the larger of the two nodes):\n");
console.log(
  "| path | Mbit/s (median) | vs wireguard-go | vs Go EdgeVPN | RTT under load p50 (ms) | " +
    "RSS idle (MB) | peak RSS (MB) | RSS after each run (MB) | first ping (ms) |",
);
console.log("|---|---:|---:|---:|---:|---:|---:|---|---:|");
for (const r of results) {
  const mbps = quantile(r.mbps, 0.5);
  console.log(
    `| ${r.path} | ${fmt(mbps)} (${r.mbps.map((x) => fmt(x)).join(", ")}) | ` +
      `${ratio(mbps, wg && quantile(wg.mbps, 0.5))} | ` +
      `${ratio(mbps, goGo && quantile(goGo.mbps, 0.5))} | ${
        fmt(quantile(r.loadedRtt, 0.5), 3)
      } | ` +
      `${fmt(r.idleRssMb)} | ${fmt(r.peakRssMb)} | ` +
      `${r.rssAfterRunsMb ? r.rssAfterRunsMb.map((x) => fmt(x)).join(", ") : "–"} | ` +
      `${fmt(r.firstPingMs)} |`,
  );
}
if (notes.length) console.log(`\n${notes.map((n) => `- ${n}`).join("\n")}`);
Deno.exit(0);
