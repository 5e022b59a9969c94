import assert from "node:assert/strict";
import type { Clock } from "../../lib/util/clock.ts";
import type { EdgeNode } from "../../lib/node/node.ts";
import { collectMessages, generateNetworkConfig, startNode, stopAll, waitFor } from "./helpers.ts";

const enc = new TextEncoder();

function skewed(offsetMs: number): Clock {
  return {
    now: () => Date.now() + offsetMs,
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (h) => clearTimeout(h as number),
  };
}

Deno.test("over GossipSub, messages published across three topic rotations all arrive", async () => {
  const interval = 2;
  const network = generateNetworkConfig(interval);
  const early = skewed(250);
  const late = skewed(-250);
  const nodes: EdgeNode[] = [];
  const timers: ReturnType<typeof setTimeout>[] = [];
  try {
    const a = await startNode(network, { clock: early });
    nodes.push(a);
    const b = await startNode(network, { clock: late, bootstrapPeers: [a.multiaddrs()[0]] });
    nodes.push(b);
    const [gotA, gotB] = [a, b].map(collectMessages);
    const topics = new Set<string>();
    a.hub.addEventListener("rotate", (e) => topics.add(e.detail.topic));
    // Both ways: a message published before its sender knows a subscriber goes nowhere.
    await waitFor(
      () => a.topicPeers().includes(b.peerId) && b.topicPeers().includes(a.peerId),
      "the mesh",
    );
    const sent = { a: [] as string[], b: [] as string[] };
    const publish = (n: EdgeNode, name: "a" | "b", label: string) => {
      const text = `${name}-${label}-${sent[name].length}`;
      sent[name].push(text);
      n.hub.publish(enc.encode(text)).catch((e) => assert.fail(String(e)));
    };
    const first = (Math.floor(early.now() / 2000) + 1) * 2000;
    for (let k = 0; k < 3; k++) {
      const at = first + k * 2000;
      timers.push(setTimeout(() => publish(a, "a", "at"), at - early.now()));
      timers.push(setTimeout(() => publish(b, "b", "at"), at - late.now()));
      timers.push(setTimeout(() => publish(b, "b", "before"), at - 2 - late.now()));
    }
    while (early.now() < first + 3 * 2000 + 500) {
      publish(a, "a", "tick");
      publish(b, "b", "tick");
      await new Promise((r) => setTimeout(r, 150));
    }
    await waitFor(
      () => gotB.length >= sent.a.length && gotA.length >= sent.b.length,
      () => `a→b ${gotB.length}/${sent.a.length}, b→a ${gotA.length}/${sent.b.length}`,
    );
    assert.deepEqual(gotB.toSorted(), sent.a.toSorted());
    assert.deepEqual(gotA.toSorted(), sent.b.toSorted());
    assert.ok(topics.size >= 3, `saw ${topics.size} rotations`);
    assert.equal(a.counters().hub.dropped.badSeal + b.counters().hub.dropped.badSeal, 0);
  } finally {
    timers.forEach(clearTimeout);
    await stopAll(nodes);
  }
});
