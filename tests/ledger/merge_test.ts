import assert from "node:assert/strict";
import { generateIdentity } from "../../lib/crypto/identity.ts";
import { genesisBlock, nextBlock, type Storage } from "../../lib/ledger/block.ts";
import { createLedger } from "../../lib/ledger/ledger.ts";
import { MemoryStore } from "../../lib/ledger/store_memory.ts";
import { msToNs } from "../../lib/util/gotime.ts";
import {
  entryOwner,
  feed,
  heartbeat,
  JAN1_MS,
  legacy,
  machine,
  messageOf,
  signed,
  signedLedger,
  storage,
  storedOwner,
  TestClock,
  tombstone,
} from "./helpers.ts";

const JAN1_NS = BigInt(JAN1_MS) * 1_000_000n;

const IP = "10.1.0.1";

Deno.test("merge accepts an owner's own write", async () => {
  const l = await signedLedger(new TestClock());
  const a = await generateIdentity();
  await feed(
    l,
    storage({ machines: { [IP]: await signed(a, "machines", IP, machine(a.peerId, IP), 1n) } }),
  );
  assert.equal(storedOwner(l, "machines", IP), a.peerId);
  await l.stop();
});

Deno.test("merge keeps a live owner's entry against a higher version by another signer", async () => {
  const l = await signedLedger(new TestClock());
  const [a, b] = [await generateIdentity(), await generateIdentity()];
  await feed(l, await heartbeat(a));
  await feed(
    l,
    storage({ machines: { [IP]: await signed(a, "machines", IP, machine(a.peerId, IP), 1n) } }),
  );
  await feed(
    l,
    storage({ machines: { [IP]: await signed(b, "machines", IP, machine(b.peerId, IP), 2n) } }),
  );
  assert.equal(storedOwner(l, "machines", IP), a.peerId);
  assert.equal(l.counters.rejectedEntries.hijack, 1);
  await l.stop();
});

Deno.test("merge rejects a rollback to an older version", async () => {
  const l = await signedLedger(new TestClock());
  const a = await generateIdentity();
  await feed(
    l,
    storage({
      machines: { [IP]: await signed(a, "machines", IP, machine(a.peerId, "10.9.9.9"), 2n) },
    }),
  );
  await feed(
    l,
    storage({
      machines: { [IP]: await signed(a, "machines", IP, machine(a.peerId, "10.0.0.0"), 1n) },
    }),
  );
  assert.equal(JSON.parse(l.getKey("machines", IP)!).Address, "10.9.9.9");
  assert.equal(l.counters.rejectedEntries.rollback, 1);
  await l.stop();
});

Deno.test("merge rejects a forged signature ('garbage')", async () => {
  const l = await signedLedger(new TestClock());
  const a = await generateIdentity();
  const e = await signed(a, "machines", IP, machine(a.peerId, IP), 1n);
  await feed(
    l,
    storage({ machines: { [IP]: { ...e, sig: new TextEncoder().encode("garbage") } } }),
  );
  assert.equal(l.getKey("machines", IP), undefined);
  assert.equal(l.counters.rejectedEntries.signature_invalid, 1);
  await l.stop();
});

Deno.test("merge lets another signer reclaim the key of an owner without heartbeat", async () => {
  const l = await signedLedger(new TestClock());
  const [a, b] = [await generateIdentity(), await generateIdentity()];
  await feed(
    l,
    storage({ machines: { [IP]: await signed(a, "machines", IP, machine(a.peerId, IP), 1n) } }),
  );
  await feed(
    l,
    storage({ machines: { [IP]: await signed(b, "machines", IP, machine(b.peerId, IP), 2n) } }),
  );
  assert.equal(storedOwner(l, "machines", IP), b.peerId);
  await l.stop();
});

Deno.test("merge blocks a DNS hijack by first claim", async () => {
  const l = await signedLedger(new TestClock());
  const [a, b] = [await generateIdentity(), await generateIdentity()];
  const name = "foo.internal";
  await feed(l, await heartbeat(a));
  await feed(
    l,
    storage({ dns: { [name]: await signed(a, "dns", name, { "1": "10.0.0.5" }, 1n) } }),
  );
  assert.ok(l.getKey("dns", name));
  await feed(l, storage({ dns: { [name]: await signed(b, "dns", name, { "1": "6.6.6.6" }, 2n) } }));
  assert.equal(JSON.parse(l.getKey("dns", name)!)["1"], "10.0.0.5");
  await l.stop();
});

Deno.test("merge neither churns nor warns on a byte-identical re-broadcast", async () => {
  const warnings: string[] = [];
  const l = await signedLedger(new TestClock(), undefined, {
    logger: {
      debug() {},
      info() {},
      warn: (m: string) => warnings.push(m),
      error() {},
      enabled: () => true,
      child() {
        return this;
      },
    },
  });
  const a = await generateIdentity();
  const owned = storage({
    machines: { [IP]: await signed(a, "machines", IP, machine(a.peerId, IP), 1n) },
  });
  const ownedMessage = await messageOf(await nextBlock(l.lastBlock(), owned, JAN1_NS));
  await l.receive(ownedMessage);
  const idx = l.index();
  const hash = l.lastBlock().hash;
  await l.receive(ownedMessage);
  assert.equal(l.index(), idx);
  assert.equal(l.lastBlock().hash, hash);
  assert.equal(warnings.length, 0);
  const open = storage({ nodes: { k: await signed(a, "nodes", "k", "v", 1n) } });
  const merged = new Map([...owned, ...open]);
  const openMessage = await messageOf(await nextBlock(l.lastBlock(), merged, JAN1_NS));
  await l.receive(openMessage);
  const idx2 = l.index();
  await l.receive(openMessage);
  assert.equal(l.index(), idx2);
  await l.stop();
});

Deno.test("ledgers holding the same entries end on the same head block", async () => {
  const a = await generateIdentity();
  const entries = storage({
    machines: { [IP]: await signed(a, "machines", IP, machine(a.peerId, IP), 1n) },
  });
  const one = await signedLedger(new TestClock());
  const two = await signedLedger(new TestClock());
  // Each ledger reaches the same entries through a block of its own making.
  await feed(one, entries);
  await feed(two, entries);
  await feed(two, entries);
  assert.equal(await one.contentHash(), await two.contentHash());
  const higher = two.lastBlock();
  assert.ok(higher.index > one.lastBlock().index);
  await one.receive(await messageOf(higher));
  assert.equal(one.lastBlock().hash, higher.hash, "the lower head adopts the higher one");
  await two.receive(await messageOf(one.lastBlock()));
  assert.equal(two.lastBlock().hash, higher.hash);
  const forged = { ...higher, index: higher.index + 1, hash: "f".repeat(64) };
  await one.receive(await messageOf(forged));
  assert.equal(one.lastBlock().hash, higher.hash, "a head with a wrong hash is never adopted");
  await one.stop();
  await two.stop();
});

Deno.test("merge lets a valid owner reclaim a key cleared by a foreign tombstone", async () => {
  const l = await signedLedger(new TestClock());
  const [a, reaper] = [await generateIdentity(), await generateIdentity()];
  await feed(l, await heartbeat(reaper));
  await feed(
    l,
    storage({ machines: { [IP]: await signed(a, "machines", IP, machine(a.peerId, IP), 1n) } }),
  );
  await feed(l, storage({ machines: { [IP]: await tombstone(reaper, "machines", IP, 2n) } }));
  assert.equal(l.getKey("machines", IP), undefined);
  await feed(
    l,
    storage({ machines: { [IP]: await signed(a, "machines", IP, machine(a.peerId, IP), 3n) } }),
  );
  assert.equal(storedOwner(l, "machines", IP), a.peerId);
  await l.stop();
});

Deno.test("a fully tombstoned bucket disappears from currentData", async () => {
  const l = await signedLedger(new TestClock());
  await l.add("mybucket", { k: "v" });
  assert.ok(l.currentData().has("mybucket"));
  await l.deleteBucket("mybucket");
  assert.equal(l.currentData().has("mybucket"), false);
  assert.equal(l.currentStorage().get("mybucket")?.get("k")?.deleted, true);
  await l.stop();
});

Deno.test("a tombstoned entry is hidden from readers", async () => {
  const l = await signedLedger(new TestClock());
  const a = await generateIdentity();
  await feed(
    l,
    storage({ machines: { [IP]: await signed(a, "machines", IP, machine(a.peerId, IP), 1n) } }),
  );
  await feed(l, storage({ machines: { [IP]: await tombstone(a, "machines", IP, 2n) } }));
  assert.equal(l.getKey("machines", IP), undefined);
  assert.equal(l.exists("machines", () => true), false);
  await l.stop();
});

Deno.test("observe mode logs violations and accepts them anyway", async () => {
  const l = await signedLedger(new TestClock(), undefined, { mode: "observe" });
  const a = await generateIdentity();
  const e = await signed(a, "machines", IP, machine(a.peerId, IP), 1n);
  await feed(l, storage({ machines: { [IP]: { ...e, sig: new Uint8Array(64) } } }));
  assert.equal(storedOwner(l, "machines", IP), a.peerId);
  assert.equal(l.counters.observedViolations.signature_invalid, 1);
  await l.stop();
});

Deno.test("enforce rejects unsigned entries in owned buckets but accepts them in open buckets", async () => {
  const l = await signedLedger(new TestClock());
  await feed(
    l,
    storage({ machines: { [IP]: legacy(machine("x", IP)) }, custom: { k: legacy("v") } }),
  );
  assert.equal(l.getKey("machines", IP), undefined);
  assert.equal(l.getKey("custom", "k"), '"v"');
  await l.stop();
});

Deno.test("open buckets verify signed entries (improvement over Go) and take strictly higher versions", async () => {
  const l = await signedLedger(new TestClock());
  const a = await generateIdentity();
  const good = await signed(a, "dhcp", "leader", a.peerId, 5n);
  await feed(l, storage({ dhcp: { leader: { ...good, sig: new Uint8Array(64) } } }));
  assert.equal(l.getKey("dhcp", "leader"), undefined);
  assert.equal(l.counters.rejectedEntries.signature_invalid, 1);
  await feed(l, storage({ dhcp: { leader: good } }));
  assert.equal(l.getKey("dhcp", "leader"), JSON.stringify(a.peerId));
  await feed(l, storage({ dhcp: { leader: await signed(a, "dhcp", "leader", "older", 4n) } }));
  assert.equal(l.getKey("dhcp", "leader"), JSON.stringify(a.peerId));
  assert.equal(l.counters.ignoredEntries.stale_version, 1);
  await feed(l, storage({ dhcp: { leader: legacy("unsigned") } }));
  assert.equal(l.getKey("dhcp", "leader"), JSON.stringify(a.peerId), "version 0 cannot replace");
  await l.stop();
});

Deno.test("a merge creates the buckets of rejected entries when something else changed (§17.4)", async () => {
  const l = await signedLedger(new TestClock());
  const a = await generateIdentity();
  await feed(
    l,
    storage({
      machines: { [IP]: legacy(machine("x", IP)) },
      nodes: { k: await signed(a, "nodes", "k", "v", 1n) },
    }),
  );
  assert.equal(l.currentStorage().get("machines")?.size, 0);
  assert.ok(l.currentStorage().has("machines"));
  await l.stop();
});

Deno.test("a merge with nothing accepted leaves no new block and no empty bucket", async () => {
  const l = await signedLedger(new TestClock());
  const before = l.lastBlock();
  await feed(l, storage({ machines: { [IP]: legacy(machine("x", IP)) } }));
  assert.equal(l.lastBlock(), before);
  await l.stop();
});

Deno.test("expiry uses the heartbeats from before the merge (§17.5)", async () => {
  const l = await signedLedger(new TestClock());
  const [a, b] = [await generateIdentity(), await generateIdentity()];
  await feed(
    l,
    storage({ machines: { [IP]: await signed(a, "machines", IP, machine(a.peerId, IP), 1n) } }),
  );
  // A's heartbeat arrives together with B's takeover: A still counts as expired.
  const hb = (await heartbeat(a)).get("healthcheck")!;
  const takeover = await signed(b, "machines", IP, machine(b.peerId, IP), 2n);
  await feed(l, new Map([["healthcheck", hb], ["machines", new Map([[IP, takeover]])]]));
  assert.equal(storedOwner(l, "machines", IP), b.peerId);
  await l.stop();
});

Deno.test("merged blocks are atomic: a block with one bad signature applies only its valid entries, never a partial entry", async () => {
  const l = await signedLedger(new TestClock());
  const a = await generateIdentity();
  const good = await signed(a, "machines", IP, machine(a.peerId, IP), 1n);
  const bad = {
    ...(await signed(a, "machines", "10.1.0.2", machine(a.peerId, "10.1.0.2"), 1n)),
    version: 9n,
  };
  await feed(l, storage({ machines: { [IP]: good, "10.1.0.2": bad } }));
  assert.ok(l.getKey("machines", IP));
  assert.equal(l.getKey("machines", "10.1.0.2"), undefined);
  await l.stop();
});

// ---- legacy unsigned entries under enforcement (Go legacy_entry_test.go) -----------------

async function restartedWithPersistedLedger(
  persisted: Storage,
  identity?: Awaited<ReturnType<typeof generateIdentity>>,
) {
  const store = new MemoryStore();
  const g = genesisBlock(msToNs(JAN1_MS));
  await store.save(await nextBlock(g, persisted, msToNs(JAN1_MS)));
  return await createLedger({
    identity: identity ?? await generateIdentity(),
    mode: "enforce",
    ownershipTtlMs: 60_000,
    now: () => JAN1_MS,
    store,
  });
}

Deno.test("the peer a persisted unsigned entry names may re-claim it signed", async () => {
  const b = await generateIdentity();
  const l = await restartedWithPersistedLedger(
    storage({ machines: { [IP]: legacy(machine(b.peerId, IP)) } }),
  );
  await feed(l, await heartbeat(b));
  await feed(
    l,
    storage({ machines: { [IP]: await signed(b, "machines", IP, machine(b.peerId, IP), 10n) } }),
  );
  assert.equal(entryOwner(l, "machines", IP), b.peerId);
  await l.stop();
});

Deno.test("another live peer may not take a legacy entry naming a live peer", async () => {
  const [b, c] = [await generateIdentity(), await generateIdentity()];
  const l = await restartedWithPersistedLedger(
    storage({ machines: { [IP]: legacy(machine(b.peerId, IP)) } }),
  );
  await feed(l, await heartbeat(b));
  await feed(l, await heartbeat(c));
  await feed(
    l,
    storage({ machines: { [IP]: await signed(c, "machines", IP, machine(c.peerId, IP), 10n) } }),
  );
  assert.equal(entryOwner(l, "machines", IP), "");
  await l.stop();
});

Deno.test("another peer may claim a legacy entry once the named peer has gone", async () => {
  const [b, c] = [await generateIdentity(), await generateIdentity()];
  const l = await restartedWithPersistedLedger(
    storage({ machines: { [IP]: legacy(machine(b.peerId, IP)) } }),
  );
  await feed(l, await heartbeat(c));
  await feed(
    l,
    storage({ machines: { [IP]: await signed(c, "machines", IP, machine(c.peerId, IP), 10n) } }),
  );
  assert.equal(entryOwner(l, "machines", IP), c.peerId);
  await l.stop();
});

Deno.test("a peer may re-claim a legacy entry keyed by its own peer ID, not someone else's", async () => {
  const [b, c] = [await generateIdentity(), await generateIdentity()];
  const l = await restartedWithPersistedLedger(storage({ egress: { [b.peerId]: legacy("true") } }));
  await feed(l, await heartbeat(b));
  await feed(l, await heartbeat(c));
  await feed(
    l,
    storage({ egress: { [b.peerId]: await signed(c, "egress", b.peerId, "true", 10n) } }),
  );
  assert.equal(entryOwner(l, "egress", b.peerId), "");
  await feed(
    l,
    storage({ egress: { [b.peerId]: await signed(b, "egress", b.peerId, "true", 10n) } }),
  );
  assert.equal(entryOwner(l, "egress", b.peerId), b.peerId);
  await l.stop();
});

Deno.test("a rightful owner's deletion of its legacy entry propagates", async () => {
  const b = await generateIdentity();
  const persisted = () => storage({ machines: { [IP]: legacy(machine(b.peerId, IP)) } });
  const owner = await restartedWithPersistedLedger(persisted(), b);
  await owner.delete("machines", IP);
  assert.equal(owner.getKey("machines", IP), undefined);
  const tomb = owner.currentStorage().get("machines")!.get(IP)!;
  assert.equal(tomb.deleted, true);
  assert.equal(tomb.owner, b.peerId);
  const peer = await restartedWithPersistedLedger(persisted());
  await feed(peer, await heartbeat(b));
  await feed(peer, storage({ machines: { [IP]: tomb } }));
  assert.equal(peer.getKey("machines", IP), undefined);
  await owner.stop();
  await peer.stop();
});

Deno.test("a tombstone from another live peer is refused; allowed once the named peer has gone", async () => {
  const [b, c] = [await generateIdentity(), await generateIdentity()];
  const persisted = () => storage({ machines: { [IP]: legacy(machine(b.peerId, IP)) } });
  const tomb = await tombstone(c, "machines", IP, 1n << 40n);
  const l = await restartedWithPersistedLedger(persisted());
  await feed(l, await heartbeat(b));
  await feed(l, await heartbeat(c));
  await feed(l, storage({ machines: { [IP]: tomb } }));
  assert.ok(l.getKey("machines", IP));
  assert.equal(l.counters.rejectedEntries.tombstone_not_owner, 1);
  const l2 = await restartedWithPersistedLedger(persisted());
  await feed(l2, await heartbeat(c));
  await feed(l2, storage({ machines: { [IP]: tomb } }));
  assert.equal(l2.getKey("machines", IP), undefined);
  await l.stop();
  await l2.stop();
});

// ---- reaper (Go reaper_test.go) ----------------------------------------------------------

Deno.test("the reaper tombstones entries of inactive owners and keeps live ones", async () => {
  const [a, b] = [await generateIdentity(), await generateIdentity()];
  const l = await signedLedger(new TestClock(), a);
  await feed(l, await heartbeat(a));
  await feed(
    l,
    storage({
      machines: {
        "10.1.0.1": await signed(a, "machines", "10.1.0.1", machine(a.peerId, "10.1.0.1"), 1n),
        "10.1.0.2": await signed(b, "machines", "10.1.0.2", machine(b.peerId, "10.1.0.2"), 1n),
      },
    }),
  );
  assert.equal(await l.reap(3_600_000), true);
  assert.equal(l.getKey("machines", "10.1.0.2"), undefined);
  assert.ok(l.getKey("machines", "10.1.0.1"));
  const t = l.currentStorage().get("machines")!.get("10.1.0.2")!;
  assert.equal(t.owner, a.peerId);
  assert.equal(t.deleted, true);
  await l.stop();
});

Deno.test("the reaper prunes tombstones older than the tombstone TTL", async () => {
  const a = await generateIdentity();
  const l = await signedLedger(new TestClock(), a);
  const old = await tombstone(a, "machines", "10.1.0.9", 5n, JAN1_MS - 2 * 3_600_000);
  // Present in storage (a persisted ledger), then reaped with a 1 h tombstone TTL.
  const l2 = await restartedWithPersistedLedger(storage({ machines: { "10.1.0.9": old } }), a);
  await l2.reap(3_600_000);
  assert.equal(l2.currentStorage().get("machines")?.has("10.1.0.9"), false);
  await l.stop();
  await l2.stop();
});

Deno.test("an expired tombstone for a key we do not hold is not re-imported after pruning (§17)", async () => {
  const a = await generateIdentity();
  const l = await signedLedger(new TestClock(), a, { tombstoneTtlMs: 3_600_000 });
  const old = await tombstone(a, "custom", "gone", 5n, JAN1_MS - 2 * 3_600_000);
  const before = l.lastBlock();
  await feed(l, storage({ custom: { gone: old } }));
  assert.equal(l.lastBlock(), before);
  assert.equal(l.counters.ignoredEntries.tombstone_expired, 1);
  await l.stop();
});

Deno.test("every node prunes expired tombstones on its sync tick", async () => {
  const clock = new TestClock();
  const l = await signedLedger(clock, undefined, { tombstoneTtlMs: 3_600_000 });
  await l.add("custom", { k: "v" });
  await l.delete("custom", "k");
  assert.equal(l.currentStorage().get("custom")?.get("k")?.deleted, true);
  clock.ms += 2 * 3_600_000;
  await l.syncTick();
  assert.equal(l.currentStorage().get("custom")?.has("k"), false);
  await l.stop();
});

Deno.test("isOwnerLive is always true off and follows heartbeats under enforce", async () => {
  const off = await createLedger();
  assert.equal(off.isOwnerLive("anyone"), true);
  const a = await generateIdentity();
  const l = await signedLedger(new TestClock());
  await feed(l, await heartbeat(a));
  assert.equal(l.isOwnerLive(a.peerId), true);
  assert.equal(l.isOwnerLive("ghost"), false);
  await off.stop();
  await l.stop();
});

Deno.test("a stale heartbeat (absolute expiry) can be taken over and is reaped", async () => {
  const clock = new TestClock();
  const [a, r] = [await generateIdentity(), await generateIdentity()];
  const l = await signedLedger(clock, r);
  await feed(l, await heartbeat(a));
  clock.ms += 120_000;
  await l.reap();
  assert.equal(l.getKey("healthcheck", a.peerId), undefined);
  await l.stop();
});

Deno.test("equal versions resolve by owner then signature, the same on every node", async () => {
  const l = await signedLedger(new TestClock());
  const a = await generateIdentity();
  const e1 = await signed(a, "machines", IP, machine(a.peerId, "x"), 7n);
  const e2 = await signed(a, "machines", IP, machine(a.peerId, "y"), 7n);
  const [lo, hi] = compare(e1.sig!, e2.sig!) < 0 ? [e1, e2] : [e2, e1];
  await feed(l, storage({ machines: { [IP]: hi } }));
  await feed(l, storage({ machines: { [IP]: lo } }));
  assert.equal(l.getKey("machines", IP), hi.value);
  assert.equal(l.counters.rejectedEntries.tie_break_lost, 1);
  const l2 = await signedLedger(new TestClock());
  await feed(l2, storage({ machines: { [IP]: lo } }));
  await feed(l2, storage({ machines: { [IP]: hi } }));
  assert.equal(l2.getKey("machines", IP), hi.value);
  await l.stop();
  await l2.stop();
});

function compare(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

Deno.test("a signed write to an owned bucket needs the value to name the signer", async () => {
  const l = await signedLedger(new TestClock());
  const [a, b] = [await generateIdentity(), await generateIdentity()];
  await feed(
    l,
    storage({ machines: { [IP]: await signed(a, "machines", IP, machine(b.peerId, IP), 1n) } }),
  );
  assert.equal(l.getKey("machines", IP), undefined);
  assert.equal(l.counters.rejectedEntries.owner_mismatch, 1);
  await l.stop();
});

Deno.test("tombstones need an existing key and a higher version", async () => {
  const l = await signedLedger(new TestClock());
  const a = await generateIdentity();
  await feed(l, storage({ machines: { [IP]: await tombstone(a, "machines", IP, 5n) } }));
  assert.equal(l.counters.rejectedEntries.tombstone_unknown_key, 1);
  await feed(
    l,
    storage({ machines: { [IP]: await signed(a, "machines", IP, machine(a.peerId, IP), 5n) } }),
  );
  await feed(l, storage({ machines: { [IP]: await tombstone(a, "machines", IP, 5n) } }));
  assert.equal(l.counters.rejectedEntries.tombstone_stale, 1);
  assert.ok(l.getKey("machines", IP));
  await feed(l, storage({ machines: { [IP]: await tombstone(a, "machines", IP, 6n) } }));
  await feed(
    l,
    storage({ machines: { [IP]: await signed(a, "machines", IP, machine(a.peerId, IP), 6n) } }),
  );
  assert.equal(l.counters.rejectedEntries.reclaim_stale, 1);
  assert.equal(l.getKey("machines", IP), undefined);
  await l.stop();
});
