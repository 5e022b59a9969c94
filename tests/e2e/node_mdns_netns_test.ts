import assert from "node:assert/strict";
import { generateNetworkConfig } from "../../lib/config/token.ts";
import { createNamespacePair, namespaceSkipReason } from "../../scripts/netns.ts";
import { type ChildNode, spawnChildNode } from "./node_child_helpers.ts";

const skip = namespaceSkipReason();

Deno.test({
  name: "two nodes on one LAN find each other through mDNS alone",
  ignore: skip !== undefined,
  async fn() {
    const pair = await createNamespacePair("evmd", 237);
    const children: ChildNode[] = [];
    try {
      const network = generateNetworkConfig(360);
      for (const ns of [pair.a, pair.b]) {
        children.push(spawnChildNode({
          network,
          listenMaddrs: ["/ip4/0.0.0.0/tcp/0"],
          bootstrapPeers: [],
          dht: false,
          mdns: true,
          publishEveryMs: 300,
        }, ["ip", "netns", "exec", ns.name]));
      }
      const [a, b] = children;
      const [ra, rb] = await Promise.all([
        a.waitFor((e) => e.event === "ready", "a ready"),
        b.waitFor((e) => e.event === "ready", "b ready"),
      ]);
      const discovered = await Promise.race([
        a.waitFor((e) => e.event === "peer:discovery" && e.source === "mdns", "mDNS at a"),
        b.waitFor((e) => e.event === "peer:discovery" && e.source === "mdns", "mDNS at b"),
      ]);
      assert.ok([ra.peerId, rb.peerId].includes(discovered.peerId as string));
      await a.waitFor((e) => e.event === "message" && e.from === rb.peerId, "b's message at a");
      await b.waitFor((e) => e.event === "message" && e.from === ra.peerId, "a's message at b");
      for (const c of children) {
        const { code, exitMs } = await c.terminate();
        assert.equal(code, 0, c.stderr());
        assert.ok(exitMs < 2000, `exit took ${Math.round(exitMs)} ms`);
      }
    } finally {
      for (const c of children) await c.terminate("SIGKILL").catch(() => {});
      await pair.close();
    }
  },
});
