/**
 * Soak: five `edgevpn join` nodes in network namespaces on one bridge for a given time, with
 * continuous VPN traffic (a ring of pings, 5 a second each), API polling and ledger writes.
 * Every 10 s it samples each node's RSS, open fds, event-loop lag (largest since the previous
 * sample) and error counts into `soak.csv`, and draws them in `soak.png` (an SVG rendered by
 * Debian's chromium; `soak.svg` is kept when chromium is missing). After the warm-up it asserts:
 * RSS growth under 1 MiB per hour (long runs) or 10 % (runs under 30 minutes), fds within ±10 of
 * the first sample, zero errors; then SIGTERM ends each node with code 0 within 2 s, leaving no
 * interface and no API socket behind. Exits 1 with the reasons when an assertion fails.
 *
 * Usage (root): deno run -A scripts/soak.ts [--duration 3600] [--warmup 300] [--out DIR]
 * `deno task soak` runs the default hour; the test suite runs 150 s (tests/soak/).
 */
import { parseArgs } from "node:util";
import { generateIdentity } from "../lib/crypto/identity.ts";
import { PRIVKEY_FILE } from "../lib/node/privkey.ts";
import { createNamespaceLan, namespaceSkipReason } from "./netns.ts";

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "3600" },
    warmup: { type: "string" },
    out: { type: "string", default: "test-artifacts/soak" },
    sample: { type: "string", default: "10" },
  },
});
const DURATION_S = Number(values.duration);
const WARMUP_S = Number(values.warmup ?? Math.min(300, Math.max(30, DURATION_S / 10)));
const SAMPLE_S = Number(values.sample);
const OUT = values.out!;
const NODES = 5;
const LONG = DURATION_S >= 1800;
const CLI = new URL("../cli.ts", import.meta.url).pathname;
const CHROMIUM = "/usr/bin/chromium";

if (!(DURATION_S > WARMUP_S && WARMUP_S >= 0 && SAMPLE_S > 0)) {
  console.error("soak: --duration must exceed --warmup; both in seconds");
  Deno.exit(2);
}
const skip = namespaceSkipReason({ tun: true });
if (skip) {
  console.error(`soak: cannot run: ${skip}`);
  Deno.exit(2);
}

interface Sample {
  t: number;
  node: number;
  rssKiB: number;
  fds: number;
  lagMs: number;
  errors: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const failures: string[] = [];
const counts = { pings: 0, pingsLost: 0, polls: 0, pollErrors: 0, writes: 0, writeErrors: 0 };

const lan = await createNamespaceLan("evs", NODES, 242);
const dir = await Deno.makeTempDir({ prefix: "evsoak" });
const procs: Deno.ChildProcess[] = [];
const logs: string[] = Array(NODES).fill("");
const pingers: Deno.ChildProcess[] = [];
/** Seconds between pings, and how long a reply may take. */
const PING_INTERVAL_S = 0.2;
const PING_WAIT_S = 2;
/** When each lost ping was sent, in seconds after its pinger started. */
const lostAt: number[] = [];
const clients: Deno.HttpClient[] = [];
let stopping = false;
try {
  const token = new TextDecoder().decode(
    (await new Deno.Command(Deno.execPath(), { args: ["run", "-A", CLI, "-g", "-b"] }).output())
      .stdout,
  ).trim();
  const ids = await Promise.all(lan.nodes.map(() => generateIdentity()));
  const bootstrap = lan.nodes.map((ns, i) => `/ip4/${ns.address}/tcp/4001/p2p/${ids[i].peerId}`);
  for (const [i, id] of ids.entries()) {
    await Deno.mkdir(`${dir}/${i}`, { recursive: true });
    await Deno.writeFile(`${dir}/${i}/${PRIVKEY_FILE}`, id.privateKeyProtobuf, { mode: 0o600 });
  }
  for (const [i, ns] of lan.nodes.entries()) {
    const child = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        ns.name,
        Deno.execPath(),
        "run",
        "-A",
        "--v8-flags=--max-semi-space-size=1",
        CLI,
        "join",
        "--token",
        token,
        "--address",
        `10.1.0.${i + 1}/24`,
        "--api",
        "--api-listen",
        `unix://${dir}/${i}/api.sock`,
        "--state-dir",
        `${dir}/${i}`,
        "--privkey-cache-dir",
        `${dir}/${i}`,
        "--listen-maddrs",
        `/ip4/${ns.address}/tcp/4001`,
        "--discovery-bootstrap-peers",
        bootstrap.filter((_, j) => j !== i).join(","),
        "--dht=false",
        "--ledger-synchronization-interval",
        "5",
        "--aliveness-healthcheck-interval",
        "30",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    procs.push(child);
    const dec = new TextDecoder();
    for (const stream of [child.stdout, child.stderr]) {
      void (async () => {
        for await (const chunk of stream) {
          logs[i] = (logs[i] + dec.decode(chunk, { stream: true })).slice(-200_000);
        }
      })();
    }
    void child.status.then((s) => {
      if (!stopping) failures.push(`node ${i} exited by itself (code ${s.code}):\n${logs[i]}`);
    });
  }
  const deadline = Date.now() + 60_000;
  while (!logs.every((l) => /VPN up/.test(l))) {
    if (Date.now() > deadline || failures.length) throw new Error("nodes did not start in 60 s");
    await sleep(200);
  }
  for (let i = 0; i < NODES; i++) {
    clients.push(
      Deno.createHttpClient({ proxy: { transport: "unix", path: `${dir}/${i}/api.sock` } }),
    );
  }
  const api = (i: number, method: string, path: string) =>
    fetch(`http://localhost${path}`, {
      method,
      client: clients[i],
      signal: AbortSignal.timeout(10_000),
    });
  // Every node sees every machine before the clock starts.
  const meshDeadline = Date.now() + 60_000;
  for (let i = 0; i < NODES; i++) {
    for (;;) {
      const machines = await (await api(i, "GET", "/api/machines")).json().catch(() => []);
      if (machines.length === NODES) break;
      if (Date.now() > meshDeadline) throw new Error(`node ${i} sees ${machines.length} machines`);
      await sleep(500);
    }
  }

  // ---- load: pings in a ring, API polls, ledger writes on a bounded set of keys ------------
  for (const [i, ns] of lan.nodes.entries()) {
    pingers.push(
      ns.spawn("ping", [
        "-i",
        String(PING_INTERVAL_S),
        "-W",
        String(PING_WAIT_S),
        `10.1.0.${(i + 1) % NODES + 1}`,
      ], {
        stdout: "piped",
        stderr: "piped",
      }),
    );
  }
  const load = (async () => {
    for (let n = 0; !stopping; n++) {
      const i = n % NODES;
      for (const path of ["/api/summary", "/api/machines", "/api/ledger"]) {
        counts.polls++;
        try {
          const res = await api(i, "GET", path);
          await res.body?.cancel();
          if (!res.ok) throw new Error(`${res.status}`);
        } catch (e) {
          counts.pollErrors++;
          if (counts.pollErrors <= 5) console.error(`poll ${path} on node ${i}: ${e}`);
        }
      }
      if (n % 4 === 0) {
        counts.writes++;
        try {
          const res = await api(i, "PUT", `/api/ledger/soak/k${n % 50}/${n}`);
          await res.body?.cancel();
          if (!res.ok) throw new Error(`${res.status}`);
        } catch (e) {
          counts.writeErrors++;
          if (counts.writeErrors <= 5) console.error(`write on node ${i}: ${e}`);
        }
      }
      await sleep(100);
    }
  })();

  // ---- sampling ---------------------------------------------------------------------------
  const samples: Sample[] = [];
  const t0 = Date.now();
  const errorsOf = async (i: number) => {
    const text = await (await api(i, "GET", "/metrics")).text();
    let errors = 0;
    let lag = 0;
    for (const line of text.split("\n")) {
      const m = line.match(/^(\w+)(?:\{[^}]*\})? ([\d.e+-]+)$/);
      if (!m) continue;
      if (m[1] === "edgevpn_process_errors_total") errors += Number(m[2]);
      if (m[1] === "edgevpn_event_loop_lag_max_seconds") lag = Number(m[2]) * 1000;
    }
    errors += (logs[i].match(/^\S+ ERROR /gm) ?? []).length;
    return { errors, lag };
  };
  console.log(`soak: ${NODES} nodes for ${DURATION_S} s (warm-up ${WARMUP_S} s), into ${OUT}`);
  for (let next = t0; Date.now() - t0 < DURATION_S * 1000;) {
    const t = Math.round((Date.now() - t0) / 1000);
    for (let i = 0; i < NODES; i++) {
      const pid = procs[i].pid;
      const status = await Deno.readTextFile(`/proc/${pid}/status`).catch(() => "");
      const rssKiB = Number(status.match(/VmRSS:\s+(\d+)/)?.[1] ?? NaN);
      const fds = [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
      const { errors, lag } = await errorsOf(i).catch(() => ({ errors: NaN, lag: NaN }));
      samples.push({ t, node: i, rssKiB, fds, lagMs: Math.round(lag * 10) / 10, errors });
    }
    const last = samples.slice(-NODES);
    console.log(
      `t=${t}s rss MiB ${last.map((s) => (s.rssKiB / 1024).toFixed(1)).join(" ")} fds ${
        last.map((s) => s.fds).join(" ")
      } lag ms ${last.map((s) => s.lagMs).join(" ")} errors ${last.map((s) => s.errors).join(" ")}`,
    );
    if (failures.length) break;
    next += SAMPLE_S * 1000;
    await sleep(Math.max(0, next - Date.now()));
  }
  stopping = true;
  await load;
  for (const p of pingers) {
    p.kill("SIGINT");
    const out = new TextDecoder().decode((await p.output()).stdout);
    const m = out.match(/(\d+) packets transmitted, (\d+) received/);
    if (m) {
      const sent = Number(m[1]);
      counts.pings += sent;
      // The pings of the last 2 s (their -W) may still be in flight when SIGINT comes: a ping
      // is lost when no reply to its sequence number came and it was sent before that.
      const answered = new Set(
        [...out.matchAll(/bytes from .*icmp_seq=(\d+)/g)].map((r) => Number(r[1])),
      );
      const settled = sent - Math.ceil(PING_WAIT_S / PING_INTERVAL_S);
      // Counted from the first reply: pings sent in the first second, while the ring's routes
      // and links were still forming, are start-up, not the soak (two runs lost 6 there, none
      // after).
      const first = answered.size ? Math.min(...answered) : settled + 1;
      if (first > settled) counts.pingsLost += Math.max(0, settled);
      for (let seq = first + 1; seq <= settled; seq++) {
        if (answered.has(seq)) continue;
        counts.pingsLost++;
        lostAt.push(Math.round(seq * PING_INTERVAL_S));
      }
    }
  }
  pingers.length = 0;

  // ---- assertions --------------------------------------------------------------------------
  await Deno.mkdir(OUT, { recursive: true });
  const csv = ["t_s,node,rss_kib,fds,event_loop_lag_ms,errors"].concat(
    samples.map((s) => [s.t, s.node, s.rssKiB, s.fds, s.lagMs, s.errors].join(",")),
  );
  await Deno.writeTextFile(`${OUT}/soak.csv`, csv.join("\n") + "\n");
  const after = samples.filter((s) => s.t >= WARMUP_S);
  for (let i = 0; i < NODES; i++) {
    const mine = after.filter((s) => s.node === i);
    if (mine.length < 2) {
      failures.push(`node ${i}: fewer than 2 samples after the warm-up`);
      continue;
    }
    const first = mine[0];
    const lastS = mine[mine.length - 1];
    if (LONG) {
      const slope = slopePerHour(mine.map((s) => [s.t, s.rssKiB / 1024]));
      if (slope >= 1) failures.push(`node ${i}: RSS grows ${slope.toFixed(2)} MiB/h`);
    } else {
      // The mean of the last three samples against the first three: single samples swing
      // with V8's garbage collections.
      const mean = (xs: Sample[]) => xs.reduce((a, s) => a + s.rssKiB, 0) / xs.length;
      const growth = mean(mine.slice(-3)) / mean(mine.slice(0, 3)) - 1;
      if (growth >= 0.1) failures.push(`node ${i}: RSS grew ${(growth * 100).toFixed(1)} %`);
    }
    for (const s of mine) {
      if (Math.abs(s.fds - first.fds) > 10) {
        failures.push(`node ${i}: ${s.fds} fds at ${s.t} s, ${first.fds} after the warm-up`);
        break;
      }
    }
    if (!(lastS.errors === 0)) failures.push(`node ${i}: ${lastS.errors} errors`);
  }
  if (counts.pollErrors || counts.writeErrors) {
    failures.push(`API: ${counts.pollErrors} failed polls, ${counts.writeErrors} failed writes`);
  }
  if (counts.pingsLost) {
    failures.push(
      `${counts.pingsLost} of ${counts.pings} pings lost (sent at ${lostAt.join(", ")} s)`,
    );
  }

  // ---- SIGTERM: exit 0 within 2 s, nothing left behind ---------------------------------------
  stopping = true;
  for (const c of clients.splice(0)) c.close();
  const stops = await Promise.all(procs.map(async (p, i) => {
    const t = performance.now();
    p.kill("SIGTERM");
    const status = await p.status;
    return { i, code: status.code, ms: performance.now() - t };
  }));
  for (const s of stops) {
    if (s.code !== 0) failures.push(`node ${s.i}: SIGTERM exit code ${s.code}:\n${logs[s.i]}`);
    if (s.ms > 2000) failures.push(`node ${s.i}: SIGTERM took ${Math.round(s.ms)} ms`);
    const links = await lan.nodes[s.i].run("ip", ["-o", "link", "show"]);
    if (/edgevpn0/.test(links)) failures.push(`node ${s.i}: interface edgevpn0 left behind`);
    if (await Deno.stat(`${dir}/${s.i}/api.sock`).then(() => true, () => false)) {
      failures.push(`node ${s.i}: API socket left behind`);
    }
    // TIME-WAIT is the kernel's memory of connections closed cleanly, held by no process.
    const left = (await lan.nodes[s.i].run("ss", ["-Htanu"]).catch(() => ""))
      .split("\n").filter((l) => l.trim() !== "" && !/TIME-WAIT/.test(l));
    if (left.length) failures.push(`node ${s.i}: sockets left: ${left.join("; ")}`);
  }
  procs.length = 0;
  const summary = {
    durationS: DURATION_S,
    warmupS: WARMUP_S,
    samples: samples.length,
    ...counts,
    stopMs: stops.map((s) => Math.round(s.ms)),
    rssMiB: summarize(after, (s) => s.rssKiB / 1024),
    fds: summarize(after, (s) => s.fds),
    lagMaxMs: Math.max(...after.map((s) => s.lagMs)),
  };
  await Deno.writeTextFile(`${OUT}/soak.json`, JSON.stringify(summary, null, 2) + "\n");
  const png = await renderPlot(samples, `${OUT}/soak`);
  console.log(`soak: ${JSON.stringify(summary)}`);
  console.log(`soak: wrote ${OUT}/soak.csv and ${png}`);
} catch (e) {
  failures.push(`soak aborted: ${e instanceof Error ? e.stack : e}`);
} finally {
  stopping = true;
  for (const p of pingers) {
    try {
      p.kill("SIGKILL");
    } catch { /* gone */ }
  }
  for (const c of clients) c.close();
  for (const p of procs) {
    try {
      p.kill("SIGKILL");
    } catch { /* gone */ }
    await p.status;
  }
  await lan.close();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
if (failures.length) {
  console.log(`soak FAILED:\n${failures.join("\n")}`);
  Deno.exit(1);
}
console.log("soak passed");

/** Least-squares slope of y over t (seconds), per hour. */
function slopePerHour(points: [number, number][]): number {
  const n = points.length;
  const mt = points.reduce((a, [t]) => a + t, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [t, y] of points) {
    num += (t - mt) * (y - my);
    den += (t - mt) ** 2;
  }
  return den === 0 ? 0 : (num / den) * 3600;
}

function summarize(samples: Sample[], f: (s: Sample) => number) {
  const xs = samples.map(f);
  return { min: Math.round(Math.min(...xs) * 10) / 10, max: Math.round(Math.max(...xs) * 10) / 10 };
}

/** Draws RSS, fds and event-loop lag per node over time; returns the file written. */
async function renderPlot(samples: Sample[], base: string): Promise<string> {
  const svg = plotSvg(samples);
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    await Deno.writeTextFile(`${base}.svg`, svg);
    return `${base}.svg (no ${CHROMIUM} to render a PNG)`;
  }
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 900, height: 720 } });
    await page.setContent(`<html><body style="margin:0">${svg}</body></html>`);
    await page.screenshot({ path: `${base}.png` });
  } finally {
    await browser.close();
  }
  return `${base}.png`;
}

function plotSvg(samples: Sample[]): string {
  const W = 900;
  const H = 240;
  const colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"];
  const tMax = Math.max(1, ...samples.map((s) => s.t));
  const panels: [string, (s: Sample) => number][] = [
    ["RSS (MiB)", (s) => s.rssKiB / 1024],
    ["open fds", (s) => s.fds],
    ["event-loop lag, max per 10 s (ms)", (s) => s.lagMs],
  ];
  const parts = panels.map(([title, f], p) => {
    const ys = samples.map(f).filter(Number.isFinite);
    const yMax = Math.max(1, ...ys) * 1.1;
    const x = (t: number) => 60 + (t / tMax) * (W - 80);
    const y = (v: number) => p * H + H - 30 - (v / yMax) * (H - 60);
    const lines = colors.slice(0, NODES).map((color, node) => {
      const pts = samples.filter((s) => s.node === node && Number.isFinite(f(s)))
        .map((s) => `${x(s.t).toFixed(1)},${y(f(s)).toFixed(1)}`).join(" ");
      return `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${pts}"/>`;
    });
    const ticks = [0, 0.5, 1].map((q) =>
      `<text x="55" y="${y(yMax * q) + 4}" text-anchor="end" font-size="11">${
        (yMax * q).toFixed(yMax < 10 ? 1 : 0)
      }</text><line x1="60" x2="${W - 20}" y1="${y(yMax * q)}" y2="${y(yMax * q)}" stroke="#ddd"/>`
    );
    return `<text x="60" y="${p * H + 20}" font-size="13" font-weight="bold">${title}</text>` +
      ticks.join("") + lines.join("") +
      `<text x="${W - 20}" y="${p * H + H - 12}" text-anchor="end" font-size="11">${tMax} s</text>`;
  });
  const legend = colors.slice(0, NODES).map((c, i) =>
    `<text x="${W - 320 + i * 60}" y="16" font-size="12" fill="${c}">node ${i}</text>`
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${
    panels.length * H
  }" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>${parts.join("")}${
    legend.join("")
  }</svg>`;
}
