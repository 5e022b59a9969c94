/**
 * Scale benchmark: 50 real node processes on loopback (`edgevpn api`: the node of `start` plus the
 * HTTP API that the benchmark reads it through; no VPN, no DHT, no mDNS, each bootstrapping from a
 * few nodes started before it) carrying the ledger entries of a simulated 200-node network
 * (machines, services, DNS records and users: 800 entries, written through the nodes' APIs).
 * Measures: how long until every node holds the whole network's entries; convergence after a
 * write (latency from the write's reply to its arrival on each node: p50 and p95 over all nodes
 * and writes); idle traffic per node (bytes/s in + out over an idle minute, /api/metrics); RSS per
 * node. Prints one table row per implementation: ours, and Go EdgeVPN with the same scenario when
 * EDGEVPN_GO names its binary.
 *
 * Usage: deno run -A scripts/bench_scale.ts [--nodes 50] [--simulated 200] [--writes 10]
 *   [--idle 60]
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    nodes: { type: "string", default: "50" },
    simulated: { type: "string", default: "200" },
    writes: { type: "string", default: "10" },
    idle: { type: "string", default: "60" },
  },
});
const NODES = Number(values.nodes);
const SIMULATED = Number(values.simulated);
const WRITES = Number(values.writes);
const IDLE_S = Number(values.idle);
const CLI = new URL("../cli.ts", import.meta.url).pathname;
const GO = Deno.env.get("EDGEVPN_GO");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Proc {
  child: Deno.ChildProcess;
  api: string;
  maddr: string;
  peerId: string;
}

interface Row {
  impl: string;
  startS: number;
  fillS: number;
  p50: number;
  p95: number;
  idleBps: number;
  rssMean: number;
  rssMax: number;
}

/** A free TCP port on loopback (closed again, for the node to take). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function getJson<T>(url: string, timeoutMs = 10_000): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`${url}: ${res.status}`);
  }
  return await res.json() as T;
}

async function put(url: string): Promise<void> {
  const res = await fetch(url, { method: "PUT", signal: AbortSignal.timeout(10_000) });
  await res.body?.cancel();
  if (!res.ok) throw new Error(`PUT ${url}: ${res.status}`);
}

function rssMiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+)/)?.[1] ?? NaN) / 1024;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

async function scenario(impl: "ours" | "go", token: string): Promise<Row> {
  const dir = await Deno.makeTempDir({ prefix: `evscale-${impl}` });
  const procs: Proc[] = [];
  try {
    const t0 = performance.now();
    // Go EdgeVPN dials its bootstrap peers once, at start: each node starts after the nodes it
    // bootstraps from are up. The first one is given an address nobody listens on, so that no
    // node falls back to the public bootstrap peers.
    const nobody = "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf";
    for (let i = 0; i < NODES; i++) {
      const apiPort = freePort();
      const p2pPort = freePort();
      const earlier = procs.length === 0
        ? [nobody]
        : [procs[0], ...pickSome(procs.slice(1), 2)].map((p) => p.maddr);
      const home = `${dir}/${i}`;
      await Deno.mkdir(home, { recursive: true });
      const env: Record<string, string> = {
        HOME: home,
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        EDGEVPNTOKEN: token,
        EDGEVPNLISTENMADDRS: `/ip4/127.0.0.1/tcp/${p2pPort}`,
        EDGEVPNBOOTSTRAPPEERS: earlier.join(","),
        EDGEVPNDHT: "false",
        EDGEVPNMDNS: "false",
      };
      const [cmd, args] = impl === "go"
        ? [GO!, ["api", "--listen", `127.0.0.1:${apiPort}`]]
        : [Deno.execPath(), [
          "run",
          "-A",
          "--v8-flags=--max-semi-space-size=1",
          CLI,
          "api",
          "--listen",
          `127.0.0.1:${apiPort}`,
          "--api-auth=false",
          "--state-dir",
          home,
        ]];
      for (const k of ["DENO_DIR", "npm_config_cache", "XDG_CACHE_HOME"]) {
        const v = Deno.env.get(k);
        if (v) env[k] = v;
      }
      if (impl === "ours" && !env.DENO_DIR) env.DENO_DIR = `${Deno.env.get("HOME")}/.cache/deno`;
      const child = new Deno.Command(cmd, {
        args,
        env,
        clearEnv: true,
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      const api = `http://127.0.0.1:${apiPort}`;
      const deadline = Date.now() + 60_000;
      let peerId = "";
      while (!peerId) {
        peerId = await getJson<{ NodeID: string }>(`${api}/api/summary`, 2000)
          .then((s) => s.NodeID, () => "");
        if (!peerId) {
          if (Date.now() > deadline) throw new Error(`${impl} node ${i} did not start`);
          await sleep(100);
        }
      }
      procs.push({ child, api, maddr: `/ip4/127.0.0.1/tcp/${p2pPort}/p2p/${peerId}`, peerId });
    }
    const startS = (performance.now() - t0) / 1000;
    console.log(`${impl}: ${NODES} nodes up in ${startS.toFixed(1)} s`);

    // The simulated network's entries, written through the nodes in turn.
    const t1 = performance.now();
    const writes: Promise<void>[] = [];
    for (let k = 0; k < SIMULATED; k++) {
      const api = procs[k % NODES].api;
      const id = `sim${String(k).padStart(4, "0")}`;
      const entries: [string, string, unknown][] = [
        ["machines", id, {
          PeerID: id,
          Hostname: `host-${k}`,
          OS: "linux",
          Arch: "amd64",
          Address: `10.1.${k >> 8}.${k & 255}`,
          Version: "sim",
        }],
        ["services", `svc-${k}`, { PeerID: id, Name: `svc-${k}` }],
        ["dns", `^host-${k}\\.mesh\\.$`, { "1": `10.1.${k >> 8}.${k & 255}` }],
        ["users", id, { PeerID: id, Timestamp: new Date().toISOString() }],
      ];
      for (const [bucket, key, value] of entries) {
        writes.push(
          put(
            `${api}/api/ledger/${bucket}/${encodeURIComponent(key)}/${
              encodeURIComponent(JSON.stringify(value))
            }`,
          ),
        );
      }
      if (writes.length >= 40) await Promise.all(writes.splice(0));
    }
    await Promise.all(writes);
    const full = async (p: Proc) => {
      const s = await getJson<{ Machines: number; Services: number; Users: number }>(
        `${p.api}/api/summary`,
      );
      return s.Machines >= SIMULATED && s.Services >= SIMULATED && s.Users >= SIMULATED;
    };
    const fillDeadline = Date.now() + 300_000;
    for (const p of procs) {
      while (!(await full(p).catch(() => false))) {
        if (Date.now() > fillDeadline) throw new Error(`${impl}: entries did not spread in 300 s`);
        await sleep(500);
      }
    }
    const fillS = (performance.now() - t1) / 1000;
    console.log(
      `${impl}: the ${4 * SIMULATED} entries reached every node in ${fillS.toFixed(1)} s`,
    );

    // Convergence after one write at a time: latency of its arrival on every other node.
    const latencies: number[] = [];
    for (let w = 0; w < WRITES; w++) {
      const writer = procs[Math.floor(Math.random() * NODES)];
      const key = `k${w}`;
      await put(`${writer.api}/api/ledger/scale/${key}/v${w}`);
      const start = performance.now();
      const waiting = new Set(procs.filter((p) => p !== writer));
      const deadline = start + 120_000;
      while (waiting.size > 0) {
        if (performance.now() > deadline) throw new Error(`${impl}: write ${w} did not converge`);
        await Promise.all([...waiting].map(async (p) => {
          const v = await getJson<string>(`${p.api}/api/ledger/scale/${key}`).catch(() => "");
          if (v !== "") {
            waiting.delete(p);
            latencies.push(performance.now() - start);
          }
        }));
        await sleep(100);
      }
      await sleep(1000);
    }

    // Idle traffic and memory.
    await sleep(5000);
    const bytes = async () =>
      await Promise.all(
        procs.map((p) =>
          getJson<{ TotalIn: number; TotalOut: number }>(`${p.api}/api/metrics`)
            .then((m) => m.TotalIn + m.TotalOut)
        ),
      );
    const before = await bytes();
    const tIdle = performance.now();
    await sleep(IDLE_S * 1000);
    const afterBytes = await bytes();
    const idleS = (performance.now() - tIdle) / 1000;
    const idleBps = afterBytes.reduce((a, b, i) => a + (b - before[i]), 0) / NODES / idleS;
    const rss = procs.map((p) => rssMiB(p.child.pid));
    return {
      impl,
      startS,
      fillS,
      p50: percentile(latencies, 0.5),
      p95: percentile(latencies, 0.95),
      idleBps,
      rssMean: rss.reduce((a, b) => a + b, 0) / rss.length,
      rssMax: Math.max(...rss),
    };
  } finally {
    for (const p of procs) {
      try {
        p.child.kill("SIGKILL");
      } catch { /* gone */ }
      await p.child.status;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function pickSome<T>(items: T[], n: number): T[] {
  const copy = [...items];
  const out: T[] = [];
  while (out.length < n && copy.length) {
    out.push(copy.splice(Math.floor(Math.random() * copy.length), 1)[0]);
  }
  return out;
}

const token = new TextDecoder().decode(
  (await new Deno.Command(Deno.execPath(), { args: ["run", "-A", CLI, "-g", "-b"] }).output())
    .stdout,
).trim();
const rows: Row[] = [await scenario("ours", token)];
if (GO) rows.push(await scenario("go", token));
else console.log("Go EdgeVPN skipped: set EDGEVPN_GO to its v0.35 binary to compare");

const head = [
  "implementation",
  "start (s)",
  "entries everywhere (s)",
  "convergence p50 / p95 (ms)",
  "idle bytes/s per node",
  "RSS per node mean / max (MiB)",
];
const cells = rows.map((r) => [
  r.impl === "go" ? "Go EdgeVPN" : "ours",
  r.startS.toFixed(1),
  r.fillS.toFixed(1),
  `${r.p50.toFixed(0)} / ${r.p95.toFixed(0)}`,
  r.idleBps.toFixed(0),
  `${r.rssMean.toFixed(0)} / ${r.rssMax.toFixed(0)}`,
]);
if (rows.length === 2) {
  const [o, g] = rows;
  cells.push([
    "ours vs Go",
    `${(o.startS / g.startS).toFixed(2)}x`,
    `${(o.fillS / g.fillS).toFixed(2)}x`,
    `${(o.p50 / g.p50).toFixed(2)}x / ${(o.p95 / g.p95).toFixed(2)}x`,
    `${(o.idleBps / g.idleBps).toFixed(2)}x`,
    `${(o.rssMean / g.rssMean).toFixed(2)}x / ${(o.rssMax / g.rssMax).toFixed(2)}x`,
  ]);
}
console.log(
  `\n${NODES} node processes on loopback, ${SIMULATED} simulated nodes' entries (${
    4 * SIMULATED
  }), ${WRITES} writes, ${IDLE_S} s idle, ${
    new Date().toISOString().slice(0, 10)
  }, ${navigator.hardwareConcurrency} CPUs\n`,
);
const widths = head.map((h, c) => Math.max(h.length, ...cells.map((r) => r[c].length)));
const line = (r: string[]) => `| ${r.map((v, c) => v.padStart(widths[c])).join(" | ")} |`;
console.log(line(head));
console.log(`| ${widths.map((w) => "-".repeat(w - 1) + ":").join(" | ")} |`);
for (const r of cells) console.log(line(r));
