/**
 * NAT benchmark (`deno task bench:nat`, root): one TCP flow (iperf3) through the VPN between
 * two members behind NAT routers, first through the public member's relay, then after hole
 * punching, each as a ratio to the direct path (home A to the public member) measured in the
 * same run. Every node is `cli.ts join` with Go's flags; routers drop unsolicited packets and
 * libp2p uses the WAN's IPv6 side (3fff::/20, see nat_topology.ts). The relay's per-peer rate
 * limit is lifted (`--relay-service-max-rate 0`) so that the path itself is measured.
 */
import { encodeToken, generateNetworkConfig } from "../lib/config/token.ts";
import { generateIdentity } from "../lib/crypto/identity.ts";
import { createNatTopology, type NatTopology, natTopologySkipReason } from "./nat_topology.ts";
import { type Namespace, namespaceSkipReason } from "./netns.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 5);
const ROOT = new URL("../", import.meta.url).pathname;

const skip = namespaceSkipReason({ tun: true }) ?? natTopologySkipReason();
if (skip) {
  console.log(`bench:nat skipped: ${skip}`);
  Deno.exit(0);
}
try {
  await new Deno.Command("iperf3", { args: ["--version"], stdout: "null" }).output();
} catch {
  console.log("bench:nat skipped: iperf3 is missing (apt-get install iperf3)");
  Deno.exit(0);
}

interface Member {
  ns: Namespace;
  vpn: string;
  peerId: string;
  dir: string;
  child?: Deno.ChildProcess;
}

const topo: NatTopology = await createNatTopology("drop", 79);
const dir = await Deno.makeTempDir({ prefix: "bench-nat-" });
const token = encodeToken(generateNetworkConfig());
const members: Member[] = [];
for (
  const [ns, vpn] of [[topo.pub, "10.1.0.1"], [topo.homeA, "10.1.0.2"], [
    topo.homeB,
    "10.1.0.3",
  ]] as const
) {
  const id = await generateIdentity();
  const d = `${dir}/${vpn}`;
  await Deno.mkdir(d, { recursive: true });
  await Deno.writeFile(`${d}/privkey`, id.privateKeyProtobuf, { mode: 0o600 });
  members.push({ ns, vpn, peerId: id.peerId, dir: d });
}
const [pub, a, b] = members;
const pubAddr = `/ip6/${topo.pub.address6}/tcp/4001/p2p/${pub.peerId}`;

function start(m: Member, extra: string[]): void {
  m.child = m.ns.spawn(Deno.execPath(), [
    "run",
    "-A",
    "--v8-flags=--max-semi-space-size=1",
    `${ROOT}cli.ts`,
    "join",
    "--token",
    token,
    "--address",
    `${m.vpn}/24`,
    "--listen-maddrs",
    "/ip6/::/tcp/4001",
    "--mdns=false",
    "--dht=false",
    "--natmap=false",
    "--privkey-cache",
    "--privkey-cache-dir",
    m.dir,
    "--state-dir",
    m.dir,
    "--log-level",
    "warn",
    ...extra,
  ], { stdout: "null", stderr: "null" });
}

async function stop(m: Member): Promise<void> {
  try {
    m.child?.kill("SIGTERM");
  } catch { /* gone */ }
  await m.child?.status;
  m.child = undefined;
}

async function ping(from: Namespace, to: string): Promise<void> {
  for (let i = 0; i < 120; i++) {
    const ok = await new Deno.Command("ip", {
      args: ["netns", "exec", from.name, "ping", "-c", "1", "-W", "0.5", to],
      stdout: "null",
      stderr: "null",
    }).output();
    if (ok.success) return;
  }
  throw new Error(`no ping reply from ${to} in ${from.name}`);
}

/** One iperf3 flow from `from` to the VPN address `to` (served in `server`); Mbit/s received. */
async function flow(from: Namespace, server: Namespace, to: string): Promise<number> {
  const s = server.spawn("iperf3", ["-s", "-1", "-B", to], { stdout: "null", stderr: "null" });
  await new Promise((r) => setTimeout(r, 300));
  const out = await from.run("iperf3", ["-c", to, "-t", String(SECONDS), "-J"]);
  await s.status;
  return JSON.parse(out).end.sum_received.bits_per_second / 1e6;
}

function rssMiB(child: Deno.ChildProcess | undefined): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${child?.pid}/status`);
    return Math.round(Number(status.match(/VmRSS:\s+(\d+)/)?.[1] ?? 0) / 1024);
  } catch {
    return NaN;
  }
}

const pubFlags = ["--relay-service-max-rate", "0"];
const homeFlags = ["--discovery-bootstrap-peers", pubAddr, "--autorelay-static-peer", pubAddr];
try {
  start(pub, pubFlags);
  start(a, [...homeFlags, "--holepunch=false"]);
  start(b, [...homeFlags, "--holepunch=false"]);
  await ping(a.ns, pub.vpn);
  await ping(a.ns, b.vpn);
  const direct = await flow(a.ns, pub.ns, pub.vpn);
  const wan0 = await topo.pubBytes();
  const relayed = await flow(a.ns, b.ns, b.vpn);
  const relayedWan = await topo.pubBytes() - wan0;
  const relayRss = rssMiB(pub.child);
  await stop(a);
  await stop(b);
  start(a, homeFlags);
  start(b, homeFlags);
  await ping(a.ns, b.vpn);
  // Wait until pings between the homes no longer cross the public member (hole punched).
  let punchedAfterMs = NaN;
  const t0 = performance.now();
  while (performance.now() - t0 < 60_000) {
    const before = await topo.pubBytes();
    await a.ns.run("ping", ["-c", "5", "-i", "0.2", "-s", "1000", b.vpn]).catch(() => "");
    if (await topo.pubBytes() - before < 3000) {
      punchedAfterMs = Math.round(performance.now() - t0);
      break;
    }
  }
  const wan1 = await topo.pubBytes();
  const punched = await flow(a.ns, b.ns, b.vpn);
  const punchedWan = await topo.pubBytes() - wan1;
  console.log(`TCP over the VPN, ${SECONDS} s flows (iperf3), one run:`);
  console.log(`  direct (home A -> public member):  ${direct.toFixed(0)} Mbit/s  (baseline)`);
  console.log(
    `  through the relay (A -> B):       ${relayed.toFixed(0)} Mbit/s  ratio ${
      (relayed / direct).toFixed(2)
    }  relay WAN bytes ${(relayedWan / 1e6).toFixed(0)} MB, relay RSS ${relayRss} MiB`,
  );
  console.log(
    `  after hole punching (A -> B):     ${punched.toFixed(0)} Mbit/s  ratio ${
      (punched / direct).toFixed(2)
    }  relay WAN bytes ${(punchedWan / 1e3).toFixed(0)} kB  (direct after ${punchedAfterMs} ms)`,
  );
} finally {
  for (const m of members) await stop(m);
  await topo.close();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
