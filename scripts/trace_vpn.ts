/**
 * Where a ping's round trip goes through our VPN: two nodes in network namespaces record every
 * stage of the packet path (`--vpn-trace`), pings run at the given rates, and the marks of both
 * nodes are laid on each ping's own send time (iputils `ping` writes it in the payload), giving
 * the median time at which each stage is reached and the median step from the stage before.
 *
 * Needs root and ping. Usage:
 *   ./deno run -A scripts/trace_vpn.ts [--rates 1,100] [--count 30] [--protocol auto|legacy]
 */
import { Command } from "commander";
import type { TraceMark } from "../lib/util/trace.ts";
import { createNamespacePair, namespaceSkipReason } from "./netns.ts";
import { startVpnPair } from "./vpn_pair.ts";

const cli = new Command("trace_vpn")
  .option("--rates <list>", "pings per second, one run each", "1,100")
  .option("--count <n>", "pings per rate (at most 10 s of them at the lowest rate)", "30")
  .option("--protocol <p>", "our data plane: auto (fast) or legacy (/edgevpn/0.1)", "auto")
  .option("--mtu <bytes>", "tunnel MTU", "1420")
  .option("--warm <n>", "pings at 500/s before measuring (0: measure a cold node)", "1000")
  .parse(["deno", "trace_vpn", ...Deno.args]);
const opts = cli.opts();
const RATES = String(opts.rates).split(",").map(Number);
const COUNT = Number(opts.count);
const PROTOCOL = opts.protocol === "legacy" ? "legacy" : "auto";

const skip = namespaceSkipReason({ tun: true });
if (skip) {
  console.error(`cannot trace the VPN: ${skip}`);
  Deno.exit(1);
}

interface Run {
  rate: number;
  from: number;
  to: number;
  /** Round trip by ICMP sequence, as ping printed it. */
  rtt: Map<number, number>;
}

const traceDir = await Deno.makeTempDir({ prefix: "trace-vpn-" });
const files = [`${traceDir}/a.json`, `${traceDir}/b.json`];
const runs: Run[] = [];
const pair = await createNamespacePair("trc", 91);
try {
  const vpn = await startVpnPair(pair.a, pair.b, {
    sides: [{ kind: "deno" }, { kind: "deno" }],
    protocol: PROTOCOL,
    mtu: Number(opts.mtu),
    subnet: 92,
    env: [{ EDGEVPNVPNTRACE: files[0] }, { EDGEVPNVPNTRACE: files[1] }],
  });
  try {
    const warm = Number(opts.warm);
    if (warm > 0) {
      await pair.a.run("ping", ["-q", "-c", String(warm), "-i", "0.002", vpn.addressB]);
    }
    for (const rate of RATES) {
      const count = Math.min(COUNT, Math.max(5, rate * 10));
      const from = Date.now();
      const out = await pair.a.run("ping", [
        "-c",
        String(count),
        "-i",
        String(1 / rate),
        "-W",
        "1",
        vpn.addressB,
      ]);
      const rtt = new Map<number, number>();
      for (const m of out.matchAll(/icmp_seq=(\d+) .*time=([\d.]+) ms/g)) {
        rtt.set(Number(m[1]), Number(m[2]));
      }
      runs.push({ rate, from, to: Date.now(), rtt });
    }
  } finally {
    await vpn.close();
  }
} finally {
  await pair.close();
}

const marks = await Promise.all(files.map(async (f, i) => {
  const list = JSON.parse(await Deno.readTextFile(f)) as TraceMark[];
  return list.map((m) => ({ ...m, side: i === 0 ? "a" : "b" }));
}));
await Deno.remove(traceDir, { recursive: true });
const all = [...marks[0], ...marks[1]].sort((x, y) => x.at - y.at);

const quantile = (v: number[], q: number) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};

console.log(
  `Packet path of a ping through our VPN (${PROTOCOL === "auto" ? "fast" : "/edgevpn/0.1"} ` +
    `mode), a = pinging node, b = answering node; times in ms after ping sent the request ` +
    `(median over the pings of each rate, after ${opts.warm} warm-up pings)\n`,
);
for (const run of runs) {
  const offsets = new Map<string, number[]>();
  const steps = new Map<string, number[]>();
  let traced = 0;
  const medianRtt = quantile([...run.rtt.values()], 0.5);
  let example: string[] = [];
  for (const [seq, rtt] of run.rtt) {
    const tag = (8 << 16) | (seq & 0xffff);
    const sent = all.find((m) =>
      m.side === "a" && m.stage === "ping.sent" && m.tag === tag && m.at >= run.from - 1000 &&
      m.at <= run.to
    );
    if (sent === undefined) continue;
    traced++;
    const end = sent.at + rtt;
    const seen = new Map<string, number>();
    let previous = 0;
    const timeline: string[] = [];
    for (const m of all) {
      if (m.at < sent.at || m.at > end || m.stage === "ping.sent") continue;
      const base = `${m.side} ${m.stage}`;
      const n = (seen.get(base) ?? 0) + 1;
      seen.set(base, n);
      const label = n === 1 ? base : `${base} #${n}`;
      const offset = m.at - sent.at;
      timeline.push(`| ${label} | ${offset.toFixed(3)} | ${(offset - previous).toFixed(3)} |`);
      (offsets.get(label) ?? offsets.set(label, []).get(label)!).push(offset);
      (steps.get(label) ?? steps.set(label, []).get(label)!).push(offset - previous);
      previous = offset;
    }
    (offsets.get("a ping got reply") ??
      offsets.set("a ping got reply", []).get("a ping got reply")!)
      .push(rtt);
    (steps.get("a ping got reply") ?? steps.set("a ping got reply", []).get("a ping got reply")!)
      .push(rtt - previous);
    if (example.length === 0 && rtt === medianRtt) {
      example = [
        `One ping (sequence ${seq}, RTT ${rtt} ms):\n`,
        "| stage | at | step |",
        "|---|---:|---:|",
        ...timeline,
        `| a ping got reply | ${rtt.toFixed(3)} | ${(rtt - previous).toFixed(3)} |`,
        "",
      ];
    }
  }
  const rtts = [...run.rtt.values()];
  console.log(
    `## ${run.rate} ping/s: ${rtts.length} replies, RTT p50 ${quantile(rtts, 0.5).toFixed(3)} ` +
      `p90 ${quantile(rtts, 0.9).toFixed(3)} ms; ${traced} traced\n`,
  );
  console.log("| stage | seen in | at (p50) | step from the mark before (p50) |");
  console.log("|---|---:|---:|---:|");
  const rows = [...offsets.entries()]
    .filter(([, v]) => v.length >= traced / 2)
    .sort((x, y) => quantile(x[1], 0.5) - quantile(y[1], 0.5));
  for (const [label, v] of rows) {
    console.log(
      `| ${label} | ${v.length}/${traced} | ${quantile(v, 0.5).toFixed(3)} | ${
        quantile(steps.get(label)!, 0.5).toFixed(3)
      } |`,
    );
  }
  console.log();
  console.log(example.join("\n"));
}
Deno.exit(0);
