/**
 * `--natmap` (UPnP) by its effect: a member behind a NAT router running miniupnpd (a real UPnP
 * IGD) maps its port, announces the router's address with the mapped port, and a public member
 * dials that address straight through the mapping. Needs root, /dev/net/tun, iproute2,
 * iptables and miniupnpd with its iptables backend; skipped with the reason otherwise.
 */
import assert from "node:assert/strict";
import { generateNetworkConfig } from "../../lib/config/token.ts";
import { natTopologySkipReason } from "../../scripts/nat_topology.ts";
import { type Namespace, namespace, namespaceSkipReason, sh } from "../../scripts/netns.ts";
import {
  childConfig,
  countersUntil,
  pingUntilReply,
  spawnVpnChild,
  type VpnChild,
} from "./vpn_helpers.ts";

const MINIUPNPD = "/usr/sbin/miniupnpd";
const IPTABLES = "/usr/sbin/iptables-legacy";

/** Why miniupnpd cannot act as the gateway here, or undefined. */
function miniupnpdSkipReason(): string | undefined {
  try {
    Deno.statSync(MINIUPNPD);
  } catch {
    return `${MINIUPNPD} is missing (apt-get install miniupnpd-iptables)`;
  }
  const out = new Deno.Command(MINIUPNPD, { args: ["--version"], stdout: "piped", stderr: "piped" })
    .outputSync();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  // The router's rules below are iptables chains; the nftables build keeps its own tables.
  if (!text.includes("iptables")) return `miniupnpd is not the iptables build: ${text.trim()}`;
  try {
    Deno.statSync(IPTABLES);
  } catch {
    return `${IPTABLES} is missing (miniupnpd's iptables build writes legacy tables)`;
  }
  return undefined;
}

const skip = namespaceSkipReason({ tun: true }) ?? natTopologySkipReason() ??
  miniupnpdSkipReason();
if (skip) console.log(`UPnP namespace test skipped: ${skip}`);

/**
 * The router's WAN address: js-libp2p refuses a UPnP mapping whose external address it takes
 * for private ("double NAT"), and takes every documentation and benchmarking IPv4 range for
 * private, so the WAN uses a global range; nothing routes out of these namespaces.
 */
const WAN = { router: "192.0.3.2", pub: "192.0.3.1", prefix: 24 };
const LAN = { router: "192.168.11.1", home: "192.168.11.2", prefix: 24 };

/** home ── router [MASQUERADE, unsolicited WAN packets dropped, miniupnpd] ── public member */
interface UpnpTopology {
  home: Namespace;
  router: Namespace;
  pub: Namespace;
  wanIf: string;
  lanIf: string;
  close(): Promise<void>;
}

async function createUpnpTopology(): Promise<UpnpTopology> {
  const id = crypto.randomUUID().slice(0, 5);
  const names = { home: `upnp${id}h`, router: `upnp${id}r`, pub: `upnp${id}p` };
  const created: string[] = [];
  const close = async () => {
    for (const n of created.reverse()) await sh("ip", ["netns", "del", n]).catch(() => {});
  };
  const wanIf = `uw${id}`;
  const lanIf = `ul${id}`;
  const x = (n: string, ...args: string[]) => sh("ip", ["netns", "exec", n, ...args]);
  try {
    for (const n of Object.values(names)) {
      await sh("ip", ["netns", "add", n]);
      created.push(n);
      await sh("ip", ["-n", n, "link", "set", "lo", "up"]);
    }
    const veth = (a: string, aNs: string, b: string, bNs: string) =>
      sh("ip", ["link", "add", a, "netns", aNs, "type", "veth", "peer", b, "netns", bNs]);
    await veth(wanIf, names.router, `up${id}`, names.pub);
    await veth(lanIf, names.router, `uh${id}`, names.home);
    const addr = (n: string, a: string, prefix: number, dev: string) =>
      sh("ip", ["-n", n, "addr", "add", `${a}/${prefix}`, "dev", dev]);
    await addr(names.router, WAN.router, WAN.prefix, wanIf);
    await addr(names.pub, WAN.pub, WAN.prefix, `up${id}`);
    await addr(names.router, LAN.router, LAN.prefix, lanIf);
    await addr(names.home, LAN.home, LAN.prefix, `uh${id}`);
    for (const [n, dev] of [[names.router, wanIf], [names.router, lanIf], [names.pub, `up${id}`]]) {
      await sh("ip", ["-n", n, "link", "set", dev, "up"]);
    }
    await sh("ip", ["-n", names.home, "link", "set", `uh${id}`, "up"]);
    await sh("ip", ["-n", names.home, "route", "add", "default", "via", LAN.router]);
    await x(names.router, "sysctl", "-qw", "net.ipv4.ip_forward=1");
    // miniupnpd's iptables build adds its rules to chains named MINIUPNPD that it expects to
    // exist and be jumped to (Debian ships no script that makes them). It writes them through
    // libiptc, the legacy backend, so the router's whole firewall is legacy iptables: a DROP
    // in the nf_tables one would drop what the mapping lets through.
    const ipt = (...args: string[]) => x(names.router, IPTABLES, ...args);
    await ipt("-t", "nat", "-N", "MINIUPNPD");
    await ipt("-t", "nat", "-A", "PREROUTING", "-i", wanIf, "-j", "MINIUPNPD");
    await ipt("-t", "nat", "-N", "MINIUPNPD-POSTROUTING");
    await ipt("-t", "nat", "-A", "POSTROUTING", "-o", wanIf, "-j", "MINIUPNPD-POSTROUTING");
    await ipt("-t", "nat", "-A", "POSTROUTING", "-o", wanIf, "-j", "MASQUERADE");
    await ipt("-N", "MINIUPNPD");
    await ipt("-A", "FORWARD", "-i", wanIf, "-o", lanIf, "-j", "MINIUPNPD");
    await ipt(
      "-A",
      "FORWARD",
      "-i",
      wanIf,
      "-m",
      "conntrack",
      "--ctstate",
      "ESTABLISHED,RELATED",
      "-j",
      "ACCEPT",
    );
    await ipt("-A", "FORWARD", "-i", wanIf, "-j", "DROP");
    await ipt(
      "-A",
      "INPUT",
      "-i",
      wanIf,
      "-m",
      "conntrack",
      "--ctstate",
      "ESTABLISHED",
      "-j",
      "ACCEPT",
    );
    await ipt("-A", "INPUT", "-i", wanIf, "-j", "DROP");
    return {
      home: namespace(names.home, LAN.home),
      router: namespace(names.router, WAN.router),
      pub: namespace(names.pub, WAN.pub),
      wanIf,
      lanIf,
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/** miniupnpd in the router namespace with its config, pid and lease files in `dir`. */
interface Gateway {
  leases(): Promise<string>;
  log(): string;
  stop(): Promise<void>;
}

async function startMiniupnpd(topo: UpnpTopology, dir: string): Promise<Gateway> {
  const leaseFile = `${dir}/leases`;
  await Deno.writeTextFile(
    `${dir}/miniupnpd.conf`,
    [
      `ext_ifname=${topo.wanIf}`,
      `listening_ip=${topo.lanIf}`,
      "port=0",
      "enable_upnp=yes",
      "enable_natpmp=no",
      "secure_mode=no",
      "ipv6_disable=yes",
      "system_uptime=yes",
      `lease_file=${leaseFile}`,
      `uuid=${crypto.randomUUID()}`,
      "allow 1024-65535 192.168.0.0/16 1024-65535",
      "deny 0-65535 0.0.0.0/0 0-65535",
      "",
    ].join("\n"),
  );
  // -d: stays in the foreground and logs to stderr, so the test owns the process.
  const process = topo.router.spawn(MINIUPNPD, [
    "-d",
    "-f",
    `${dir}/miniupnpd.conf`,
    "-P",
    `${dir}/miniupnpd.pid`,
  ], { stdout: "null" });
  let log = "";
  const listening = Promise.withResolvers<void>();
  const reading = (async () => {
    for await (const chunk of process.stderr.pipeThrough(new TextDecoderStream())) {
      log += chunk;
      if (log.includes("HTTP listening on port")) listening.resolve();
    }
  })();
  const ended = process.status.then((s) => {
    throw new Error(`miniupnpd ended (${s.code}) before listening:\n${log}`);
  });
  await Promise.race([listening.promise, ended]);
  ended.catch(() => {});
  return {
    leases: () => Deno.readTextFile(leaseFile).catch(() => ""),
    log: () => log,
    async stop() {
      try {
        process.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      await process.status;
      await reading;
    },
  };
}

/**
 * Packets (connections: conntrack handles the rest) that miniupnpd's DNAT rule for WAN port
 * `port` forwarded, read from the router's MINIUPNPD nat chain. iptables-legacy cannot print
 * the rule's target revision; the lease file says where it points.
 */
async function dnatPackets(router: Namespace, port: number): Promise<number> {
  const rules = await router.run(IPTABLES, ["-t", "nat", "-L", "MINIUPNPD", "-n", "-v", "-x"]);
  return rules.split("\n").filter((l) => / DNAT /.test(l) && l.includes(`dpt:${port} `))
    .reduce((sum, l) => sum + Number(l.trim().split(/\s+/)[0]), 0);
}

Deno.test({
  name:
    "--natmap: behind a router with a UPnP gateway (miniupnpd) the member maps its port, announces the router's address with the mapped port, and a public member dials it directly through the mapping",
  ignore: skip !== undefined,
  async fn() {
    const topo = await createUpnpTopology();
    const dir = await Deno.makeTempDir({ prefix: "upnp_test" });
    const children: VpnChild[] = [];
    let gateway: Gateway | undefined;
    try {
      gateway = await startMiniupnpd(topo, dir);
      const network = generateNetworkConfig();
      // No bootstrap peer, no relay: the only way to this member is the address it announces.
      const home = spawnVpnChild(
        childConfig(network, { address: "10.1.0.2/24" }, {
          listenMaddrs: ["/ip4/0.0.0.0/tcp/4001"],
          nat: { natMap: true },
          logLevel: Deno.env.get("NAT_TEST_LOGS") ? "debug" : undefined,
        }),
        topo.home.name,
      );
      children.push(home);
      const homeId = (await home.waitFor((e) => e.event === "ready", "home ready"))
        .peerId as string;
      const mappedPrefix = `/ip4/${WAN.router}/tcp/`;
      const homeCounters = await countersUntil(
        home,
        (c) => c.addrs.some((a) => a.startsWith(mappedPrefix)),
        "the router's address with the mapped port announced",
        (c) => c.addrs,
      );
      const mapped = homeCounters.addrs.find((a) => a.startsWith(mappedPrefix))!;
      const mappedPort = Number(mapped.slice(mappedPrefix.length).split("/")[0]);
      assert.equal(mapped, `${mappedPrefix}${mappedPort}/p2p/${homeId}`);
      // miniupnpd's own record of the mapping: protocol, external port, client and its port.
      const leases = await gateway.leases();
      assert.match(leases, new RegExp(`^TCP:${mappedPort}:${LAN.home}:4001:`, "m"), leases);
      assert.equal(await dnatPackets(topo.router, mappedPort), 0, "nothing forwarded yet");

      const pub = spawnVpnChild(
        childConfig(network, { address: "10.1.0.1/24" }, {
          listenMaddrs: ["/ip4/0.0.0.0/tcp/4001"],
          bootstrapPeers: [mapped],
        }),
        topo.pub.name,
      );
      children.push(pub);
      await pub.waitFor((e) => e.event === "ready", "public member ready");
      const pubCounters = await countersUntil(
        pub,
        (c) => c.connections.some((x) => x.peer === homeId),
        "the public member connected to the home member",
        (c) => c.addrs,
      );
      assert.deepEqual(
        pubCounters.connections.filter((x) => x.peer === homeId).map((x) => [
          x.direction,
          x.relayed,
        ]),
        [["outbound", false]],
      );
      // The connection came in through miniupnpd's DNAT rule.
      assert.ok(
        await dnatPackets(topo.router, mappedPort) > 0,
        await topo.router.run(IPTABLES, ["-t", "nat", "-L", "-n", "-v", "-x"]),
      );
      await pingUntilReply(topo.home, "10.1.0.1");

      for (const c of children.splice(0)) {
        const { code } = await c.terminate();
        assert.equal(code, 0, `child exit code; stderr:\n${c.stderr().slice(-2000)}`);
      }
    } catch (e) {
      if (gateway) console.error(`miniupnpd log:\n${gateway.log()}`);
      throw e;
    } finally {
      for (const c of children) await c.terminate("SIGKILL").catch(() => {});
      await gateway?.stop();
      await topo.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
