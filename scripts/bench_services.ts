/**
 * Services and files benchmark between two network namespaces, all in one run: one TCP flow
 * (iperf3) directly over the veth pair, through our fast VPN mode, and through a service
 * (`service-add` on one side, `service-connect` on the other); then one file transfer
 * (`file-send` → `file-receive`). Figures are printed beside their ratios to the direct flow
 * and to the fast VPN's flow measured in the same run. Target: a service connection at least
 * half the fast VPN's one-flow throughput.
 *
 * Needs root and iperf3 (`apt-get install iperf3`).
 * Usage: ./deno task bench:services [--duration 10] [--repeats 3] [--file-mb 512]
 */
import { Command } from "commander";
import { encodeToken, generateNetworkConfig } from "../lib/config/token.ts";
import { generateIdentity } from "../lib/crypto/identity.ts";
import { createNamespacePair, type Namespace, namespaceSkipReason } from "./netns.ts";
import { startVpnPair } from "./vpn_pair.ts";

const cli = new Command("bench_services")
  .option("--duration <seconds>", "length of each iperf3 run", "10")
  .option("--repeats <n>", "iperf3 runs per path", "3")
  .option("--file-mb <n>", "size of the transferred file in MiB", "512")
  .parse(["deno", "bench", ...Deno.args]);
const opts = cli.opts();
const DURATION = Number(opts.duration);
const REPEATS = Number(opts.repeats);
const FILE_MB = Number(opts.fileMb);

const ROOT = new URL("../", import.meta.url).pathname;
// Our nodes run exactly as `deno task edgevpn` runs them (same runtime flags).
const TASK: string = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks.edgevpn;
const CLI_ARGS = TASK.split(/\s+/).slice(1).map((a) => a === "cli.ts" ? `${ROOT}cli.ts` : a);

const skip = namespaceSkipReason({ tun: true });
if (skip) {
  console.error(`cannot run the services benchmark: ${skip}`);
  Deno.exit(1);
}
for (const tool of ["iperf3"]) {
  const found = await new Deno.Command("sh", { args: ["-c", `command -v ${tool}`] }).output();
  if (!found.success) {
    console.error(
      `cannot run the services benchmark: ${tool} is missing (apt-get install ${tool})`,
    );
    Deno.exit(1);
  }
}

/**
 * One iperf3 flow from `a` to `host:port`, the server in `b` on `bind:serverPort` (the same
 * port unless a service forwards between them); Mbit/s.
 */
async function iperf(
  a: Namespace,
  b: Namespace,
  bind: string,
  host: string,
  port: number,
  serverPort = port,
) {
  const server = b.spawn("iperf3", ["-s", "-1", "-B", bind, "-p", String(serverPort)], {
    stdout: "null",
    stderr: "null",
  });
  await new Promise((r) => setTimeout(r, 300));
  try {
    const json = await a.run("iperf3", [
      "-c",
      host,
      "-p",
      String(port),
      "-t",
      String(DURATION),
      "-J",
    ]);
    const report = JSON.parse(json);
    const bps = report.end?.sum_received?.bits_per_second;
    if (bps === undefined) throw new Error(`iperf3 failed: ${report.error ?? json.slice(0, 500)}`);
    return bps / 1e6;
  } finally {
    try {
      server.kill("SIGKILL");
    } catch { /* exited */ }
    await server.status;
  }
}

async function repeated(run: () => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < REPEATS; i++) out.push(await run());
  return out;
}

/** Two of our nodes, one per namespace, each bootstrapping from the other. */
async function ourPair(a: Namespace, b: Namespace) {
  const dir = await Deno.makeTempDir({ prefix: "bench-svc-" });
  const token = encodeToken(generateNetworkConfig());
  const ids = [await generateIdentity(), await generateIdentity()];
  const ns = [a, b];
  for (const [i, id] of ids.entries()) {
    await Deno.mkdir(`${dir}/${i}`);
    await Deno.writeFile(`${dir}/${i}/privkey`, id.privateKeyProtobuf, { mode: 0o600 });
  }
  const children: Deno.ChildProcess[] = [];
  const flags = (i: number) => [
    "--token",
    token,
    "--listen-maddrs",
    `/ip4/${ns[i].address}/tcp/4001`,
    "--discovery-bootstrap-peers",
    `/ip4/${ns[1 - i].address}/tcp/4001/p2p/${ids[1 - i].peerId}`,
    "--mdns=false",
    "--dht=false",
    "--privkey-cache",
    "--privkey-cache-dir",
    `${dir}/${i}`,
    "--ledger-synchronization-interval",
    "1",
    "--ledger-announce-interval",
    "1",
  ];
  return {
    dir,
    /** Starts `cli.ts <args>` on side `i`; resolves once its stderr matches `ready`. */
    async run(
      i: number,
      args: string[],
      ready: RegExp,
    ): Promise<{ child: Deno.ChildProcess; log: () => string }> {
      const child = ns[i].spawn(Deno.execPath(), [...CLI_ARGS, ...args, ...flags(i)], {
        stdout: "piped",
        stderr: "piped",
      });
      children.push(child);
      const dec = new TextDecoder();
      let text = "";
      const reader = child.stderr.getReader();
      const deadline = Date.now() + 90_000;
      while (!ready.test(text)) {
        if (Date.now() > deadline) throw new Error(`no ${ready} in:\n${text}`);
        const { value, done } = await reader.read();
        if (done) throw new Error(`exited before ${ready}:\n${text}`);
        text += dec.decode(value, { stream: true });
      }
      // Keep draining so the node never blocks on a full pipe.
      (async () => {
        while (true) {
          const { value, done } = await reader.read();
          if (done) break;
          text = (text + dec.decode(value, { stream: true })).slice(-20_000);
        }
      })().catch(() => {});
      return { child, log: () => text };
    },
    async close() {
      for (const c of children) {
        try {
          c.kill("SIGTERM");
        } catch { /* exited */ }
        await c.status;
        await c.stdout.cancel().catch(() => {});
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

const median = (v: number[]) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)];
const fmt = (v: number) => v.toFixed(0).padStart(6);

const pair = await createNamespacePair("evsb", 97);
const results: { label: string; mbps: number[] }[] = [];
try {
  console.error("direct TCP over the veth pair…");
  results.push({
    label: "direct TCP (veth)",
    mbps: await repeated(() => iperf(pair.a, pair.b, pair.b.address, pair.b.address, 5301)),
  });

  console.error("fast VPN mode…");
  const vpn = await startVpnPair(pair.a, pair.b, {
    sides: [{ kind: "deno" }, { kind: "deno" }],
    protocol: "auto",
    mtu: 1420,
    subnet: 98,
  });
  try {
    results.push({
      label: "ours fast VPN, one flow",
      mbps: await repeated(() => iperf(pair.a, pair.b, vpn.addressB, vpn.addressB, 5302)),
    });
  } finally {
    await vpn.close();
  }

  console.error("service connection…");
  const nodes = await ourPair(pair.a, pair.b);
  try {
    await nodes.run(1, ["service-add", "iperf", "127.0.0.1:5303"], /Exposing service/);
    await nodes.run(
      0,
      ["service-connect", "iperf", "127.0.0.1:5304"],
      /Service 'iperf' is provided by/,
    );
    results.push({
      label: "ours service-connect → service-add",
      mbps: await repeated(() => iperf(pair.a, pair.b, "127.0.0.1", "127.0.0.1", 5304, 5303)),
    });
  } finally {
    await nodes.close();
  }
  // New nodes for the files (the service nodes hold the ports).
  const fileNodes = await ourPair(pair.a, pair.b);
  try {
    console.error(`file transfer of ${FILE_MB} MiB…`);
    const src = `${fileNodes.dir}/src`;
    {
      using file = await Deno.open(src, { write: true, create: true });
      const block = new Uint8Array(1 << 20);
      for (let i = 0; i < FILE_MB; i++) {
        for (let j = 0; j < block.length; j += 65536) {
          crypto.getRandomValues(block.subarray(j, j + 65536));
        }
        await file.write(block);
      }
    }
    await fileNodes.run(1, ["file-send", "blob", src], /Serving/);
    const mbps: number[] = [];
    for (let i = 0; i < REPEATS; i++) {
      const dst = `${fileNodes.dir}/dst${i}`;
      const { child, log } = await fileNodes.run(0, ["file-receive", "blob", dst], /Node ID/);
      const out = await new Response(child.stdout).text();
      await child.status;
      const seconds = Number(out.match(/ in ([\d.]+) s,/)?.[1]);
      if (!(seconds > 0)) throw new Error(`file-receive failed:\n${out}\n${log()}`);
      mbps.push((FILE_MB * 8 * 1.048576) / seconds);
      await Deno.remove(dst);
    }
    results.push({ label: "ours file-send → file-receive", mbps });
  } finally {
    await fileNodes.close();
  }
} finally {
  await pair.close();
}

const direct = median(results[0].mbps);
const fast = median(results[1].mbps);
console.log(
  `\nOne TCP flow between two namespaces (iperf3, ${DURATION} s × ${REPEATS}; file ${FILE_MB} MiB × ${REPEATS}), Mbit/s (median of runs):\n`,
);
console.log(`${"path".padEnd(38)}  median   runs                    vs direct  vs fast VPN`);
for (const r of results) {
  const m = median(r.mbps);
  console.log(
    `${r.label.padEnd(38)} ${fmt(m)}   ${r.mbps.map((v) => v.toFixed(0)).join(", ").padEnd(22)} ${
      (m / direct).toFixed(3).padStart(8)
    }  ${(m / fast).toFixed(2).padStart(10)}`,
  );
}
const service = median(results[2].mbps);
console.log(
  `\nservice / fast VPN one flow: ${(service / fast).toFixed(2)} (target ≥ 0.50)`,
);
