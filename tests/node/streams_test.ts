import assert from "node:assert/strict";
import type { EdgeNode } from "../../lib/node/node.ts";
import { type NodeStream, wrapStream } from "../../lib/node/stream.ts";
import { concatBytes } from "../../lib/util/bytes.ts";
import { collectMessages, generateNetworkConfig, startNode, stopAll, waitFor } from "./helpers.ts";

const PROTOCOL = "/edgevpn-test/echo/1.0";
const enc = new TextEncoder();

async function echo(stream: NodeStream): Promise<void> {
  for await (const chunk of stream) await stream.write(chunk);
  await stream.close();
}

async function readAll(stream: NodeStream, bytes: number): Promise<Uint8Array> {
  const out = new Uint8Array(bytes);
  let n = 0;
  for await (const chunk of stream) {
    out.set(chunk, n);
    n += chunk.length;
    if (n >= bytes) break;
  }
  assert.equal(n, bytes);
  return out;
}

/**
 * Two nodes of one network: `server` serves PROTOCOL with `serve` to anyone, `client` opens a
 * stream of it for `use`; both are stopped at the end.
 */
async function withStream(
  serve: (s: NodeStream) => void | Promise<void>,
  use: (s: NodeStream) => Promise<void>,
): Promise<void> {
  const network = generateNetworkConfig(360);
  const nodes: EdgeNode[] = [];
  try {
    const server = await startNode(network);
    nodes.push(server);
    const client = await startNode(network);
    nodes.push(client);
    await server.handle(PROTOCOL, serve, { membersOnly: false });
    await client.dial(server.multiaddrs()[0]);
    await use(await client.dialProtocol(server.peerId, PROTOCOL));
  } finally {
    await stopAll(nodes);
  }
}

Deno.test("member-only streams serve members and reset non-members", async () => {
  const network = generateNetworkConfig(360);
  const nodes: EdgeNode[] = [];
  try {
    const server = await startNode(network);
    nodes.push(server);
    const member = await startNode(network, { bootstrapPeers: [server.multiaddrs()[0]] });
    nodes.push(member);
    const outsider = await startNode(generateNetworkConfig(360));
    nodes.push(outsider);
    await server.handle(PROTOCOL, echo);
    await outsider.dial(server.multiaddrs()[0]);

    // Not a member yet: it has never sent a message the server could open.
    const early = await member.dialProtocol(server.peerId, PROTOCOL);
    await assert.rejects(readAll(early, 1));
    const inbox = collectMessages(server);
    await waitFor(() => member.topicPeers().includes(server.peerId), "the topic");
    await member.hub.publish(enc.encode("I am a member"));
    await waitFor(() => inbox.length === 1, "the member's message");
    assert.ok(server.isMember(member.peerId));

    const s = await member.dialProtocol(server.peerId, PROTOCOL);
    assert.equal(s.protocol, PROTOCOL);
    assert.equal(s.remotePeer, server.peerId);
    await s.write(enc.encode("ping"));
    assert.equal(new TextDecoder().decode(await readAll(s, 4)), "ping");
    await s.close();

    const bad = await outsider.dialProtocol(server.peerId, PROTOCOL);
    await bad.write(enc.encode("let me in")).catch(() => {});
    await assert.rejects(readAll(bad, 1));
    await bad.closed;
    assert.equal(server.counters().streams.nonMember, 2);
    assert.equal(server.counters().streams.inbound, 1);

    // A pluggable rule replaces the default.
    server.setMembership((peer) => peer === outsider.peerId);
    const now = await outsider.dialProtocol(server.peerId, PROTOCOL);
    await now.write(enc.encode("ok"));
    assert.equal(new TextDecoder().decode(await readAll(now, 2)), "ok");
    await now.close();
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("stream writes respect backpressure and deliver 8 MiB intact", async () => {
  const received: Promise<Uint8Array>[] = [];
  await withStream(
    (s) => {
      received.push(readAll(s, 8 << 20));
    },
    async (s) => {
      const payload = crypto.getRandomValues(new Uint8Array(64 << 10));
      let waited = 0;
      for (let i = 0; i < 128; i++) {
        const chunk = payload.slice();
        chunk[0] = i;
        const written = s.write(chunk);
        if (s.needsDrain) waited++;
        await written;
      }
      await s.close();
      await waitFor(() => received.length === 1, "the server stream");
      const got = await received[0];
      for (let i = 0; i < 128; i++) {
        assert.equal(got[i * payload.length], i);
        assert.deepEqual(
          got.subarray(i * payload.length + 1, (i + 1) * payload.length),
          payload.subarray(1),
        );
      }
      assert.ok(waited > 0, "the writer should have had to wait for the transport at least once");
    },
  );
});

Deno.test("a reader that stops reading makes the writer wait instead of buffering", async () => {
  const streams: NodeStream[] = [];
  await withStream(
    (s) => {
      streams.push(s);
    },
    async (s) => {
      const chunk = new Uint8Array(64 << 10);
      let written = 0;
      let blocked = false;
      while (written < 64 << 20) {
        const w = s.write(chunk);
        const done = await Promise.race([
          w.then(() => true),
          new Promise<boolean>((r) => setTimeout(() => r(false), 300)),
        ]);
        written += chunk.length;
        if (!done) {
          blocked = true;
          break;
        }
      }
      assert.ok(blocked, `the writer never waited (wrote ${written} bytes)`);
      assert.ok(written <= 24 << 20, `wrote ${written} bytes before waiting`);
      await waitFor(() => streams.length === 1, "the server stream");
      let read = 0;
      for await (const c of streams[0]) {
        read += c.length;
        if (read >= written) break;
      }
      assert.equal(read, written);
    },
  );
});

Deno.test("a push-mode reader gets every chunk, those that arrived before it too, and ends with the stream", async () => {
  const got: Uint8Array[] = [];
  const ended: Promise<void>[] = [];
  const arrived = Promise.withResolvers<void>();
  await withStream(
    async (s) => {
      // Wait until the first bytes are read ahead, then switch to push mode.
      await arrived.promise;
      ended.push(s.consume((chunk) => got.push(chunk.slice())));
    },
    async (s) => {
      await s.write(enc.encode("before "));
      await new Promise((r) => setTimeout(r, 100));
      arrived.resolve();
      await waitFor(() => ended.length === 1, "the push-mode reader");
      await s.write(enc.encode("after"));
      await s.close();
      await ended[0];
      const text = new TextDecoder().decode(concatBytes(got));
      assert.equal(text, "before after");
    },
  );
});

Deno.test("a push-mode reader that throws resets the stream and its promise rejects", async () => {
  const results: Promise<unknown>[] = [];
  await withStream(
    (s) => {
      results.push(
        s.consume(() => {
          throw new Error("bad input");
        }).then(() => "resolved", (e) => (e as Error).message),
      );
    },
    async (s) => {
      await s.write(enc.encode("x"));
      await waitFor(() => results.length === 1, "the push-mode reader");
      assert.equal(await results[0], "bad input");
      await s.closed;
    },
  );
});

Deno.test("a stream the peer resets at once or later fails its reader instead of ending cleanly", async () => {
  const network = generateNetworkConfig();
  const a = await startNode(network);
  const b = await startNode(network, { bootstrapPeers: a.multiaddrs() });
  try {
    await a.handle("/edgevpn-test/reset-now/1.0", (s) => s.reset(), { membersOnly: false });
    await a.handle("/edgevpn-test/reset-later/1.0", async (s) => {
      await s.write(enc.encode("partial"));
      await new Promise((r) => setTimeout(r, 100));
      s.reset();
    }, { membersOnly: false });
    for (const protocol of ["/edgevpn-test/reset-now/1.0", "/edgevpn-test/reset-later/1.0"]) {
      const s = await b.dialProtocol(a.peerId, protocol);
      await assert.rejects(async () => {
        for await (const _ of s) { /* read until the reset */ }
      }, protocol);
    }
  } finally {
    await stopAll([b, a]);
  }
});

/** A libp2p stream stand-in that holds what arrives while paused, as libp2p's own does. */
class PausableStream extends EventTarget {
  status = "open";
  readStatus = "readable";
  writeStatus = "writable";
  readableEnded = false;
  maxReadBufferLength = 4 << 20;
  protocol = "/edgevpn-test/fake/1.0";
  direction = "inbound";
  held: Uint8Array[] = [];

  deliver(bytes: Uint8Array): void {
    if (this.readStatus === "paused") this.held.push(bytes);
    else this.dispatchEvent(Object.assign(new Event("message"), { data: bytes }));
  }

  pause(): void {
    this.readStatus = "paused";
  }

  resume(): void {
    this.readStatus = "readable";
    for (const bytes of this.held.splice(0)) this.deliver(bytes);
  }

  end(): void {
    this.readableEnded = true;
    this.dispatchEvent(new Event("end"));
  }
}

Deno.test("switching from iterating to push mode on a paused stream keeps the bytes in order", async () => {
  const raw = new PausableStream();
  const s = wrapStream(raw as unknown as Parameters<typeof wrapStream>[0], "peer");
  const chunk = (i: number) => new Uint8Array(256 * 1024).fill(i);
  const reader = s[Symbol.asyncIterator]();
  raw.deliver(chunk(0));
  assert.equal((await reader.next()).value?.[0], 0);
  // Past the read-ahead limit the stream pauses; later chunks wait in libp2p's buffer.
  for (let i = 1; i <= 8; i++) raw.deliver(chunk(i));
  assert.equal(raw.readStatus, "paused");
  assert.ok(raw.held.length > 0);
  await reader.return?.();
  const order: number[] = [];
  const done = s.consume((c) => order.push(c[0]));
  raw.end();
  await done;
  assert.deepEqual(order, [1, 2, 3, 4, 5, 6, 7, 8]);
});
