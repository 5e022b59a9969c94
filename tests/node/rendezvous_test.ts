import assert from "node:assert/strict";
import type { EdgeNode } from "../../lib/node/node.ts";
import { rendezvousCid } from "../../lib/node/rendezvous.ts";
import { collectMessages, generateNetworkConfig, startNode, stopAll, waitFor } from "./helpers.ts";

Deno.test("rendezvous keys are CIDv1 raw sha2-256 of the rendezvous string", async () => {
  const cid = await rendezvousCid("e7b800c1bb05ef4e6c5b5ac6c44265ec");
  assert.equal(cid.version, 1);
  assert.equal(cid.code, 0x55);
  assert.equal(cid.multihash.code, 0x12);
  const digest = new Uint8Array(
    await crypto.subtle.digest(
      "SHA-256",
      new TextEncoder().encode("e7b800c1bb05ef4e6c5b5ac6c44265ec"),
    ),
  );
  assert.deepEqual(cid.multihash.digest, digest);
});

Deno.test("three nodes that know only one DHT node find each other through the rendezvous", async () => {
  const network = generateNetworkConfig(360);
  const nodes: EdgeNode[] = [];
  try {
    // Another token: this node is only a DHT, never in the three nodes' gossip mesh.
    const dhtNode = await startNode(generateNetworkConfig(360), { dht: true, dhtMode: "server" });
    nodes.push(dhtNode);
    const seeds = [dhtNode.multiaddrs()[0]];
    const found = new Map<string, Set<string>>();
    const members: EdgeNode[] = [];
    for (let i = 0; i < 3; i++) {
      const n = await startNode(network, {
        dht: true,
        bootstrapPeers: seeds,
        discoveryIntervalMs: 1500,
      });
      const set = new Set<string>();
      found.set(n.peerId, set);
      n.addEventListener("peer:discovery", (e) => {
        if (e.detail.source === "dht") set.add(e.detail.peerId);
      });
      nodes.push(n);
      members.push(n);
    }
    const ids = members.map((n) => n.peerId);
    await waitFor(
      () =>
        members.every((n) => ids.every((id) => id === n.peerId || n.connectedPeers().includes(id))),
      () => `full connectivity: ${members.map((n) => n.connectedPeers().length).join(",")}`,
      30_000,
    );
    // Every pair was joined by a provider-record dial from one side or the other.
    for (const a of ids) {
      for (const b of ids) {
        if (a < b) assert.ok(found.get(a)!.has(b) || found.get(b)!.has(a), `${a} ↔ ${b}`);
      }
    }
    const inboxes = members.map(collectMessages);
    await waitFor(() => members.every((n) => n.topicPeers().length === 2), "the topic mesh");
    await members[0].hub.publish(new TextEncoder().encode("found you"));
    await waitFor(() => inboxes[1].length === 1 && inboxes[2].length === 1, "the message");
    assert.equal(dhtNode.counters().hub.received, 0);
  } finally {
    await stopAll(nodes);
  }
});
