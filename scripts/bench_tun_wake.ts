/**
 * How fast a reader wakes for a packet on the interface, alone: a TUN device in a throw-away
 * network namespace answers the pings sent to it (ping → TUN → our reader → reply written back),
 * so the RTT is one reader wake-up plus a read and a write. Compares, in alternating rounds of
 * one run, a reader that waits in a worker thread (`hotReadMs: 0`) with a hot reader (waits on
 * the JavaScript thread; see `TunOptions.hotReadMs`), and prints their p50 ratio per round.
 *
 * Needs root and ping. Usage: ./deno run -A scripts/bench_tun_wake.ts [--rounds 3]
 *   [--interval 0.5] [--count 20]
 */
import { Command } from "commander";
import { TunDevice } from "../ffi/tun.ts";
import { namespaceSkipReason, sh } from "./netns.ts";

const cli = new Command("bench_tun_wake")
  .option("--rounds <n>", "rounds, each measuring both readers", "3")
  .option("--interval <s>", "seconds between pings", "0.5")
  .option("--count <n>", "pings per reader and round", "20")
  .option("--serve <mode>", "(internal) answer pings in this namespace: worker or hot")
  .parse(["deno", "bench_tun_wake", ...Deno.args]);
const opts = cli.opts();

if (opts.serve !== undefined) {
  // The responder, started by the parent inside the namespace.
  const tun = TunDevice.open({
    name: "wake0",
    ipv4: { address: Uint8Array.of(10, 77, 0, 1), prefixLength: 24 },
    mtu: 1420,
    hotReadMs: opts.serve === "hot" ? 2_000 : 0,
  });
  const buffers = [new Uint8Array(tun.frameSize)];
  const lengths = new Uint32Array(1);
  console.log(tun.hotReadAvailable ? "ready" : "ready (no hot reads)");
  if (opts.serve === "hot" && !tun.hotReadAvailable) console.error("hot reads unavailable");
  for (;;) {
    const n = await tun.readBatch(buffers, lengths);
    if (n === 0) break;
    const p = buffers[0];
    if (p[0] >> 4 !== 4 || p[9] !== 1 || p[20] !== 8) continue;
    // Echo request → reply: swap the addresses, type 8 → 0 (the checksum grows by 0x0800).
    const src = p.slice(12, 16);
    p.copyWithin(12, 16, 20);
    p.set(src, 16);
    p[20] = 0;
    let sum = ((p[22] << 8) | p[23]) + 0x0800;
    sum = (sum & 0xffff) + (sum >> 16);
    p[22] = sum >> 8;
    p[23] = sum & 0xff;
    tun.writeSync(p.subarray(0, lengths[0]));
  }
  Deno.exit(0);
}

const skip = namespaceSkipReason({ tun: true });
if (skip) {
  console.error(`cannot run the benchmark: ${skip}`);
  Deno.exit(1);
}
const ROUNDS = Number(opts.rounds);
const INTERVAL = Number(opts.interval);
const COUNT = Number(opts.count);
const quantile = (v: number[], q: number) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};

async function measure(mode: "worker" | "hot"): Promise<number[]> {
  const ns = `evwake${crypto.randomUUID().slice(0, 6)}`;
  await sh("ip", ["netns", "add", ns]);
  const server = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      ns,
      Deno.execPath(),
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      "--serve",
      mode,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const reader = server.stdout.getReader();
    await reader.read(); // "ready"
    reader.releaseLock();
    server.stdout.cancel().catch(() => {});
    await sh("ip", ["netns", "exec", ns, "ping", "-c", "3", "-i", "0.2", "10.77.0.2"]);
    const out = await sh("ip", [
      "netns",
      "exec",
      ns,
      "ping",
      "-c",
      String(COUNT),
      "-i",
      String(INTERVAL),
      "10.77.0.2",
    ]);
    return [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  } finally {
    server.kill("SIGTERM");
    await server.status;
    await sh("ip", ["netns", "del", ns]);
  }
}

console.log(
  `TUN reader wake-up, ${new Date().toISOString()}, ${navigator.hardwareConcurrency} CPUs: ` +
    `ping RTT to a TUN answered by our reader, ${COUNT} pings ${INTERVAL} s apart per reader and round\n`,
);
console.log("| round | worker thread p50 / p90 (ms) | hot p50 / p90 (ms) | hot / worker p50 |");
console.log("|---:|---:|---:|---:|");
for (let round = 1; round <= ROUNDS; round++) {
  const worker = await measure("worker");
  const hot = await measure("hot");
  const f = (v: number[]) => `${quantile(v, 0.5).toFixed(3)} / ${quantile(v, 0.9).toFixed(3)}`;
  console.log(
    `| ${round} | ${f(worker)} | ${f(hot)} | ${
      (quantile(hot, 0.5) / quantile(worker, 0.5)).toFixed(2)
    }x |`,
  );
}
