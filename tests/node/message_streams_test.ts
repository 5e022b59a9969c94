/**
 * Message streams (one message per stream, as Go's `/edgevpn/0.1`): read straight off the
 * connection when the dialer selects lazily, libp2p's path for everything else, members only,
 * bounded in size and time.
 */
import assert from "node:assert/strict";
import { couldBecome } from "../../lib/node/message_streams.ts";
import type { EdgeNode } from "../../lib/node/node.ts";
import type { NodeStream } from "../../lib/node/stream.ts";
import { collectMessages, generateNetworkConfig, startNode, stopAll, waitFor } from "./helpers.ts";

const MESSAGES = "/edgevpn-test/messages/1.0";
const ECHO = "/edgevpn-test/echo/1.0";
const PLAIN = "/edgevpn-test/plain/1.0";
const enc = new TextEncoder();
const dec = new TextDecoder();

async function echo(stream: NodeStream): Promise<void> {
  for await (const chunk of stream) await stream.write(chunk);
  await stream.close();
}

/** A server and a member client connected to it; the server's received messages. */
async function setup(serverExtra = {}) {
  const network = generateNetworkConfig(360);
  const server = await startNode(network, serverExtra);
  const client = await startNode(network, { bootstrapPeers: [server.multiaddrs()[0]] });
  const got: string[] = [];
  await server.handleMessages(MESSAGES, (peer, message) => {
    assert.equal(peer, client.peerId);
    const text = dec.decode(message);
    got.push(text);
    if (text === "throw") throw new Error("handler failed");
    return text !== "bad";
  }, { maxBytes: 1000, membersOnly: true });
  // The client becomes a member the interim way: a sealed message the server opens.
  const inbox = collectMessages(server);
  await waitFor(() => client.topicPeers().includes(server.peerId), "the topic");
  await client.hub.publish(enc.encode("member"));
  await waitFor(() => inbox.length === 1, "the client's message");
  return { server, client, got, nodes: [server, client] as EdgeNode[] };
}

Deno.test("lazily selected message streams are read off the connection, in full", async () => {
  const { server, client, got, nodes } = await setup();
  try {
    const texts = Array.from({ length: 200 }, (_, i) => `packet ${i} `.repeat(1 + (i % 7)));
    await Promise.all(texts.map((t) => client.sendOnce(server.peerId, MESSAGES, enc.encode(t))));
    await waitFor(() => got.length === 200, () => `200 messages, got ${got.length}`);
    assert.deepEqual(got.toSorted(), texts.toSorted());
    const c = server.counters().streams;
    assert.equal(c.messages, 200, "every one took the direct path");
    assert.equal(c.inbound, 200);
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("a dialer that negotiates first, other protocols and handed-back streams still work", async () => {
  const { server, client, got, nodes } = await setup();
  try {
    await server.handle(ECHO, echo);
    const plain: string[] = [];
    await server.handle(PLAIN, async (s) => {
      for await (const chunk of s) plain.push(dec.decode(chunk));
      await s.close();
    });
    // Negotiated (the dialer waits for the answer), then written in two parts.
    const s = await client.dialProtocol(server.peerId, MESSAGES);
    assert.equal(s.protocol, MESSAGES);
    await s.write(enc.encode("two "));
    await s.write(enc.encode("parts"));
    await s.close();
    await waitFor(() => got.includes("two parts"), "the negotiated message");
    // A protocol served by libp2p, on the same connection: echo round trip.
    const e = await client.dialProtocol(server.peerId, ECHO);
    await e.write(enc.encode("echo me"));
    let back = "";
    for await (const chunk of e) {
      back += dec.decode(chunk);
      if (back.length >= 7) break;
    }
    assert.equal(back, "echo me");
    await e.close();
    // A lazy stream for a protocol that is not a message protocol is handed back whole.
    await client.sendOnce(server.peerId, PLAIN, enc.encode("handed back"));
    await waitFor(() => plain.join("") === "handed back", "the handed-back stream");
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("message streams: non-members, oversize, rejected and failing messages are reset and counted", async () => {
  const { server, client, got, nodes } = await setup();
  const outsider = await startNode(generateNetworkConfig(360));
  nodes.push(outsider);
  try {
    await outsider.dial(server.multiaddrs()[0]);
    await outsider.sendOnce(server.peerId, MESSAGES, enc.encode("let me in")).catch(() => {});
    await waitFor(() => server.counters().streams.nonMember === 1, "the outsider refused");
    await client.sendOnce(server.peerId, MESSAGES, new Uint8Array(5000)).catch(() => {});
    await client.sendOnce(server.peerId, MESSAGES, enc.encode("bad")).catch(() => {});
    await client.sendOnce(server.peerId, MESSAGES, enc.encode("throw")).catch(() => {});
    await client.sendOnce(server.peerId, MESSAGES, enc.encode("good"));
    await waitFor(() => got.includes("good"), "the good message");
    assert.deepEqual(got, ["bad", "throw", "good"], "nothing from the outsider, nothing oversize");
    assert.ok(
      server.connectedPeers().includes(client.peerId),
      "a throwing handler spares the connection",
    );
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("a message stream that never ends is reset after the inbound timeout", async () => {
  const { server, client, got, nodes } = await setup({ inboundTimeoutMs: 300 });
  try {
    const s = await client.dialProtocol(server.peerId, MESSAGES);
    await s.write(enc.encode("never ends"));
    const t0 = performance.now();
    // The reset reaches the dialer.
    await assert.rejects(async () => {
      for await (const _ of s) { /* nothing comes back */ }
    }, /reset/i);
    const ms = performance.now() - t0;
    assert.ok(ms < 5_000, `reset after ${Math.round(ms)} ms`);
    assert.equal(got.length, 0);
    // The node keeps serving.
    await client.sendOnce(server.peerId, MESSAGES, enc.encode("after"));
    await waitFor(() => got.includes("after"), "a later message");
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("a stream is held only while more bytes could still name a message protocol", () => {
  const line = (text: string) => [text.length + 1, ...enc.encode(`${text}\n`)];
  const header = Uint8Array.from([...line("/multistream/1.0.0"), ...line("/edgevpn/0.1")]);
  assert.equal(couldBecome(new Uint8Array(0), header), true, "nothing read yet");
  assert.equal(couldBecome(header.subarray(0, 25), header), true, "into the protocol line");
  assert.equal(couldBecome(header.subarray(0, 20), header), false, "a dialer waiting for the echo");
  assert.equal(
    couldBecome(
      Uint8Array.from([...line("/multistream/1.0.0"), ...line("/ipfs/id/1.0.0")]),
      header,
    ),
    false,
    "another protocol",
  );
});
