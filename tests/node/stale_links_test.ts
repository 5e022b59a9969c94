import assert from "node:assert/strict";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { ping } from "@libp2p/ping";
import { tcp } from "@libp2p/tcp";
import { createLibp2p } from "libp2p";
import { installDenoCompat } from "../../lib/node/deno_compat.ts";
import { StaleLinks } from "../../lib/node/stale_links.ts";
import { generateIdentity } from "../../lib/crypto/identity.ts";
import { collectMessages, generateNetworkConfig, startNode, stopAll, waitFor } from "./helpers.ts";

/**
 * A TCP relay that can be cut like a partitioned network: while cut, bytes both ways are
 * held back and a side that closes is not told to the other. Once healed, bytes sent towards a
 * side that closed meanwhile (held ones, as TCP retransmits them, or new ones) make the relay
 * close the sender's side, as the kernel of a restarted host answers a segment of a connection
 * it no longer knows with a reset.
 */
class PartitionRelay {
  readonly port: number;
  #cut = false;
  readonly #listener: Deno.Listener;
  readonly #conns = new Set<Deno.Conn>();
  readonly #onHeal = new Set<() => void>();

  constructor(targetPort: number) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    void this.#serve(targetPort);
  }

  async #serve(targetPort: number): Promise<void> {
    for await (const a of this.#listener) {
      const b = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
      this.#conns.add(a).add(b);
      const closed = { a: false, b: false };
      const held = { a: false, b: false };
      const end = () => {
        for (const c of [a, b]) {
          try {
            c.close();
          } catch { /* closed */ }
          this.#conns.delete(c);
        }
      };
      const pump = async (from: Deno.Conn, to: Deno.Conn, side: "a" | "b", other: "a" | "b") => {
        const buf = new Uint8Array(65536);
        while (true) {
          const n = await from.read(buf).catch(() => null);
          if (n === null) {
            closed[side] = true;
            if (!this.#cut) end();
            return;
          }
          if (this.#cut) {
            held[side] = true;
            continue;
          }
          if (closed[other]) return end();
          try {
            await to.write(buf.subarray(0, n));
          } catch {
            return end();
          }
        }
      };
      this.#onHeal.add(() => {
        if ((held.a && closed.b) || (held.b && closed.a)) end();
      });
      void pump(a, b, "a", "b");
      void pump(b, a, "b", "a");
    }
  }

  cut(): void {
    this.#cut = true;
  }

  heal(): void {
    this.#cut = false;
    for (const f of this.#onHeal) f();
  }

  close(): void {
    this.#listener.close();
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
  }
}

Deno.test("a peer restarted behind a partition gets our gossip over its new connection, and the dead one is dropped", async () => {
  const network = generateNetworkConfig(360);
  const idB = await generateIdentity();
  const a = await startNode(network);
  let b = await startNode(network, { identity: idB });
  let b2: typeof b | undefined;
  const port = Number(b.multiaddrs()[0].match(/\/tcp\/(\d+)/)![1]);
  const relay = new PartitionRelay(port);
  try {
    await a.dial(`/ip4/127.0.0.1/tcp/${relay.port}/p2p/${idB.peerId}`);
    await waitFor(
      () => a.topicPeers().includes(idB.peerId) && b.topicPeers().includes(a.peerId),
      "gossip between a and b",
    );
    // b dies while cut off from a: a keeps its connection, which nothing closes.
    relay.cut();
    await b.stop();
    b2 = await startNode(network, { identity: idB, bootstrapPeers: a.multiaddrs() });
    b = b2;
    // b's new process reaches a (not through the relay) before the partition heals.
    await waitFor(() => a.connections().length === 2, "a second connection between a and b");
    relay.heal();
    const got = collectMessages(b2);
    let n = 0;
    await waitFor(async () => {
      await a.hub.publish(new TextEncoder().encode(`hello ${++n}`));
      return got.length > 0 && b2!.topicPeers().includes(a.peerId) &&
        a.topicPeers().includes(idB.peerId);
    }, () => `a's gossip at the restarted b (got ${got.length}, ${JSON.stringify(a.staleLinks)})`);
    // The new connection made a probe the old one, which the first bytes closed; only the new
    // connection is left.
    await waitFor(() => a.connections().length === 1, "one connection between a and b");
    const links = a.staleLinks;
    assert.equal(links.probes, 1, JSON.stringify(links));
    assert.ok(links.moved + links.reopened >= 1, JSON.stringify(links));
  } finally {
    relay.close();
    await stopAll([a, b, b2]);
  }
});

Deno.test("a probe does not take the ping slot: an older connection busy with a ping survives a newer one's probe", async () => {
  installDenoCompat();
  const host = (listen: string[]) =>
    createLibp2p({
      addresses: { listen },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { ping: ping() },
    });
  const a = await host([]);
  const b = await host(["/ip4/127.0.0.1/tcp/0"]);
  const links = new StaleLinks(a, undefined);
  links.attach();
  try {
    const older = await a.dial(b.getMultiaddrs()[0]);
    // What libp2p's connection monitor does every 10 s: ping allows one such stream at a time.
    const heartbeat = await older.newStream("/ipfs/ping/1.0.0");
    await a.dial(b.getMultiaddrs()[0], { force: true });
    await waitFor(() => links.counters.alive + links.counters.aborted === 1, "the probe's end");
    assert.deepEqual({ ...links.counters, moved: 0, reopened: 0 }, {
      probes: 1,
      alive: 1,
      aborted: 0,
      moved: 0,
      reopened: 0,
    });
    assert.equal(older.status, "open");
    heartbeat.abort(new Error("done"));
  } finally {
    links.stop();
    await a.stop();
    await b.stop();
  }
});
