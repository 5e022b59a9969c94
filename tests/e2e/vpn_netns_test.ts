/**
 * The VPN between processes in network namespaces, on real TUN devices: pings, a hash-checked
 * 50 MB TCP transfer, both data planes, a three-node mesh, and a node of another network.
 * Needs root and /dev/net/tun; skipped with the reason otherwise.
 */
import assert from "node:assert/strict";
import { generateNetworkConfig } from "../../lib/config/token.ts";
import type { VpnOptions } from "../../lib/vpn/config.ts";
import { createNamespacePair, type Namespace, namespaceSkipReason } from "../../scripts/netns.ts";
import {
  childConfig,
  createNamespaceLan,
  pingUntilReply,
  spawnVpnChild,
  transferOverTcp,
  type VpnChild,
} from "./vpn_helpers.ts";

const skip = namespaceSkipReason({ tun: true });
if (skip) console.log(`VPN namespace tests skipped: ${skip}`);

/** `10.1.0.<n>/24` by default; `addressOf` overrides it. */
type AddressOf = (i: number) => string;

/**
 * Starts a VPN child in each namespace into `children`, each bootstrapping from all the earlier
 * ones (discovery is off, so a node only ever connects to the peers it is given).
 */
async function startChildren(
  children: VpnChild[],
  namespaces: Namespace[],
  vpn: (i: number) => VpnOptions,
  addressOf: AddressOf = (i) => `10.1.0.${i + 1}/24`,
): Promise<void> {
  const network = generateNetworkConfig();
  const peerIds: string[] = [];
  for (const [i, ns] of namespaces.entries()) {
    const bootstrap = peerIds.map((id, j) => `/ip4/${namespaces[j].address}/tcp/4001/p2p/${id}`);
    const child = spawnVpnChild(
      childConfig(network, { address: addressOf(i), ...vpn(i) }, { bootstrapPeers: bootstrap }),
      ns.name,
    );
    children.push(child);
    const ready = await child.waitFor((e) => e.event === "ready", `node ${i} ready`);
    peerIds.push(ready.peerId as string);
  }
}

/**
 * Runs `body` with the children it starts in `namespaces`: once it succeeds they must stop
 * cleanly (exit 0 within 5 s); whatever happens, leftovers are killed and the namespaces
 * removed.
 */
async function withChildren<T extends { close(): Promise<void> }>(
  namespaces: T,
  body: (children: VpnChild[]) => Promise<void>,
): Promise<void> {
  const children: VpnChild[] = [];
  try {
    await body(children);
    await stopChildren(children.splice(0));
  } finally {
    for (const c of children) await c.terminate("SIGKILL").catch(() => {});
    await namespaces.close();
  }
}

async function stopChildren(children: VpnChild[]): Promise<void> {
  for (const c of children) {
    const { code, exitMs } = await c.terminate();
    assert.equal(code, 0, `child exit code; stderr:\n${c.stderr().slice(-2000)}`);
    assert.ok(exitMs < 5000, `child took ${Math.round(exitMs)} ms to stop`);
  }
}

Deno.test({
  name: "two nodes: ping both ways and a 50 MB TCP transfer arrives intact over the fast protocol",
  ignore: skip !== undefined,
  async fn() {
    const pair = await createNamespacePair("evv", 231);
    await withChildren(pair, async (children) => {
      await startChildren(children, [pair.a, pair.b], () => ({ mtu: 1420 }));
      await pingUntilReply(pair.a, "10.1.0.2");
      await pingUntilReply(pair.b, "10.1.0.1");
      const { sent, received } = await transferOverTcp(
        pair.a,
        pair.b,
        "10.1.0.2",
        50 * 1024 * 1024,
      );
      assert.equal(received.bytes, 50 * 1024 * 1024);
      assert.equal(received.sha256, sent.sha256);
      const [a, b] = await Promise.all(children.map((c) => c.counters()));
      const fast = a.vpn.sent.fastGso.bytes + a.vpn.sent.fast.bytes;
      assert.ok(fast > 50 * 1024 * 1024, `fast protocols carried ${fast} bytes`);
      assert.equal(a.vpn.sent.legacy.packets, 0);
      assert.equal(a.vpn.dropped.malformed, 0, "super-packets from the interface are well formed");
      // (nonMember may be 1: a's first stream can reach b before a's machines entry does.)
      assert.equal(b.vpn.inbound.badFrame, 0);
      // The kernel's own super-packets pass the virtio and source checks.
      assert.equal(b.vpn.inbound.badOffload, 0);
      assert.equal(b.vpn.inbound.spoofedSource + b.vpn.inbound.unknownSource, 0);
      assert.deepEqual(a.links.map((l) => l.state), ["open"]);
    });
  },
});

Deno.test({
  name: "legacy data plane: pings and a 5 MB transfer travel over /edgevpn/0.1 streams",
  ignore: skip !== undefined,
  async fn() {
    const pair = await createNamespacePair("evl", 232);
    await withChildren(pair, async (children) => {
      await startChildren(
        children,
        [pair.a, pair.b],
        () => ({ mtu: 1420, dataPlane: "legacy", legacyInflight: 512 }),
      );
      await pingUntilReply(pair.a, "10.1.0.2");
      await pingUntilReply(pair.b, "10.1.0.1");
      const { sent, received } = await transferOverTcp(pair.a, pair.b, "10.1.0.2", 5 * 1024 * 1024);
      assert.equal(received.sha256, sent.sha256);
      const [a, b] = await Promise.all(children.map((c) => c.counters()));
      assert.ok(a.vpn.sent.legacy.packets > 3000, `${a.vpn.sent.legacy.packets} legacy packets`);
      assert.equal(a.vpn.sent.fast.packets + a.vpn.sent.fastGso.packets, 0);
      assert.ok(b.vpn.received.legacy.packets > 3000);
      assert.deepEqual(a.links.map((l) => l.protocol), ["legacy"]);
    });
  },
});

Deno.test({
  name: "IPv6 VPN addresses: two nodes ping each other over fd00::/64",
  ignore: skip !== undefined,
  async fn() {
    const pair = await createNamespacePair("ev6", 235);
    await withChildren(pair, async (children) => {
      await startChildren(
        children,
        [pair.a, pair.b],
        () => ({ mtu: 1420 }),
        (i) => `fd00::${i + 1}/64`,
      );
      for (const [ns, to] of [[pair.a, "fd00::2"], [pair.b, "fd00::1"]] as const) {
        await pingUntilReply(ns, to);
      }
      const [a] = await Promise.all(children.map((c) => c.counters()));
      assert.deepEqual(a.routes.map((r) => [r.address, r.status]), [["fd00::1", "self"], [
        "fd00::2",
        "ok",
      ]]);
    });
  },
});

Deno.test({
  name: "three nodes on one LAN form a full mesh: every pair pings",
  ignore: skip !== undefined,
  async fn() {
    const lan = await createNamespaceLan("evm", 3, 233);
    await withChildren(lan, async (children) => {
      // One node without offload, so that both fast protocols are in use.
      await startChildren(children, lan.nodes, (i) => ({ offload: i !== 2 }));
      for (const [i, ns] of lan.nodes.entries()) {
        for (let j = 0; j < 3; j++) if (j !== i) await pingUntilReply(ns, `10.1.0.${j + 1}`);
      }
      const counters = await Promise.all(children.map((c) => c.counters()));
      assert.deepEqual(counters.map((c) => c.links.length), [2, 2, 2]);
      assert.ok(counters[0].links.some((l) => l.protocol === "fast-gso"));
      assert.ok(counters[0].links.some((l) => l.protocol === "fast"));
    });
  },
});

Deno.test({
  name: "a node of another network cannot send a packet in",
  ignore: skip !== undefined,
  async fn() {
    const pair = await createNamespacePair("evx", 234);
    await withChildren(pair, async (children) => {
      const a = spawnVpnChild(
        childConfig(generateNetworkConfig(), { address: "10.1.0.1/24" }),
        pair.a.name,
      );
      children.push(a);
      const ra = await a.waitFor((e) => e.event === "ready", "a ready");
      // The intruder knows a's peer ID and routes to it statically, with its own token.
      const x = spawnVpnChild(
        childConfig(generateNetworkConfig(), {
          address: "10.1.0.3/24",
          staticPeertable: [`10.1.0.1:${ra.peerId}`],
        }, { bootstrapPeers: [`/ip4/${pair.a.address}/tcp/4001/p2p/${ra.peerId}`] }),
        pair.b.name,
      );
      children.push(x);
      await x.waitFor((e) => e.event === "ready", "intruder ready");
      await assert.rejects(
        pair.b.run("ping", ["-c", "3", "-i", "0.3", "-W", "1", "10.1.0.1"]),
        "the intruder's pings go unanswered",
      );
      const [ca, cx] = await Promise.all([a.counters(), x.counters()]);
      assert.ok(ca.vpn.inbound.nonMember > 0, "a refused the intruder's streams");
      assert.equal(ca.tun.txPackets, 0, "nothing reached a's interface");
      assert.ok(cx.vpn.links.dials > 0, "the intruder did try");
    });
  },
});

Deno.test({
  name:
    "a member sending packets with another member's or an unknown source gets them dropped and counted",
  ignore: skip !== undefined,
  async fn() {
    const lan = await createNamespaceLan("evs", 3, 239);
    await withChildren(lan, async (children) => {
      await startChildren(children, lan.nodes, () => ({}));
      const [a, , c] = lan.nodes;
      await pingUntilReply(a, "10.1.0.2");
      await pingUntilReply(c, "10.1.0.2");
      // The forger: node a's own kernel sends from c's address (and from one nobody holds)
      // through a's VPN interface, as a member running any program could.
      const ready = children[0].events.find((e) => e.event === "ready")!;
      for (const forged of ["10.1.0.3/32", "10.1.0.99/32"]) {
        await a.run("ip", ["addr", "add", forged, "dev", ready.interface as string]);
      }
      const [, beforeB, beforeC] = await Promise.all(children.map((ch) => ch.counters()));
      for (const source of ["10.1.0.3", "10.1.0.99"]) {
        await assert.rejects(
          a.run("ping", ["-c", "3", "-i", "0.2", "-W", "1", "-I", source, "10.1.0.2"]),
          `pings from ${source} go unanswered`,
        );
      }
      const [ca, cb, cc] = await Promise.all(children.map((ch) => ch.counters()));
      assert.ok(ca.vpn.sent.fastGso.packets + ca.vpn.sent.fast.packets >= 6, "a did send them");
      assert.equal(cb.vpn.inbound.spoofedSource - beforeB.vpn.inbound.spoofedSource, 3);
      assert.equal(cb.vpn.inbound.unknownSource - beforeB.vpn.inbound.unknownSource, 3);
      assert.equal(
        cb.tun.txPackets,
        beforeB.tun.txPackets,
        "none of them reached b's interface",
      );
      assert.equal(
        cc.vpn.received.fastGso.packets + cc.vpn.received.fast.packets,
        beforeC.vpn.received.fastGso.packets + beforeC.vpn.received.fast.packets,
        "so c got no reply to pings it never sent",
      );
      // a's real address still works.
      await pingUntilReply(a, "10.1.0.2");
      assert.match(children[1].stderr(), /source address the sending peer does not own/);
    });
  },
});
