/**
 * Scale benchmark (`deno task bench:scale`): 50 real node processes on loopback (`edgevpn api`:
 * the node of `start` plus the HTTP API the benchmark reads it through; no VPN, DHT, mDNS or UPnP)
 * carrying the ledger entries of a simulated 200-node network (machines, services, DNS records and
 * users: 800 entries, written through the nodes' APIs). Prints one table row per implementation:
 * ours, and Go EdgeVPN in the same scenario when EDGEVPN_GO names its v0.35 binary.
 *
 * Measured: how long the nodes take to start; how long until every node holds the simulated
 * network's entries; convergence after a write (from the write's reply to its arrival on each
 * other node, p50 and p95 over all nodes and writes); idle traffic per node (bytes in + out per
 * second over an idle window, /api/metrics) and idle CPU per node (/proc); RSS per node.
 *
 * Topology: nodes start in waves of a few; each bootstraps from three random nodes of earlier
 * waves (Go dials its bootstrap peers once, at start), so the graph is connected and no node is a
 * hub. The first node bootstraps from an address nobody listens on, so that no node falls back to
 * public bootstrap peers. Every process is killed when the benchmark ends, fails or is
 * interrupted (SIGINT, SIGTERM).
 *
 * The simulated entries name 200 owners that have no key (`PeerID` `sim0001`…, users keyed by
 * them), written through the real nodes, so every node runs `--ownership observe`: entries are
 * signed and checked as under `enforce` (the default), the ownership violation is counted and the
 * entry kept. Under `enforce` they would be dropped, as entries forged for other owners should be.
 *
 * Usage: deno run -A scripts/bench_scale.ts [--nodes 50] [--simulated 200] [--writes 10]
 *   [--idle 60] [--wave 5] [--only ours|go] [--keep (the nodes' logs)]
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    nodes: { type: "string", default: "50" },
    simulated: { type: "string", default: "200" },
    writes: { type: "string", default: "10" },
    idle: { type: "string", default: "60" },
    wave: { type: "string", default: "5" },
    only: { type: "string" },
    fill: { type: "string", default: "first" },
    keep: { type: "boolean", default: false },
  },
});
const NODES = Number(values.nodes);
const SIMULATED = Number(values.simulated);
const WRITES = Number(values.writes);
const IDLE_S = Number(values.idle);
const WAVE = Number(values.wave);
for (
  const [name, v, min] of [
    ["nodes", NODES, 2],
    ["simulated", SIMULATED, 0],
    [
      "writes",
      WRITES,
      1,
    ],
    ["idle", IDLE_S, 1],
    ["wave", WAVE, 1],
  ] as const
) {
  if (!Number.isInteger(v) || v < min) {
    console.error(`bench_scale: --${name} must be an integer of at least ${min}, got ${v}`);
    Deno.exit(2);
  }
}
const FILL = values.fill;
if (FILL !== "first" && FILL !== "all") {
  console.error(`bench_scale: --fill must be "first" or "all", got ${JSON.stringify(FILL)}`);
  Deno.exit(2);
}
if (values.only !== undefined && values.only !== "ours" && values.only !== "go") {
  console.error(`bench_scale: --only must be "ours" or "go", got ${JSON.stringify(values.only)}`);
  Deno.exit(2);
}
const CLI = new URL("../cli.ts", import.meta.url).pathname;
const GO = Deno.env.get("EDGEVPN_GO");
/** The V8 flags of the `join`/`edgevpn` tasks in deno.json. */
const V8_FLAGS = "--v8-flags=--max-semi-space-size=1,--no-concurrent-array-buffer-sweeping";
/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICKS_PER_S = 100;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every child process alive and every temporary directory, for the cleanup on any exit path. */
const live = new Set<Deno.ChildProcess>();
const tempDirs = new Set<string>();

function killAll(): void {
  for (const child of live) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }
}

async function cleanup(): Promise<void> {
  killAll();
  await Promise.all([...live].map((c) => c.status.catch(() => {})));
  live.clear();
  if (values.keep) console.error(`bench_scale: nodes' logs kept in ${[...tempDirs].join(" ")}`);
  else for (const dir of tempDirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
  tempDirs.clear();
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    console.error(`bench_scale: ${signal}, stopping every node`);
    cleanup().finally(() => Deno.exit(130));
  });
}

interface Proc {
  child: Deno.ChildProcess;
  api: string;
  maddr: string;
  peerId: string;
  log: string;
}

interface Row {
  impl: string;
  startS: number;
  fillS: number;
  /** Nodes that held every simulated entry by the deadline. */
  filled: number;
  /** Arrivals of single writes still missing at their deadline. */
  missed: number;
  p50: number;
  p95: number;
  idleBps: number;
  idleCpu: number;
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

/** How long one node may take to start (spawn to API answer). */
const START_TIMEOUT_MS = 600_000;
/** How long every node may take to hold the simulated entries. */
const FILL_TIMEOUT_MS = 300_000;
/** How long a single write may take to reach every node. */
const WRITE_TIMEOUT_MS = 60_000;

/** How long one API request may take: generous, a busy machine answers late (not a measurement). */
const REQUEST_TIMEOUT_MS = 60_000;

async function getJson<T>(url: string, timeoutMs = REQUEST_TIMEOUT_MS): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`${url}: ${res.status}`);
  }
  return await res.json() as T;
}

async function put(url: string): Promise<void> {
  const res = await fetch(url, { method: "PUT", signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  await res.body?.cancel();
  if (!res.ok) throw new Error(`PUT ${url}: ${res.status}`);
}

function procStatus(pid: number, field: string): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(new RegExp(`${field}:\\s+(\\d+)`))?.[1] ?? NaN);
}

/** User + system CPU seconds a process has used (/proc/<pid>/stat fields 14 and 15). */
function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

function pickSome<T>(items: readonly T[], n: number): T[] {
  const copy = [...items];
  const out: T[] = [];
  while (out.length < n && copy.length) {
    out.push(copy.splice(Math.floor(Math.random() * copy.length), 1)[0]);
  }
  return out;
}

function loadAverage(): string {
  return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
}

async function tail(path: string): Promise<string> {
  return (await Deno.readTextFile(path).catch(() => "")).slice(-3000);
}

/** Starts one node and returns once its API answers. */
async function startNode(
  impl: "ours" | "go",
  token: string,
  home: string,
  bootstrap: string[],
): Promise<Proc> {
  const apiPort = freePort();
  const p2pPort = freePort();
  await Deno.mkdir(home, { recursive: true });
  const env: Record<string, string> = {
    HOME: home,
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    EDGEVPNTOKEN: token,
    EDGEVPNLISTENMADDRS: `/ip4/127.0.0.1/tcp/${p2pPort}`,
    EDGEVPNBOOTSTRAPPEERS: bootstrap.join(","),
    EDGEVPNDHT: "false",
    EDGEVPNMDNS: "false",
    EDGEVPNNATMAP: "false",
    EDGEVPNOWNERSHIP: "observe",
  };
  for (const k of ["DENO_DIR", "npm_config_cache", "XDG_CACHE_HOME"]) {
    const v = Deno.env.get(k);
    if (v) env[k] = v;
  }
  // The node's HOME is its own directory: it must still find the module cache (no download).
  if (impl === "ours" && !env.DENO_DIR) env.DENO_DIR = `${Deno.env.get("HOME")}/.cache/deno`;
  const listen = `127.0.0.1:${apiPort}`;
  const [cmd, args] = impl === "go" ? [GO!, ["api", "--listen", listen]] : [Deno.execPath(), [
    "run",
    "-A",
    V8_FLAGS,
    CLI,
    "api",
    "--listen",
    listen,
    "--api-auth=false",
    "--state-dir",
    home,
  ]];
  // Go logs on stdout, ours on stderr: both go straight into the node's log (read when a node
  // fails), through a shell that execs the node, so the pid is the node's and no log passes
  // through this process.
  const log = `${home}/node.log`;
  const child = new Deno.Command("/bin/sh", {
    args: ["-c", 'exec "$0" "$@" >"$EDGEVPN_BENCH_LOG" 2>&1', cmd, ...args],
    env: { ...env, EDGEVPN_BENCH_LOG: log },
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  live.add(child);
  void child.status.then(() => live.delete(child));
  const api = `http://${listen}`;
  // Not a measurement, so generous: with 50 nodes on two cores shared with other work (load 64),
  // a node took 90 s from spawn to its first log line, and its API answered only later.
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const peerId = await getJson<{ NodeID: string }>(`${api}/api/summary`, 10_000)
      .then((s) => s.NodeID, () => "");
    if (peerId) {
      return { child, api, maddr: `/ip4/127.0.0.1/tcp/${p2pPort}/p2p/${peerId}`, peerId, log };
    }
    const exited = !live.has(child);
    if (exited || Date.now() > deadline) {
      const why = exited ? "exited" : `did not answer in ${START_TIMEOUT_MS / 1000} s`;
      throw new Error(`${impl} node in ${home} ${why}:\n${await tail(log)}`);
    }
    await sleep(200);
  }
}

/** Our nodes' ledger sync counters (Prometheus /metrics), summed: what the traffic was made of. */
async function syncCounters(procs: Proc[]): Promise<string> {
  const sums = new Map<string, number>();
  await Promise.all(procs.map(async (p) => {
    const res = await fetch(`${p.api}/metrics`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
      .catch(() => undefined);
    const text = res ? await res.text().catch(() => "") : "";
    for (
      const m of text.matchAll(
        /^edgevpn_ledger_(sync|messages_dropped)_total\{(\w+)="(\w+)"\} (\d+)/gm,
      )
    ) {
      const name = `${m[1] === "sync" ? "" : "dropped "}${m[3]}`;
      sums.set(name, (sums.get(name) ?? 0) + Number(m[4]));
    }
  }));
  return [...sums].map(([k, v]) => `${k} ${v}`).join(", ");
}

/** The four entries of simulated node `k`: [bucket, key, value]. */
function simulatedEntries(k: number): [string, string, unknown][] {
  const id = `sim${String(k).padStart(4, "0")}`;
  const ip = `10.1.${k >> 8}.${k & 255}`;
  return [
    ["machines", ip, {
      PeerID: id,
      Hostname: `host-${k}`,
      OS: "linux",
      Arch: "amd64",
      Address: ip,
      Version: "sim",
    }],
    ["services", `svc-${k}`, { PeerID: id, Name: `svc-${k}` }],
    ["dns", `^host-${k}\\.mesh\\.$`, { "1": ip }],
    ["users", id, { PeerID: id, Timestamp: new Date().toISOString() }],
  ];
}

async function scenario(impl: "ours" | "go", token: string): Promise<Row> {
  const dir = await Deno.makeTempDir({ prefix: `evscale-${impl}-` });
  tempDirs.add(dir);
  const procs: Proc[] = [];
  try {
    const writeSimulated = async (through: Proc[]) => {
      const writes: Promise<void>[] = [];
      for (let k = 0; k < SIMULATED; k++) {
        const api = through[k % through.length].api;
        for (const [bucket, key, value] of simulatedEntries(k)) {
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
    };
    const t0 = performance.now();
    const nobody = "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf";
    procs.push(await startNode(impl, token, `${dir}/0`, [nobody]));
    // By default the simulated network exists before the others join: its entries are written
    // through the first node, and every other node receives them as it joins.
    if (FILL === "first") await writeSimulated(procs);
    while (procs.length < NODES) {
      // Waves grow with the nodes already up (1, 2, 4, then WAVE), so that early nodes do not
      // all hang off the first one.
      const earlier = [...procs];
      const wave = Math.min(WAVE, earlier.length, NODES - earlier.length);
      procs.push(
        ...await Promise.all(
          Array.from({ length: wave }, (_, j) =>
            startNode(
              impl,
              token,
              `${dir}/${earlier.length + j}`,
              pickSome(earlier, 3).map((p) => p.maddr),
            )),
        ),
      );
    }
    const startS = (performance.now() - t0) / 1000;
    console.log(`${impl}: ${NODES} nodes up in ${startS.toFixed(1)} s (load ${loadAverage()})`);

    // With --fill all, the entries are written through every node in turn once all are up.
    const t1 = performance.now();
    if (FILL === "all") await writeSimulated(procs);
    const holdsAll = async (p: Proc) => {
      const s = await getJson<{ Machines: number; Services: number; Users: number }>(
        `${p.api}/api/summary`,
      );
      return s.Machines >= SIMULATED && s.Services >= SIMULATED && s.Users >= SIMULATED;
    };
    // A node that never gets every entry is reported in the table, not fatal: it is a finding.
    const fillDeadline = Date.now() + FILL_TIMEOUT_MS;
    let filled = 0;
    for (const p of procs) {
      while (!(await holdsAll(p).catch(() => false)) && Date.now() < fillDeadline) await sleep(500);
      if (await holdsAll(p).catch(() => false)) filled++;
      else {
        const s = await getJson<unknown>(`${p.api}/api/summary`).catch((e) => String(e));
        console.log(
          `${impl}: a node lacks entries after ${FILL_TIMEOUT_MS / 1000} s: ${JSON.stringify(s)}`,
        );
      }
    }
    const fillS = (performance.now() - t1) / 1000;
    console.log(
      `${impl}: the ${4 * SIMULATED} entries reached ${filled} of ${NODES} nodes in ${
        fillS.toFixed(1)
      } s`,
    );

    // Convergence after one write at a time: latency of its arrival on every other node, polled
    // every 100 ms (the figures include the polling's granularity and the API's answer time).
    const latencies: number[] = [];
    let missed = 0;
    for (let w = 0; w < WRITES; w++) {
      const writer = procs[Math.floor(Math.random() * NODES)];
      const key = `k${w}`;
      await put(`${writer.api}/api/ledger/scale/${key}/v${w}`);
      const start = performance.now();
      const waiting = new Set(procs.filter((p) => p !== writer));
      const deadline = start + WRITE_TIMEOUT_MS;
      while (waiting.size > 0 && performance.now() < deadline) {
        await Promise.all([...waiting].map(async (p) => {
          const res = await fetch(`${p.api}/api/ledger/scale/${key}`, {
            signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
          }).catch(() => undefined);
          const text = res ? await res.text().catch(() => "") : "";
          if (res?.ok && text.includes(`v${w}`)) {
            waiting.delete(p);
            latencies.push(performance.now() - start);
          }
        }));
        await sleep(100);
      }
      missed += waiting.size;
      // A missing arrival counts as later than any: the percentiles stay honest.
      for (const _ of waiting) latencies.push(Infinity);
      await sleep(1000);
    }
    console.log(
      `${impl}: ${WRITES} writes, ${latencies.length - missed} arrivals, ${missed} missing after ${
        WRITE_TIMEOUT_MS / 1000
      } s`,
    );

    // Idle traffic and CPU, then memory.
    await sleep(5000);
    const bytes = () =>
      Promise.all(
        procs.map((p) =>
          getJson<{ TotalIn: number; TotalOut: number }>(`${p.api}/api/metrics`)
            .then((m) => m.TotalIn + m.TotalOut)
        ),
      );
    const cpu = () => procs.map((p) => cpuSeconds(p.child.pid));
    const bytesBefore = await bytes();
    const cpuBefore = cpu();
    const tIdle = performance.now();
    await sleep(IDLE_S * 1000);
    const cpuAfter = cpu();
    const bytesAfter = await bytes();
    const idleS = (performance.now() - tIdle) / 1000;
    const perNode = (after: number[], before: number[]) =>
      after.reduce((a, b, i) => a + (b - before[i]), 0) / NODES / idleS;
    const rss = procs.map((p) => procStatus(p.child.pid, "VmRSS") / 1024);
    if (impl === "ours") {
      console.log(
        `ours: ledger sync since start, summed over the nodes: ${await syncCounters(procs)}`,
      );
    }
    return {
      impl,
      startS,
      fillS,
      filled,
      missed,
      p50: percentile(latencies, 0.5),
      p95: percentile(latencies, 0.95),
      idleBps: perNode(bytesAfter, bytesBefore),
      idleCpu: 100 * perNode(cpuAfter, cpuBefore),
      rssMean: rss.reduce((a, b) => a + b, 0) / rss.length,
      rssMax: Math.max(...rss),
    };
  } finally {
    await cleanup();
  }
}

/** Milliseconds for the table; a write that never arrived is shown as later than the deadline. */
function ms(v: number): string {
  return Number.isFinite(v) ? v.toFixed(0) : `> ${WRITE_TIMEOUT_MS}`;
}

function table(rows: Row[]): string {
  const head = [
    "implementation",
    "start (s)",
    "entries everywhere (s)",
    "convergence p50 / p95 (ms)",
    "idle bytes/s per node",
    "idle CPU per node (%)",
    "RSS per node mean / max (MiB)",
  ];
  const cells = rows.map((r) => [
    r.impl === "go" ? "Go EdgeVPN" : "ours",
    r.startS.toFixed(1),
    r.filled === NODES ? r.fillS.toFixed(1) : `> ${r.fillS.toFixed(0)} (${r.filled} nodes)`,
    `${ms(r.p50)} / ${ms(r.p95)}${r.missed ? ` (${r.missed} missing)` : ""}`,
    r.idleBps.toFixed(0),
    r.idleCpu.toFixed(2),
    `${r.rssMean.toFixed(0)} / ${r.rssMax.toFixed(0)}`,
  ]);
  if (rows.length === 2) {
    const [o, g] = rows;
    // No ratio where either side has no figure (a write that never arrived, a node never filled).
    const x = (a: number, b: number) => Number.isFinite(a / b) ? `${(a / b).toFixed(2)}x` : "–";
    cells.push([
      "ours vs Go",
      x(o.startS, g.startS),
      o.filled === NODES && g.filled === NODES ? x(o.fillS, g.fillS) : "–",
      `${x(o.p50, g.p50)} / ${x(o.p95, g.p95)}`,
      x(o.idleBps, g.idleBps),
      x(o.idleCpu, g.idleCpu),
      `${x(o.rssMean, g.rssMean)} / ${x(o.rssMax, g.rssMax)}`,
    ]);
  }
  const widths = head.map((h, c) => Math.max(h.length, ...cells.map((r) => r[c].length)));
  const line = (r: string[]) =>
    `| ${r.map((v, c) => c === 0 ? v.padEnd(widths[c]) : v.padStart(widths[c])).join(" | ")} |`;
  return [
    line(head),
    `| ${widths.map((w, c) => c === 0 ? "-".repeat(w) : "-".repeat(w - 1) + ":").join(" | ")} |`,
    ...cells.map(line),
  ].join("\n");
}

try {
  const loadAtStart = loadAverage();
  const tokenOut = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "-g", "-b"],
    stderr: "inherit",
  }).output();
  if (!tokenOut.success) throw new Error("could not generate a network token");
  const token = new TextDecoder().decode(tokenOut.stdout).trim();
  const rows: Row[] = [];
  // Each row is printed as soon as it is measured: a later scenario may fail or be interrupted.
  const measure = async (impl: "ours" | "go") => {
    const row = await scenario(impl, token);
    console.log(`\n${table([row])}\n`);
    rows.push(row);
  };
  if (values.only !== "go") await measure("ours");
  if (GO && values.only !== "ours") await measure("go");
  else if (!GO) console.log("Go EdgeVPN skipped: set EDGEVPN_GO to its v0.35 binary to compare");
  console.log(
    `\n${NODES} node processes on loopback, ${SIMULATED} simulated nodes' entries (${
      4 * SIMULATED
    }), ${WRITES} writes, ${IDLE_S} s idle; ${
      new Date().toISOString().slice(0, 16)
    }Z, ${navigator.hardwareConcurrency} CPUs, load average ${loadAtStart} at the start, ${loadAverage()} at the end\n`,
  );
  console.log(table(rows));
  Deno.exit(0);
} catch (e) {
  console.error(`bench_scale: ${e instanceof Error ? e.message : e}`);
  await cleanup();
  Deno.exit(1);
}
