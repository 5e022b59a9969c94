import assert from "node:assert/strict";
import type { EdgeNode } from "../../lib/node/node.ts";
import { Meter, TrafficMeter } from "../../lib/node/traffic.ts";
import { collectMessages, generateNetworkConfig, startNode, stopAll, waitFor } from "./helpers.ts";

const STREAM_PROTOCOL = "/edgevpn-test/sink/1.0";
const MESSAGE_PROTOCOL = "/edgevpn-test/packet/1.0";

Deno.test("meter rates follow the traffic of the last seconds and decay when it stops", () => {
  let now = 0;
  const m = new Meter(() => now);
  for (let s = 1; s <= 10; s++) {
    m.in(1000);
    m.out(500);
    now = s * 1000;
    m.stats();
  }
  const busy = m.stats();
  assert.equal(busy.bytesIn, 10_000);
  assert.equal(busy.messagesOut, 10);
  assert.ok(busy.rateIn > 900 && busy.rateIn <= 1000, `rate in ${busy.rateIn}`);
  assert.ok(busy.rateOut > 450 && busy.rateOut <= 500, `rate out ${busy.rateOut}`);
  now += 10_000;
  assert.ok(m.stats().rateIn < 10, "idle for 10 s");
  const t = new TrafficMeter(() => now);
  t.record("peerA", "/p", "in", 7);
  t.record("peerB", "/p", "out", 3);
  assert.equal(t.byProtocol().get("/p")!.bytesIn, 7);
  assert.equal(t.byPeer().get("peerB")!.bytesOut, 3);
  assert.equal(t.total.stats().bytesOut, 3);
});

Deno.test("bytes are counted per peer and protocol on streams and on the frame-level message path", async () => {
  const network = generateNetworkConfig(360);
  const nodes: EdgeNode[] = [];
  try {
    const a = await startNode(network);
    nodes.push(a);
    const b = await startNode(network, { bootstrapPeers: [a.multiaddrs()[0]] });
    nodes.push(b);
    let sunk = 0;
    await a.handle(STREAM_PROTOCOL, async (s) => {
      for await (const chunk of s) sunk += chunk.length;
      await s.close();
    }, { membersOnly: false });
    const packets: number[] = [];
    await a.handleMessages(MESSAGE_PROTOCOL, (_peer, m) => void packets.push(m.length), {
      membersOnly: false,
    });
    const inbox = collectMessages(a);
    await waitFor(() => b.topicPeers().includes(a.peerId), "the topic");
    await b.hub.publish(new TextEncoder().encode("hello"));
    await waitFor(() => inbox.length === 1, "a gossip message");

    const s = await b.dialProtocol(a.peerId, STREAM_PROTOCOL);
    const chunk = new Uint8Array(64 * 1024);
    for (let i = 0; i < 16; i++) await s.write(chunk);
    await s.close();
    await waitFor(() => sunk === 16 * chunk.length, "the stream's bytes");
    for (let i = 0; i < 50; i++) await b.sendOnce(a.peerId, MESSAGE_PROTOCOL, new Uint8Array(1000));
    await waitFor(() => packets.length === 50, "50 one-shot messages");

    const sent = b.traffic.byProtocol();
    const received = a.traffic.byProtocol();
    assert.equal(sent.get(STREAM_PROTOCOL)!.bytesOut, 16 * chunk.length);
    assert.equal(received.get(STREAM_PROTOCOL)!.bytesIn, 16 * chunk.length);
    assert.equal(sent.get(MESSAGE_PROTOCOL)!.bytesOut, 50_000, "frame-level sends counted");
    assert.equal(sent.get(MESSAGE_PROTOCOL)!.messagesOut, 50);
    assert.equal(received.get(MESSAGE_PROTOCOL)!.bytesIn, 50_000, "frame-level reads counted");
    assert.equal(received.get(MESSAGE_PROTOCOL)!.messagesIn, 50);
    assert.ok([...received.keys()].some((p) => p.startsWith("/meshsub/")), "gossip counted");
    const fromB = a.traffic.byPeer().get(b.peerId)!;
    assert.ok(fromB.bytesIn >= 16 * chunk.length + 50_000, `${fromB.bytesIn} bytes from b`);
    assert.ok(a.traffic.total.stats().bytesIn >= fromB.bytesIn);
    assert.ok(!a.traffic.byPeer().has("unknown"), "every stream is attributed to its peer");
    assert.deepEqual(
      a.connections().map((c) => [c.peer, c.transport, c.relayed]),
      [[b.peerId, "tcp", false]],
    );
  } finally {
    await stopAll(nodes);
  }
});
