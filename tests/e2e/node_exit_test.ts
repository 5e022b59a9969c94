import assert from "node:assert/strict";
import { generateNetworkConfig } from "../../lib/config/token.ts";
import { spawnChildNode } from "./node_child_helpers.ts";

Deno.test("a node process with gossip and DHT traffic exits by itself right after SIGTERM", async () => {
  const network = generateNetworkConfig(360);
  const a = spawnChildNode({
    network,
    listenMaddrs: ["/ip4/127.0.0.1/tcp/0"],
    dht: true,
    dhtMode: "server",
    publishEveryMs: 200,
  });
  let b: ReturnType<typeof spawnChildNode> | undefined;
  try {
    const ready = await a.waitFor((e) => e.event === "ready", "node a");
    b = spawnChildNode({
      network,
      listenMaddrs: ["/ip4/127.0.0.1/tcp/0"],
      bootstrapPeers: [(ready.addrs as string[])[0]],
      dht: true,
      discoveryIntervalMs: 1000,
      publishEveryMs: 200,
    });
    await b.waitFor((e) => e.event === "message", "a message at b");
    await a.waitFor((e) => e.event === "message", "a message at a");
    // Let DHT rounds, identify and gossip heartbeats run for a while.
    await new Promise((r) => setTimeout(r, 2500));
    const [ea, eb] = await Promise.all([a.terminate(), b.terminate()]);
    for (const [name, e, child] of [["a", ea, a], ["b", eb, b]] as const) {
      assert.equal(e.code, 0, `${name} exit code; stderr:\n${child.stderr()}`);
      assert.ok(e.exitMs < 2000, `${name} took ${Math.round(e.exitMs)} ms to exit`);
      assert.equal(child.events.at(-1)?.event, "stopped");
    }
  } finally {
    for (const c of [a, b]) {
      if (c) await c.terminate("SIGKILL").catch(() => {});
    }
  }
});
