import assert from "node:assert/strict";
import type { EdgeNode } from "../../lib/node/node.ts";
import { generateNetworkConfig, startNode, stopAll, waitFor } from "./helpers.ts";

Deno.test("blacklisted peers and addresses are refused both ways and counted", async () => {
  const network = generateNetworkConfig(360);
  const nodes: EdgeNode[] = [];
  try {
    const friend = await startNode(network);
    nodes.push(friend);
    const foe = await startNode(network);
    nodes.push(foe);
    const guard = await startNode(network, { blacklist: [foe.peerId] });
    nodes.push(guard);

    await assert.rejects(guard.dial(foe.multiaddrs()[0]));
    // Inbound, the dialler may finish its handshake before the guard hangs up.
    await foe.dial(guard.multiaddrs()[0]).catch(() => {});
    await waitFor(() => !foe.connectedPeers().includes(guard.peerId), "the guard to hang up");
    await guard.dial(friend.multiaddrs()[0]);
    assert.deepEqual(guard.connectedPeers(), [friend.peerId]);
    assert.ok(guard.counters().refused.blacklistedPeer >= 2);

    const strict = await startNode(network, { blacklist: ["127.0.0.0/8"] });
    nodes.push(strict);
    await friend.dial(strict.multiaddrs()[0]).catch(() => {});
    await assert.rejects(strict.dial(friend.multiaddrs()[0]));
    await waitFor(() => !friend.connectedPeers().includes(strict.peerId), "the refusal");
    assert.ok(strict.counters().refused.blacklistedAddress >= 2);
    assert.deepEqual(strict.connectedPeers(), []);
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("blocked ranges (the VPN subnet) are never dialled and drop existing connections", async () => {
  const network = generateNetworkConfig(360);
  const nodes: EdgeNode[] = [];
  try {
    const a = await startNode(network);
    nodes.push(a);
    const b = await startNode(network);
    nodes.push(b);
    await a.dial(b.multiaddrs()[0]);
    await waitFor(() => a.connectedPeers().length === 1, "a connection");
    a.setBlockedCidrs(["127.0.0.0/8"]);
    await waitFor(
      () => a.connectedPeers().length === 0,
      "the connection over the blocked range to close",
    );
    await assert.rejects(a.dial(b.multiaddrs()[0]));
    assert.ok(a.counters().refused.blockedAddress >= 1);
    a.setBlockedCidrs([]);
    await a.dial(b.multiaddrs()[0]);
    assert.deepEqual(a.connectedPeers(), [b.peerId]);
  } finally {
    await stopAll(nodes);
  }
});
