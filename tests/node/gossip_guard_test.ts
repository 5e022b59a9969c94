import assert from "node:assert/strict";
import type { GossipSub } from "@libp2p/gossipsub";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import { memberOnlyPeerExchange } from "../../lib/node/workarounds.ts";
import { startOutsider, victimTopics } from "../hostile/outsider.ts";
import { collectMessages, generateNetworkConfig, startNode, stopAll, waitFor } from "./helpers.ts";

Deno.test("the topic carries a hub message near max_message_size (GossipSub sent nothing above 4 MiB)", async () => {
  const network = generateNetworkConfig();
  const a = await startNode(network);
  const b = await startNode(network, { bootstrapPeers: [a.multiaddrs()[0]] });
  try {
    await waitFor(() => a.topicPeers().length === 1 && b.topicPeers().length === 1, "the topic");
    const big = new Uint8Array(a.hub.maxPayloadBytes);
    big.fill(7, 0, 1000);
    const got: number[] = [];
    b.hub.addEventListener("message", (e) => got.push(e.detail.data.length));
    await a.hub.publish(big);
    await waitFor(() => got.length === 1, "the message", 30_000);
    assert.equal(got[0], big.length);
    assert.ok(big.length > 10_000_000, `${big.length} bytes: about half of 20 MiB (sealed hex)`);
  } finally {
    await stopAll([a, b]);
  }
});

Deno.test("an outsider's junk is refused before it is relayed, and the outsider banned", async () => {
  const network = generateNetworkConfig();
  const victim = await startNode(network);
  const third = await startNode(network, { bootstrapPeers: [victim.multiaddrs()[0]] });
  const gotByThird = collectMessages(third);
  const outsider = await startOutsider();
  try {
    await waitFor(() => victim.topicPeers().length === 1, "the third node on the topic");
    await outsider.dial(multiaddr(victim.multiaddrs()[0]));
    const [topic] = await victimTopics(outsider, victim.peerId, 10_000);
    assert.ok(topic, "the outsider learns the topic from the victim's announcements");
    outsider.services.pubsub.subscribe(topic);
    await waitFor(
      () => outsider.services.pubsub.getSubscribers(topic).length === 1,
      "the outsider on the topic",
    );
    for (let i = 0; i < 5; i++) {
      await outsider.services.pubsub.publish(topic, new TextEncoder().encode(`junk ${i}`)).catch(
        () => {},
      );
    }
    await waitFor(() => victim.counters().bans === 1, "the ban");
    await waitFor(() => outsider.getConnections().length === 0, "the outsider dropped");
    assert.equal(victim.counters().hub.dropped.badEnvelope, 1, "one junk message was enough");
    assert.equal(victim.counters().refused.bannedPeer, 0);
    // It cannot come back: the victim refuses the connection once it knows who dials.
    await outsider.dial(multiaddr(victim.multiaddrs()[0])).catch(() => {});
    await waitFor(() => victim.counters().refused.bannedPeer >= 1, "the refusal");
    await waitFor(() => outsider.getConnections().length === 0, "no connection");
    // Members still talk, and nothing of the junk reached the third node.
    await victim.hub.publish(new TextEncoder().encode("member"));
    await waitFor(() => gotByThird.includes("member"), "a member's message");
    const d = third.counters().hub.dropped;
    assert.equal(d.badEnvelope + d.badSeal + d.oversize, 0);
    assert.deepEqual(gotByThird, ["member"]);
  } finally {
    await outsider.stop();
    await stopAll([victim, third]);
  }
});

Deno.test("a PRUNE offers peers to members only, and only members", async () => {
  const ids = await Promise.all(
    [0, 1, 2].map(async () => peerIdFromPrivateKey(await generateKeyPair("Ed25519"))),
  );
  const [memberA, memberB, stranger] = ids.map((id) => id.toString());
  const calls: boolean[] = [];
  const fake = {
    makePrune: (_id: string, _topic: string, doPX: boolean) => {
      calls.push(doPX);
      return Promise.resolve({
        topicID: "t",
        peers: doPX ? ids.map((id) => ({ peerID: id.toMultihash().bytes })) : [],
      });
    },
  };
  const members = new Set([memberA, memberB]);
  assert.ok(memberOnlyPeerExchange(fake as unknown as GossipSub, (p) => members.has(p)));
  const toStranger = await fake.makePrune(stranger, "t", true);
  assert.deepEqual(toStranger.peers, []);
  const toMember = await fake.makePrune(memberA, "t", true);
  assert.deepEqual(calls, [false, true]);
  assert.deepEqual(
    toMember.peers.map((p) => p.peerID),
    [ids[0].toMultihash().bytes, ids[1].toMultihash().bytes],
  );
});
