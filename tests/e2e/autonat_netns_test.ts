/**
 * AutoNAT (`--natservice`) and announced addresses behind real NAT: a public member and two
 * members in homes behind MASQUERADE routers, each a VPN node in its own network namespace.
 * Needs root, /dev/net/tun, iproute2 and iptables; skipped with the reason otherwise.
 */
import assert from "node:assert/strict";
import { generateNetworkConfig } from "../../lib/config/token.ts";
import type { NatOptions } from "../../lib/node/nat.ts";
import { createNatTopology, natTopologySkipReason } from "../../scripts/nat_topology.ts";
import { namespaceSkipReason } from "../../scripts/netns.ts";
import { childConfig, countersUntil, spawnVpnChild, type VpnChild } from "./vpn_helpers.ts";

const skip = namespaceSkipReason({ tun: true }) ?? natTopologySkipReason();
if (skip) console.log(`AutoNAT namespace test skipped: ${skip}`);

/** Go's `--natservice` with its default `--nat-ratelimit*`. */
const NAT_SERVICE: NatOptions = {
  natService: { rateLimit: { global: 10, perPeer: 10, intervalMs: 60_000 } },
};

Deno.test({
  name:
    "a public member announces its public listen address at once, as Go does; a NATed member with --natservice dials it back for real (its connection survives) and the public member counts the address confirmed; one without the service is never asked",
  ignore: skip !== undefined,
  async fn() {
    const topo = await createNatTopology("plain", 74);
    const children: VpnChild[] = [];
    try {
      const network = generateNetworkConfig();
      const listen = ["/ip6/::/tcp/4001"];
      const pub = spawnVpnChild(
        childConfig(network, { address: "10.1.0.1/24" }, {
          listenMaddrs: listen,
          nat: { relayService: {}, ...NAT_SERVICE },
        }),
        topo.pub.name,
      );
      children.push(pub);
      const ready = await pub.waitFor((e) => e.event === "ready", "public member ready");
      const pubId = ready.peerId as string;
      const publicAddr = `/ip6/${topo.pub.address6}/tcp/4001`;
      // Before any peer exists, so no dial-back can have verified it.
      assert.ok(
        (ready.addrs as string[]).includes(`${publicAddr}/p2p/${pubId}`),
        `public address announced at start: ${JSON.stringify(ready.addrs)}`,
      );
      const pubAddr = `${publicAddr}/p2p/${pubId}`;
      const home = (ns: string, address: string, nat: NatOptions) => {
        const child = spawnVpnChild(
          childConfig(network, { address }, {
            listenMaddrs: listen,
            bootstrapPeers: [pubAddr],
            nat: { autoRelay: { staticRelays: [pubAddr] }, ...nat },
          }),
          ns,
        );
        children.push(child);
        return child;
      };
      const a = home(topo.homeA.name, "10.1.0.2/24", NAT_SERVICE);
      const b = home(topo.homeB.name, "10.1.0.3/24", {});
      await Promise.all([
        a.waitFor((e) => e.event === "ready", "home A ready"),
        b.waitFor((e) => e.event === "ready", "home B ready"),
      ]);

      const pubCounters = await countersUntil(
        pub,
        (c) => (c.node.nat.autoNat?.confirmed[publicAddr] ?? 0) >= 1,
        "the public address confirmed by a dial-back",
        (c) => c.node.nat,
      );
      const aCounters = await a.counters();
      const bCounters = await b.counters();
      const autoNatA = aCounters.node.nat.autoNat!;
      // Home A dialled the public member back through its NAT (a new connection, closed after
      // the answer), and its own connection to the public member is still there.
      assert.ok(autoNatA.answered.reachable >= 1, JSON.stringify(autoNatA));
      assert.equal(autoNatA.answered.unreachable, 0);
      assert.ok(aCounters.node.nat.natService!.served >= autoNatA.answered.reachable);
      assert.ok(
        aCounters.connections.some((c) => c.peer === pubId && !c.relayed),
        `home A still connected to the public member: ${JSON.stringify(aCounters.connections)}`,
      );
      // The homes' own addresses are private: nobody is asked about them.
      assert.deepEqual(autoNatA.confirmed, {});
      assert.equal(bCounters.node.nat.autoNat, undefined, "home B runs no AutoNAT");
      assert.deepEqual(pubCounters.node.nat.autoNat!.answered, {
        reachable: 0,
        unreachable: 0,
        refused: 0,
      });
      assert.deepEqual(pubCounters.node.nat.autoNat!.refuted, {});

      for (const c of children.splice(0)) {
        const { code } = await c.terminate();
        assert.equal(code, 0, `child exit code; stderr:\n${c.stderr().slice(-2000)}`);
      }
    } finally {
      for (const c of children) await c.terminate("SIGKILL").catch(() => {});
      await topo.close();
    }
  },
});
