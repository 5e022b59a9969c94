/** Our circuit relay on loopback: slots, circuits between members, refusals and limits. */
import assert from "node:assert/strict";
import type { NetworkConfig } from "../../lib/config/network.ts";
import type { EdgeNode } from "../../lib/node/node.ts";
import type { NatOptions } from "../../lib/node/nat.ts";
import { collectMessages, generateNetworkConfig, startNode, stopAll, waitFor } from "./helpers.ts";

const PROTOCOL = "/edgevpn-test/echo/1";

/** A relay R and two members A and B that hold slots on it and know only R. */
async function relayTrio(relay: NatOptions["relayService"], extraA: NatOptions = {}) {
  const network = generateNetworkConfig();
  const nodes: EdgeNode[] = [];
  const members = new Set<string>();
  const isMember = (p: string) => members.has(p);
  const r = await startNode(network, { nat: { relayService: relay } });
  nodes.push(r);
  const bootstrap = [r.multiaddrs()[0]];
  const slots: NatOptions = { autoRelay: { staticRelays: bootstrap } };
  const a = await startNode(network, { bootstrapPeers: bootstrap, nat: { ...slots, ...extraA } });
  const b = await startNode(network, { bootstrapPeers: bootstrap, nat: slots });
  nodes.push(a, b);
  for (const n of nodes) {
    members.add(n.peerId);
    n.setMembership(isMember);
  }
  return { network, r, a, b, nodes, members };
}

async function echoServer(node: EdgeNode): Promise<void> {
  await node.handle(PROTOCOL, async (s) => {
    for await (const chunk of s) await s.write(chunk);
    await s.close();
  });
}

async function echo(from: EdgeNode, to: EdgeNode, bytes: number): Promise<number> {
  const s = await from.dialProtocol(to.peerId, PROTOCOL);
  const data = new Uint8Array(bytes).fill(7);
  const reading = (async () => {
    let n = 0;
    for await (const chunk of s) n += chunk.length;
    return n;
  })();
  for (let i = 0; i < bytes; i += 16384) await s.write(data.subarray(i, i + 16384));
  await s.close();
  return await reading;
}

Deno.test("two members that know only a relay reach each other through it, on a limited connection", async () => {
  const { r, a, b, nodes } = await relayTrio({});
  try {
    await echoServer(b);
    await waitFor(() => a.nat.slots().length === 1 && b.nat.slots().length === 1, "relay slots");
    assert.deepEqual(r.nat.relay!.reservedPeers().sort(), [a.peerId, b.peerId].sort());
    assert.equal(await echo(a, b, 200_000), 200_000);
    const viaRelay = a.connections().find((c) => c.peer === b.peerId);
    assert.equal(viaRelay?.relayed, true);
    assert.equal(viaRelay?.limited, true);
    const stats = r.nat.relayPeerStats();
    assert.ok(stats.get(a.peerId)!.bytesIn >= 200_000);
    assert.ok(stats.get(b.peerId)!.bytesIn >= 200_000);
    assert.equal(r.nat.counters().relay!.circuits.opened, 1);
  } finally {
    await stopAll(nodes);
  }
});

/** A node outside the membership that asks R for a slot and may dial through it. */
async function outsider(
  network: NetworkConfig,
  r: EdgeNode,
  members: Set<string>,
): Promise<EdgeNode> {
  const bootstrap = [r.multiaddrs()[0]];
  const node = await startNode(network, {
    bootstrapPeers: bootstrap,
    nat: { autoRelay: { staticRelays: bootstrap } },
  });
  node.setMembership((p) => members.has(p));
  return node;
}

Deno.test("a relay refuses slots and circuits to non-members", async () => {
  const { network, r, a, b, nodes, members } = await relayTrio({});
  const c = await outsider(network, r, members);
  nodes.push(c);
  try {
    await echoServer(b);
    await waitFor(() => b.nat.slots().length === 1, "B's slot");
    await waitFor(() => r.nat.counters().relay!.reservations.refusedNotMember >= 1, "C refused");
    assert.equal(c.nat.slots().length, 0);
    await assert.rejects(() => echo(c, b, 10));
    assert.ok(r.nat.counters().relay!.circuits.refusedNotMember >= 1);
    assert.equal(r.nat.relayPeerStats().get(c.peerId)?.bytesIn ?? 0, 0);
    assert.equal(await echo(a, b, 10), 10);
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("a relay ends a circuit at its data limit and refuses circuits over the per-peer count", async () => {
  const { network, r, a, b, nodes, members } = await relayTrio({
    maxDataBytes: 64 * 1024,
    maxCircuitsPerPeer: 1,
  });
  const c = await outsider(network, r, members);
  members.add(c.peerId);
  nodes.push(c);
  try {
    await echoServer(b);
    await waitFor(() => a.nat.slots().length === 1 && b.nat.slots().length === 1, "relay slots");
    assert.equal(await echo(a, b, 1000), 1000);
    // B already has its one circuit (from A): C's is refused.
    await assert.rejects(() => echo(c, b, 10));
    assert.equal(r.nat.counters().relay!.circuits.refusedLimit, 1);
    await assert.rejects(() => echo(a, b, 256 * 1024));
    await waitFor(() => r.nat.counters().relay!.circuits.endedData === 1, "data limit");
    await waitFor(() => r.nat.counters().relay!.circuits.active === 0, "circuit gone");
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("a relay slows a peer that goes over its rate instead of cutting it", async () => {
  const { r, a, b, nodes } = await relayTrio({ maxRateBytes: 256 * 1024 });
  try {
    await echoServer(b);
    await waitFor(() => a.nat.slots().length === 1 && b.nat.slots().length === 1, "relay slots");
    // One second of burst is allowed; 1 MiB needs the sender paused several times.
    assert.equal(await echo(a, b, 1 << 20), 1 << 20);
    const c = r.nat.counters().relay!;
    assert.ok(c.circuits.rateLimited > 0, JSON.stringify(c.circuits));
    assert.equal(c.circuits.endedData + c.circuits.endedDuration, 0);
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("GossipSub runs over a limited relayed connection: two members' messages cross a relay that is not on their topic", async () => {
  const network = generateNetworkConfig();
  const members = new Set<string>();
  // R belongs to another network (another topic): it relays bytes, it cannot forward gossip.
  const r = await startNode(generateNetworkConfig(), { nat: { relayService: {} } });
  const bootstrap = [r.multiaddrs()[0]];
  const slots: NatOptions = { autoRelay: { staticRelays: bootstrap } };
  const a = await startNode(network, { bootstrapPeers: bootstrap, nat: slots });
  const b = await startNode(network, { bootstrapPeers: bootstrap, nat: slots });
  const nodes = [r, a, b];
  for (const n of nodes) {
    members.add(n.peerId);
    n.setMembership((p) => members.has(p));
  }
  try {
    await echoServer(b);
    await waitFor(() => a.nat.slots().length === 1 && b.nat.slots().length === 1, "relay slots");
    // A member stream (as the VPN opens one) brings up the relayed connection.
    assert.equal(await echo(a, b, 10), 10);
    await waitFor(
      () => a.topicPeers().includes(b.peerId) && b.topicPeers().includes(a.peerId),
      "A and B on each other's topic",
    );
    const got = collectMessages(b);
    await a.hub.publish(new TextEncoder().encode("over the relay"));
    await waitFor(() => got.includes("over the relay"), "A's message at B");
    assert.ok(!r.topicPeers().includes(a.peerId), "R is not on the members' topic");
    const ab = a.connections().filter((c) => c.peer === b.peerId);
    assert.ok(ab.length > 0 && ab.every((c) => c.relayed && c.limited), JSON.stringify(ab));
  } finally {
    await stopAll(nodes);
  }
});
