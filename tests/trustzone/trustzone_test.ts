/** The trust zone on loopback meshes: admission by challenge, replayed signatures, the gate. */
import assert from "node:assert/strict";
import { generateNetworkConfig } from "../../lib/config/token.ts";
import { BUCKETS } from "../../lib/ledger/buckets.ts";
import type { Mesh } from "../../lib/mesh/mesh.ts";
import { generateEcdsaKeys } from "../../lib/trustzone/ecdsa.ts";
import { type TrustMode, TrustZone } from "../../lib/trustzone/trustzone.ts";
import { waitFor } from "../node/helpers.ts";
import { startLoopbackMesh } from "../mesh/helpers.ts";

/**
 * Verifier V, key holder A and intruder X (no key) on one network; V and A run the trust zone.
 * X captures A's signed challenge and publishes it as its own.
 */
async function replayScenario(mode: TrustMode) {
  const network = generateNetworkConfig();
  const keys = generateEcdsaKeys();
  const meshes: Mesh[] = [];
  const zones: TrustZone[] = [];
  try {
    const v = await startLoopbackMesh(network, { mode: "off" });
    meshes.push(v);
    const seed = [v.node.multiaddrs()[0]];
    const a = await startLoopbackMesh(network, { mode: "off", bootstrap: seed });
    // X also knows A: A's challenge reaches X straight from A (GossipSub flood publish).
    const x = await startLoopbackMesh(network, {
      mode: "off",
      bootstrap: [...seed, a.node.multiaddrs()[0]],
    });
    meshes.push(a, x);
    const zone = (m: Mesh, key?: string) => {
      const tz = new TrustZone({
        peerId: m.peerId,
        ledger: m.ledger,
        publicHub: m.node.createPublicHub(),
        topicPeers: () => m.node.topicPeers(),
      }, {
        mode,
        gate: true,
        relaxed: false,
        autoclean: false,
        intervalMs: 60_000,
        ecdsaPrivateKey: key,
      });
      zones.push(tz);
      return tz;
    };
    const tzV = zone(v);
    const tzA = zone(a, keys.privateKey);
    await waitFor(() => v.node.topicPeers().length === 2, "A and X on the topic");
    await v.ledger.add(BUCKETS.trustzoneAuth, new Map([["ecdsa_1", keys.publicKey]]));
    await waitFor(
      () => a.ledger.getKey(BUCKETS.trustzoneAuth, "ecdsa_1") !== undefined,
      "auth key",
    );
    const captured: { text: Uint8Array; sig: unknown }[] = [];
    const spy = x.node.createPublicHub();
    spy.addEventListener("message", (e) => {
      captured.push({ text: e.detail.data, sig: e.detail.annotations?.sigs });
    });
    await spy.start();
    await tzV.start();
    // A challenges once as it starts (then every minute): it must know by then that V and X
    // are on the public room, or its challenge goes to no one.
    await waitFor(
      () => [v.peerId, x.peerId].every((p) => a.node.subscribers(spy.topic).includes(p)),
      "A seeing V and X on the public room",
    );
    await tzA.start();
    await waitFor(
      () => v.ledger.getKey(BUCKETS.trustzone, a.peerId) !== undefined,
      () => `A admitted: V ${JSON.stringify(tzV.counters())}, A ${JSON.stringify(tzA.counters())}`,
    );
    await waitFor(() => captured.length > 0, "X captured A's challenge");
    // X replays A's signature from its own peer ID, a few times.
    for (let i = 0; i < 3; i++) {
      await spy.publish(captured[0].text, { sigs: captured[0].sig });
      await new Promise((r) => setTimeout(r, 300));
    }
    await new Promise((r) => setTimeout(r, 1000));
    const xAdmitted = v.ledger.getKey(BUCKETS.trustzone, x.peerId) !== undefined;
    await spy.stop();
    return { xAdmitted, counters: tzV.counters(), v, a, x, tzV };
  } finally {
    for (const z of zones) await z.stop().catch(() => {});
    for (const m of meshes) await m.stop();
  }
}

Deno.test("our bound mode: a replayed trust-zone signature admits nobody", async () => {
  const r = await replayScenario("bound");
  assert.equal(r.xAdmitted, false);
  assert.ok(r.counters.refused.wrongSender >= 1, JSON.stringify(r.counters));
  assert.equal(r.counters.admitted, 1);
});

Deno.test("Go's mode: a replayed signature admits the replayer, as Go EdgeVPN does", async () => {
  const r = await replayScenario("go");
  assert.equal(r.xAdmitted, true);
  assert.ok(r.counters.admitted >= 2, JSON.stringify(r.counters));
});

Deno.test("with the gate on, a peer outside the zone is no member and its ledger messages are dropped, until the gate is turned off", async () => {
  const network = generateNetworkConfig();
  const keys = generateEcdsaKeys();
  const options = {
    mode: "bound" as const,
    gate: true,
    relaxed: false,
    autoclean: false,
    intervalMs: 1_000,
  };
  const meshes: Mesh[] = [];
  try {
    const v = await startLoopbackMesh(network, { mode: "off", trustZone: options });
    meshes.push(v);
    const seed = [v.node.multiaddrs()[0]];
    const a = await startLoopbackMesh(network, {
      mode: "off",
      bootstrap: seed,
      trustZone: { ...options, ecdsaPrivateKey: keys.privateKey },
    });
    const x = await startLoopbackMesh(network, { mode: "off", bootstrap: seed });
    meshes.push(a, x);
    await waitFor(() => v.node.topicPeers().length === 2, "A and X on the topic");
    // V writes the zone's key itself: its gate drops everything from outside the zone.
    await v.ledger.add(BUCKETS.trustzoneAuth, new Map([["ecdsa_1", keys.publicKey]]));
    await a.ledger.add(BUCKETS.trustzoneAuth, new Map([["ecdsa_1", keys.publicKey]]));
    await waitFor(
      () => v.ledger.getKey(BUCKETS.trustzone, a.peerId) !== undefined,
      () =>
        `A admitted: V ${JSON.stringify(v.trustZone?.counters())}, A ${
          JSON.stringify(a.trustZone?.counters())
        }`,
    );
    // Off mode adopts only a longer chain, and A's gate drops V's messages (V holds no key, so
    // it is outside the zone): A's entries reach V once A's chain is the longer one, which
    // heartbeats alone decide by chance (V also wrote the admission, so it was often ahead).
    for (let i = 0; a.ledger.lastBlock().index <= v.ledger.lastBlock().index + 1; i++) {
      await a.ledger.add("tests", { [`n${i}`]: i });
    }
    await waitFor(() => v.isMember(a.peerId), () =>
      JSON.stringify({
        hc: [...(v.ledger.currentData().get(BUCKETS.healthcheck)?.keys() ?? [])],
        tz: [...(v.ledger.currentData().get(BUCKETS.trustzone)?.keys() ?? [])],
        a: a.peerId,
        gates: v.trustZone!.gates(a.peerId),
      }));
    await new Promise((r) => setTimeout(r, 1500));
    // X's own ledger messages are dropped (its heartbeats may still reach the ledger inside a
    // zone member's blocks, as with Go): outside the zone it is no member.
    assert.equal(v.isMember(x.peerId), false);
    assert.ok(v.trustZone!.counters().gated > 0);
    // What PUT /api/peergate/disable does.
    assert.equal(v.trustZone!.enabled(), true);
    v.trustZone!.setEnabled(false);
    await waitFor(() => v.isMember(x.peerId), "X a member once the gate is off");
  } finally {
    for (const m of meshes) await m.stop();
  }
});
