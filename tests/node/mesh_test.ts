import assert from "node:assert/strict";
import type { NetworkConfig } from "../../lib/config/network.ts";
import type { EdgeNode } from "../../lib/node/node.ts";
import { collectMessages, generateNetworkConfig, startNode, stopAll, waitFor } from "./helpers.ts";

const enc = new TextEncoder();

Deno.test("five nodes joined through one static bootstrap peer all exchange messages", async () => {
  const network = generateNetworkConfig(360);
  const nodes: EdgeNode[] = [];
  try {
    const boot = await startNode(network);
    nodes.push(boot);
    const bootAddr = boot.multiaddrs()[0];
    for (let i = 0; i < 4; i++) {
      nodes.push(await startNode(network, { bootstrapPeers: [bootAddr] }));
    }
    const inboxes = nodes.map(collectMessages);
    await waitFor(
      () => nodes.every((n) => n.topicPeers().length >= 1) && boot.topicPeers().length === 4,
      "every node to see the topic",
    );
    for (const [i, n] of nodes.entries()) await n.hub.publish(enc.encode(`from ${i}`));
    await waitFor(() => inboxes.every((box) => box.length === 4), "every message everywhere");
    for (const [i, box] of inboxes.entries()) {
      const expected = nodes.map((_, j) => `from ${j}`).filter((_, j) => j !== i);
      assert.deepEqual(box.toSorted(), expected);
    }
    // Leaves were never given each other's addresses: gossip went through the bootstrap peer
    // or connections it led to.
    assert.equal(boot.counters().hub.received, 4);
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("a node with another token reads none of the messages and cannot inject any", async () => {
  const network = generateNetworkConfig(360);
  // Same room (hence the same topic, so it really is in the mesh), another seal key.
  const intruderNet: NetworkConfig = {
    ...network,
    otp: { ...network.otp, crypto: { ...network.otp.crypto, key: "not the network's key" } },
  };
  const nodes: EdgeNode[] = [];
  try {
    const a = await startNode(network);
    nodes.push(a);
    const b = await startNode(network, { bootstrapPeers: [a.multiaddrs()[0]] });
    nodes.push(b);
    const x = await startNode(intruderNet, { bootstrapPeers: [a.multiaddrs()[0]] });
    nodes.push(x);
    const [gotA, gotB, gotX] = [a, b, x].map(collectMessages);
    await waitFor(
      () => a.topicPeers().length === 2 && x.topicPeers().includes(a.peerId),
      "the intruder to join the topic",
    );
    await a.hub.publish(enc.encode("members only"));
    await b.hub.publish(enc.encode("members only too"));
    for (let i = 0; i < 3; i++) await x.hub.publish(enc.encode(`forged ${i}`));
    await waitFor(() => gotA.length === 1 && gotB.length === 1, "member messages");
    // The intruder's first forged message is opened and refused; its rejection lowers the
    // intruder's gossip score, and the router may ignore the next ones before they reach the
    // hub (as it should): at least one is counted, none is delivered.
    await waitFor(
      () => a.counters().hub.dropped.badSeal >= 1 && x.counters().hub.dropped.badSeal >= 2,
      () =>
        `forged and unreadable messages to be counted: ${
          JSON.stringify([a, b, x].map((n) => n.counters().hub))
        }`,
    );
    assert.deepEqual(gotX, []);
    assert.deepEqual(gotA, ["members only too"]);
    assert.deepEqual(gotB, ["members only"]);
    assert.ok(!a.isMember(x.peerId));
    assert.ok(a.isMember(b.peerId));

    // A node with an unrelated token is on another topic and hears nothing at all.
    const y = await startNode(generateNetworkConfig(360), { bootstrapPeers: [a.multiaddrs()[0]] });
    nodes.push(y);
    const gotY = collectMessages(y);
    await waitFor(() => y.connectedPeers().includes(a.peerId), "the outsider to connect");
    await a.hub.publish(enc.encode("still private"));
    await waitFor(() => gotB.length === 2, "the next member message");
    assert.deepEqual(gotY, []);
    assert.equal(y.counters().hub.dropped.badSeal, 0);
  } finally {
    await stopAll(nodes);
  }
});
