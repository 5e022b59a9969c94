/**
 * Go's NAT flags have effects on a node, not just values (loopback): `--transient-conn`,
 * `--autorelay` and `--autorelay-static-only`, `--natservice` with `--nat-ratelimit*`,
 * `--holepunch`, `--natmap`.
 */
import assert from "node:assert/strict";
import type { EdgeNode } from "../../lib/node/node.ts";
import { AUTONAT_PROTOCOL, natLibp2pParts, type NatOptions } from "../../lib/node/nat.ts";
import { generateNetworkConfig, startNode, stopAll, waitFor } from "./helpers.ts";

const PROTOCOL = "/edgevpn-test/echo/1";

/** A relay R and members A and B that know only R (A and B with their own NAT options). */
async function trio(natA: NatOptions, natB: NatOptions, natR: NatOptions = { relayService: {} }) {
  const network = generateNetworkConfig();
  const members = new Set<string>();
  const r = await startNode(network, { nat: natR });
  const bootstrap = [r.multiaddrs()[0]];
  const a = await startNode(network, { bootstrapPeers: bootstrap, nat: natA });
  const b = await startNode(network, { bootstrapPeers: bootstrap, nat: natB });
  const nodes = [r, a, b];
  for (const n of nodes) {
    members.add(n.peerId);
    n.setMembership((p) => members.has(p));
  }
  return { r, a, b, nodes };
}

async function echoServer(node: EdgeNode): Promise<void> {
  await node.handle(PROTOCOL, async (s) => {
    for await (const chunk of s) await s.write(chunk);
    await s.close();
  });
}

async function echo(from: EdgeNode, to: EdgeNode, text: string): Promise<string> {
  const s = await from.dialProtocol(to.peerId, PROTOCOL, { timeoutMs: 5_000 });
  const reading = (async () => {
    let out = "";
    for await (const chunk of s) out += new TextDecoder().decode(chunk);
    return out;
  })();
  try {
    await s.write(new TextEncoder().encode(text));
    await s.close();
  } catch (e) {
    // A stream refused at once fails both ways: the reader's rejection is this one's.
    await reading.catch(() => {});
    throw e;
  }
  return await reading;
}

Deno.test("--transient-conn=false keeps member streams off limited relayed connections, on either end", async () => {
  const network = generateNetworkConfig();
  const members = new Set<string>();
  const r = await startNode(network, { nat: { relayService: {} } });
  const bootstrap = [r.multiaddrs()[0]];
  const slot = { autoRelay: { staticRelays: bootstrap } };
  // A neither dials nor accepts member streams over a relay; C and D do (the default).
  const a = await startNode(network, {
    bootstrapPeers: bootstrap,
    nat: { ...slot, limitedConnections: false },
  });
  const c = await startNode(network, { bootstrapPeers: bootstrap, nat: slot });
  const d = await startNode(network, { bootstrapPeers: bootstrap, nat: slot });
  const nodes = [r, a, c, d];
  for (const n of nodes) {
    members.add(n.peerId);
    n.setMembership((p) => members.has(p));
  }
  try {
    for (const n of [a, c, d]) await echoServer(n);
    await waitFor(() => [a, c, d].every((n) => n.nat.slots().length === 1), "relay slots");
    await assert.rejects(() => echo(a, c, "a→c"));
    await assert.rejects(() => echo(c, a, "c→a"));
    // The control: the same relay carries C's stream to D.
    assert.equal(await echo(c, d, "c→d"), "c→d");
    const toD = c.connections().filter((x) => x.peer === d.peerId);
    assert.ok(toD.length >= 1 && toD.every((x) => x.limited), JSON.stringify(toD));
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("--autorelay finds member relays among the peers it dialled; --autorelay-static-only does not", async () => {
  const { r, a, b, nodes } = await trio(
    { autoRelay: { staticRelays: [], staticOnly: true } },
    { autoRelay: { staticRelays: [], staticOnly: false } },
  );
  try {
    await waitFor(() => b.nat.slots().length === 1, "B's slot on a relay it discovered");
    const slot = b.nat.slots()[0];
    assert.equal(slot.relay, r.peerId);
    assert.equal(slot.static, false);
    // A met the same relay at the same time (and is told to look again): no slot, no attempt.
    a.nat.autoRelay!.poke();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.equal(a.nat.slots().length, 0);
    assert.equal(a.nat.counters().autoRelay!.attempts, 0);
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("--natservice answers AutoNAT on its protocol and --nat-ratelimit-peer refuses a peer over its share", async () => {
  const { r, a, b, nodes } = await trio({}, {}, {
    natService: { rateLimit: { global: 10, perPeer: 2, intervalMs: 60_000 } },
  });
  try {
    const open = async (from: EdgeNode) => {
      const s = await from.dialProtocol(r.peerId, AUTONAT_PROTOCOL, { timeoutMs: 5_000 });
      await s.close().catch(() => {});
    };
    for (let i = 0; i < 3; i++) await open(a).catch(() => {});
    await waitFor(
      () => (r.nat.counters().natService?.refusedRate ?? 0) === 1,
      "A's third request refused",
    );
    await open(b).catch(() => {});
    await waitFor(() => r.nat.counters().natService?.served === 3, "B's request served");
    assert.deepEqual(r.nat.counters().natService, { served: 3, refusedRate: 1 });
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("--holepunch adds DCUtR and a fixed dial port; --natmap adds UPnP only off loopback; --natservice adds AutoNAT", () => {
  const off = natLibp2pParts({ holePunch: false }, ["/ip4/0.0.0.0/tcp/4001"]);
  assert.deepEqual(Object.keys(off.services), []);
  assert.equal(off.dialPort, undefined);
  const on = natLibp2pParts({ holePunch: true, dialPort: 40123 }, ["/ip4/0.0.0.0/tcp/4001"]);
  assert.deepEqual(Object.keys(on.services), ["dcutr"]);
  assert.equal(on.dialPort, 40123);
  assert.equal(on.transports.length, 2);
  assert.deepEqual(
    Object.keys(natLibp2pParts({ natMap: true }, ["/ip4/0.0.0.0/tcp/4001"]).services).sort(),
    ["autoNAT", "upnpNAT"],
  );
  assert.deepEqual(
    Object.keys(natLibp2pParts({ natMap: true }, ["/ip4/127.0.0.1/tcp/4001"]).services),
    ["autoNAT"],
  );
  assert.deepEqual(
    Object.keys(natLibp2pParts({ natService: {} }, ["/ip4/0.0.0.0/tcp/4001"]).services),
    ["autoNAT"],
  );
});

Deno.test("with --holepunch every outbound TCP connection leaves from the dial port", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepted = (async () => {
    const conn = await listener.accept();
    const from = (conn.remoteAddr as Deno.NetAddr).port;
    conn.close();
    return from;
  })();
  // A bootstrap peer that is only a TCP listener: the dial is what the test looks at.
  const someone = "12D3KooWQFrvqRrmDaeRmkS1QUVS5ZYRK3PbNo7oTtcH7F79WtLH";
  const a = await startNode(generateNetworkConfig(), {
    bootstrapPeers: [`/ip4/127.0.0.1/tcp/${port}/p2p/${someone}`],
    nat: { holePunch: true },
  });
  try {
    assert.equal(await accepted, a.nat.dialPort);
    assert.ok(!a.multiaddrs().some((ma) => ma.endsWith(`/tcp/${a.nat.dialPort}`)));
  } finally {
    listener.close();
    await stopAll([a]);
  }
});
