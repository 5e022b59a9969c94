/**
 * NAT traversal end to end: two members in homes behind NAT routers (iptables MASQUERADE) and
 * one public member, each a VPN node in its own network namespace. Needs root, /dev/net/tun,
 * iproute2 and iptables; skipped with the reason otherwise.
 */
import assert from "node:assert/strict";
import { generateNetworkConfig } from "../../lib/config/token.ts";
import type { NatOptions } from "../../lib/node/nat.ts";
import {
  createNatTopology,
  type NatTopology,
  natTopologySkipReason,
  type RouterMode,
} from "../../scripts/nat_topology.ts";
import { namespaceSkipReason } from "../../scripts/netns.ts";
import {
  childConfig,
  pingUntilReply,
  spawnVpnChild,
  transferOverTcp,
  type VpnChild,
} from "./vpn_helpers.ts";

const skip = namespaceSkipReason({ tun: true }) ?? natTopologySkipReason();
if (skip) console.log(`NAT namespace tests skipped: ${skip}`);

/** What each home's test service call sends (see `vpn_child.ts`). */
const SERVICE_BYTES = 1 << 20;

interface Members {
  topo: NatTopology;
  pub: VpnChild;
  a: VpnChild;
  b: VpnChild;
  ids: { pub: string; a: string; b: string };
}

/**
 * The public member (relay service on) and two home members that bootstrap from it and hold
 * a slot on it; `ipv6` puts every libp2p address on the WAN's IPv6 side (3fff::/20).
 */
async function startMembers(
  topo: NatTopology,
  children: VpnChild[],
  options: { ipv6?: boolean; pubNat?: NatOptions; homeNat?: NatOptions } = {},
): Promise<Members> {
  const network = generateNetworkConfig();
  const listen = options.ipv6 ? ["/ip6/::/tcp/4001"] : ["/ip4/0.0.0.0/tcp/4001"];
  const pub = spawnVpnChild(
    childConfig(network, { address: "10.1.0.1/24" }, {
      listenMaddrs: listen,
      nat: { relayService: {}, ...options.pubNat },
    }),
    topo.pub.name,
  );
  children.push(pub);
  const pubId = (await pub.waitFor((e) => e.event === "ready", "public member ready"))
    .peerId as string;
  const pubAddr = options.ipv6
    ? `/ip6/${topo.pub.address6}/tcp/4001/p2p/${pubId}`
    : `/ip4/${topo.pub.address}/tcp/4001/p2p/${pubId}`;
  const home = (ns: string, address: string) => {
    const child = spawnVpnChild(
      childConfig(network, { address }, {
        listenMaddrs: listen,
        bootstrapPeers: [pubAddr],
        nat: { autoRelay: { staticRelays: [pubAddr] }, ...options.homeNat },
        testService: { bytes: SERVICE_BYTES },
      }),
      ns,
    );
    children.push(child);
    return child;
  };
  const a = home(topo.homeA.name, "10.1.0.2/24");
  const b = home(topo.homeB.name, "10.1.0.3/24");
  const [readyA, readyB] = await Promise.all([
    a.waitFor((e) => e.event === "ready", "home A ready"),
    b.waitFor((e) => e.event === "ready", "home B ready"),
  ]);
  return {
    topo,
    pub,
    a,
    b,
    ids: { pub: pubId, a: readyA.peerId as string, b: readyB.peerId as string },
  };
}

/**
 * Has `from` call the member-only test service of every peer it has a route to (the stream
 * path services and files take) and returns its result for `to`.
 */
async function callService(from: VpnChild, to: string): Promise<Record<string, unknown>> {
  const start = from.events.length;
  from.process.kill("SIGUSR2");
  return await from.waitFor(
    (e) => e.event === "service" && e.peer === to && from.events.indexOf(e) >= start,
    "a service call",
  );
}

/** Polls the child's counters until `ok` holds. */
async function until(
  child: VpnChild,
  ok: (c: Awaited<ReturnType<VpnChild["counters"]>>) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<Awaited<ReturnType<VpnChild["counters"]>>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = await child.counters();
    if (ok(c)) return c;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(c).slice(0, 3000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function withTopology(
  mode: RouterMode,
  wan: number,
  body: (topo: NatTopology, children: VpnChild[]) => Promise<void>,
): Promise<void> {
  const topo = await createNatTopology(mode, wan);
  const children: VpnChild[] = [];
  try {
    await body(topo, children);
    for (const c of children.splice(0)) {
      const { code } = await c.terminate();
      assert.equal(code, 0, `child exit code; stderr:\n${c.stderr().slice(-2000)}`);
    }
  } finally {
    for (const c of children) await c.terminate("SIGKILL").catch(() => {});
    await topo.close();
  }
}

Deno.test({
  name:
    "two members behind NAT join through a public relay member: ledgers converge, they ping, move TCP over the VPN and reach each other's service through the relay",
  ignore: skip !== undefined,
  async fn() {
    await withTopology("plain", 71, async (topo, children) => {
      const m = await startMembers(topo, children);
      await until(m.a, (c) => c.relaySlots.length === 1, "A's relay slot");
      await until(m.b, (c) => c.relaySlots.length === 1, "B's relay slot");
      // Ledgers converge through the public member: each home routes to the other.
      await until(m.a, (c) => c.routes.some((r) => r.peerId === m.ids.b), "A's route to B");
      await until(m.b, (c) => c.routes.some((r) => r.peerId === m.ids.a), "B's route to A");
      await pingUntilReply(topo.homeA, "10.1.0.3");
      await pingUntilReply(topo.homeB, "10.1.0.2");
      const result = await transferOverTcp(topo.homeA, topo.homeB, "10.1.0.3", 2 << 20);
      assert.equal(result.received.sha256, result.sent.sha256);
      // A member-only stream protocol (as services and files use) works both ways on the relay.
      const relayBefore = (await m.pub.counters()).relayPeers;
      const toB = await callService(m.a, m.ids.b);
      assert.deepEqual([toB.ok, toB.relayed], [true, true], JSON.stringify(toB));
      const toA = await callService(m.b, m.ids.a);
      assert.deepEqual([toA.ok, toA.relayed], [true, true], JSON.stringify(toA));
      const relayAfter = (await m.pub.counters()).relayPeers;
      assert.ok(
        relayAfter[m.ids.a].bytesIn - relayBefore[m.ids.a].bytesIn >= SERVICE_BYTES,
        JSON.stringify({ relayBefore, relayAfter }),
      );
      const a = await m.a.counters();
      const connsToB = a.connections.filter((c) => c.peer === m.ids.b);
      assert.ok(
        connsToB.length > 0 && connsToB.every((c) => c.relayed),
        JSON.stringify(connsToB),
      );
      const relay = (await m.pub.counters()).relayPeers;
      assert.ok(relay[m.ids.a].bytesIn > 2 << 20, JSON.stringify(relay));
      assert.ok(relay[m.ids.b].bytesOut > 2 << 20, JSON.stringify(relay));
    });
  },
});

Deno.test({
  name:
    "where the NAT allows it, hole punching upgrades the pair to a direct connection: a TCP flow through the VPN survives the switch and the relay stops carrying it",
  ignore: skip !== undefined,
  async fn() {
    await withTopology("drop", 72, async (topo, children) => {
      const m = await startMembers(topo, children, {
        ipv6: true,
        homeNat: { holePunch: true },
      });
      await until(m.a, (c) => c.relaySlots.length === 1, "A's relay slot");
      await until(m.b, (c) => c.relaySlots.length === 1, "B's relay slot");
      await until(m.a, (c) => c.routes.some((r) => r.peerId === m.ids.b), "A's route to B");
      await until(m.b, (c) => c.routes.some((r) => r.peerId === m.ids.a), "B's route to A");
      // 8 MB at 1 MB/s: the flow starts on the relay and outlives the hole punch.
      const flow = transferOverTcp(topo.homeA, topo.homeB, "10.1.0.3", 8_000_000, {
        rateBytes: 1_000_000,
        timeoutMs: 45_000,
      });
      const direct = await until(
        m.a,
        (c) => c.connections.some((x) => x.peer === m.ids.b && !x.relayed),
        "a direct connection from A to B",
        30_000,
      ).catch((e) => {
        if (Deno.env.get("NAT_TEST_LOGS")) console.log(m.a.stderr(), "\n-----\n", m.b.stderr());
        throw e;
      });
      const result = await flow;
      if (Deno.env.get("NAT_TEST_LOGS")) console.log(m.a.stderr(), "\n-----\n", m.b.stderr());
      assert.equal(result.received.sha256, result.sent.sha256);
      assert.equal(result.received.bytes, 8_000_000);
      const a = await m.a.counters();
      assert.ok(a.vpn.links.moves >= 1, JSON.stringify(a.vpn.links));
      assert.ok(
        !a.connections.some((x) => x.peer === m.ids.b && x.relayed),
        JSON.stringify(direct.connections),
      );
      // After the upgrade, the relay carries none of the pair's traffic.
      const before = (await m.pub.counters()).relayPeers;
      const wanBefore = await topo.pubBytes();
      const more = await transferOverTcp(topo.homeA, topo.homeB, "10.1.0.3", 4 << 20, {
        port: 7001,
      });
      assert.equal(more.received.sha256, more.sent.sha256);
      const after = (await m.pub.counters()).relayPeers;
      assert.equal(after[m.ids.a]?.bytesIn ?? 0, before[m.ids.a]?.bytesIn ?? 0);
      assert.equal(after[m.ids.b]?.bytesOut ?? 0, before[m.ids.b]?.bytesOut ?? 0);
      const wan = await topo.pubBytes() - wanBefore;
      assert.ok(wan < 200_000, `the public member's interface moved ${wan} bytes during 4 MiB`);
    });
  },
});
