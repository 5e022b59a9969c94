import assert from "node:assert/strict";
import { generateIdentity } from "../../lib/crypto/identity.ts";
import type { Block } from "../../lib/ledger/block.ts";
import { verifyEntry } from "../../lib/ledger/entry.ts";
import {
  type ChangeDetail,
  createLedger,
  type Ledger,
  versionAfter,
} from "../../lib/ledger/ledger.ts";
import type { LedgerStore, StoreLoad } from "../../lib/ledger/store.ts";
import { decodeMessage, encodeBlockMessage } from "../../lib/ledger/wire.ts";
import { msToNs } from "../../lib/util/gotime.ts";
import { JAN1_MS, signedLedger, TestClock } from "./helpers.ts";

const JAN1_NS = msToNs(JAN1_MS);

Deno.test("versionAfter is max(prev + 1, now in ns) with Go's uint64 wrap", () => {
  assert.equal(versionAfter(0n, JAN1_NS), JAN1_NS);
  assert.equal(versionAfter(JAN1_NS + 5n, JAN1_NS), JAN1_NS + 6n);
  assert.equal(versionAfter((1n << 64n) - 1n, 10n), 10n);
});

Deno.test("off mode writes unsigned entries and removes keys on delete (bucket stays, §17.4)", async () => {
  const sent: Uint8Array[] = [];
  const l = await createLedger({
    now: () => JAN1_MS,
    send: (b) => void sent.push(b),
    broadcastIntervalMs: 0,
  });
  assert.equal(await l.add("nodes", { a: "1" }), true);
  const e = l.currentStorage().get("nodes")!.get("a")!;
  assert.deepEqual(e, {
    value: '"1"',
    owner: "",
    version: 0n,
    updatedAt: 0n,
    deleted: false,
    sig: null,
  });
  assert.equal(l.index(), 1);
  assert.equal(l.lastBlock().timestamp, "2026-01-01 00:00:00 +0000 UTC");
  assert.equal(await l.add("nodes", { a: "1" }), false, "unchanged value, no new block");
  assert.equal(l.index(), 1);
  assert.equal(await l.delete("nodes", "a"), true);
  assert.equal(l.currentStorage().get("nodes")?.size, 0);
  assert.equal(l.currentData().has("nodes"), false);
  assert.equal(await l.deleteBucket("nodes"), true);
  assert.equal(l.currentStorage().has("nodes"), false);
  assert.equal(await l.deleteBucket("nodes"), false);
  await l.stop();
  assert.equal(sent.length, 3, "every local change is broadcast");
  const msg = await decodeMessage(sent[0]);
  assert.equal(msg.kind, "block");
});

Deno.test("signed writes carry owner, version, updatedAt and a valid signature; re-adding the same value is a no-op", async () => {
  const id = await generateIdentity();
  const clock = new TestClock();
  const l = await signedLedger(clock, id);
  await l.add("machines", { "10.1.0.1": { PeerID: id.peerId, Address: "10.1.0.1" } });
  const e = l.currentStorage().get("machines")!.get("10.1.0.1")!;
  assert.equal(e.owner, id.peerId);
  assert.equal(e.version, JAN1_NS);
  assert.equal(e.updatedAt, BigInt(JAN1_MS / 1000));
  assert.equal(await verifyEntry("machines", "10.1.0.1", e), true);
  const idx = l.index();
  clock.ms += 1000;
  assert.equal(
    await l.add("machines", { "10.1.0.1": { PeerID: id.peerId, Address: "10.1.0.1" } }),
    false,
  );
  assert.equal(l.index(), idx);
  clock.ms -= 5000;
  await l.add("machines", { "10.1.0.1": { PeerID: id.peerId, Address: "changed" } });
  assert.equal(
    l.currentStorage().get("machines")!.get("10.1.0.1")!.version,
    JAN1_NS + 1n,
    "prev + 1 beats a clock that went back",
  );
  await l.stop();
});

Deno.test("signed delete writes a signed tombstone with an empty value; readers hide it", async () => {
  const id = await generateIdentity();
  const l = await signedLedger(new TestClock(), id);
  await l.add("services", { web: { PeerID: id.peerId, Name: "web" } });
  assert.equal(await l.delete("services", "web"), true);
  const t = l.currentStorage().get("services")!.get("web")!;
  assert.equal(t.deleted, true);
  assert.equal(t.value, "");
  assert.equal(t.version, JAN1_NS + 1n);
  assert.equal(await verifyEntry("services", "web", t), true);
  assert.equal(l.getKey("services", "web"), undefined);
  assert.equal(await l.delete("services", "web"), false, "already deleted");
  assert.equal(await l.delete("services", "nothing"), false);
  await l.add("services", { web: { PeerID: id.peerId, Name: "web" } });
  assert.ok(l.getKey("services", "web"), "a tombstoned key can be written again");
  await l.stop();
});

Deno.test("change events report local writes with the new block", async () => {
  const l = await createLedger({ now: () => JAN1_MS });
  const seen: ChangeDetail[] = [];
  l.addEventListener("change", (e) => seen.push(e.detail));
  await l.add("b", { k: 1 });
  assert.equal(seen.length, 1);
  assert.equal(seen[0].cause, "local");
  assert.equal(seen[0].block, l.lastBlock());
  await l.stop();
});

Deno.test("addRaw stores JSON text verbatim and refuses non-JSON", async () => {
  const l = await createLedger();
  await l.addRaw("dns", "x.", '{"1":"10.0.0.1" }');
  assert.equal(l.getKey("dns", "x."), '{"1":"10.0.0.1" }');
  await assert.rejects(() => l.addRaw("dns", "y.", "not json"), { code: "VALUE_INVALID" });
  await l.stop();
});

class SlowStore implements LedgerStore {
  saved: Block[] = [];
  release?: () => void;
  load(): Promise<StoreLoad> {
    return Promise.resolve({});
  }
  async save(block: Block): Promise<void> {
    if (block.index > 0) await new Promise<void>((r) => (this.release = r));
    this.saved.push(block);
  }
  close() {
    return Promise.resolve();
  }
}

Deno.test("a write resolves only after its block is persisted", async () => {
  const store = new SlowStore();
  const l = await createLedger({ store });
  let done = false;
  const p = l.add("b", { k: "v" }).then(() => (done = true));
  while (!store.release) await new Promise((r) => setTimeout(r, 1));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(done, false);
  store.release();
  await p;
  assert.equal(store.saved.at(-1)?.index, 1);
  await l.stop();
});

Deno.test("a failing store rejects the write and is counted", async () => {
  const store: LedgerStore = {
    load: () => Promise.resolve({}),
    save: (b) => b.index === 0 ? Promise.resolve() : Promise.reject(new Error("disk full")),
    close: () => Promise.resolve(),
  };
  const l = await createLedger({ store });
  await assert.rejects(() => l.add("b", { k: "v" }), /disk full/);
  assert.equal(l.counters.persistFailures, 1);
  await l.stop();
});

Deno.test("signed modes need an identity", async () => {
  await assert.rejects(() => createLedger({ mode: "enforce" }), { code: "LEDGER_SIGNER_MISSING" });
});

// ---- legacy (off) merge, Go ledger_test.go ----------------------------------------------

async function exchange(to: Ledger, from: Ledger) {
  await to.receive(await encodeBlockMessage(from.lastBlock()));
}

async function announce(l: Ledger, key: string) {
  if (l.getKey("nodes", key) === '"1"') return;
  await l.add("nodes", { [key]: "1" });
}

Deno.test("off mode converges an equal-index split-brain to the union in 5 rounds", async () => {
  let t = JAN1_MS;
  const a = await createLedger({ now: () => (t += 1) });
  const b = await createLedger({ now: () => (t += 1) });
  await a.add("nodes", { a: "1" });
  await b.add("nodes", { b: "1" });
  assert.equal(a.index(), b.index());
  assert.notEqual(a.lastBlock().hash, b.lastBlock().hash);
  for (let i = 0; i < 5; i++) {
    await exchange(a, b);
    await exchange(b, a);
    await announce(a, "a");
    await announce(b, "b");
  }
  await exchange(a, b);
  await exchange(b, a);
  for (const l of [a, b]) {
    assert.ok(l.getKey("nodes", "a") && l.getKey("nodes", "b"));
  }
  assert.equal(a.lastBlock().hash, b.lastBlock().hash);
  await a.stop();
  await b.stop();
});

Deno.test("off mode adopts a strictly higher-index block regardless of hash order (and writes its own dropped entry again on top)", async () => {
  const a = await createLedger();
  const b = await createLedger();
  await a.add("nodes", { a: "1" });
  await b.add("nodes", { b: "1" });
  await b.add("nodes", { b: "2" });
  await exchange(a, b);
  assert.equal(a.lastBlock().prevHash, b.lastBlock().hash);
  assert.equal(a.getKey("nodes", "b"), '"2"');
  assert.equal(a.getKey("nodes", "a"), '"1"');
  await exchange(b, a);
  assert.equal(a.lastBlock().hash, b.lastBlock().hash);
  await a.stop();
  await b.stop();
});

Deno.test("off mode ignores genesis and lower blocks", async () => {
  const a = await createLedger();
  const b = await createLedger();
  await a.add("nodes", { a: "1" });
  const before = a.lastBlock();
  await exchange(a, b);
  assert.equal(a.lastBlock(), before);
  await a.stop();
  await b.stop();
});

// ---- timers -------------------------------------------------------------------------------

Deno.test("announceUpdate re-adds a value that went missing; stop() clears every timer", async () => {
  const l = await createLedger();
  l.announceUpdate(20, "nodes", "me", "1");
  await waitFor(() => l.getKey("nodes", "me") === '"1"');
  await l.delete("nodes", "me");
  await waitFor(() => l.getKey("nodes", "me") === '"1"');
  l.persist(20, 10_000, "nodes", "other", { x: 1 });
  l.announceDeleteBucketKey(20, 10_000, "nodes", "gone");
  l.startSync(20);
  await l.stop();
  assert.throws(() => l.announce(10, () => {}), { code: "LEDGER_STOPPED" });
  await assert.rejects(() => l.add("x", { y: 1 }), { code: "LEDGER_STOPPED" });
});

Deno.test("persist stops once the value is stored", async () => {
  const l = await createLedger();
  let writes = 0;
  l.addEventListener("change", () => writes++);
  const job = l.persist(10, 5_000, "nodes", "k", "v");
  await waitFor(() => l.getKey("nodes", "k") === '"v"');
  await new Promise((r) => setTimeout(r, 60));
  await l.delete("nodes", "k");
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(l.getKey("nodes", "k"), undefined, "no longer re-announced");
  assert.equal(writes, 2);
  job.stop();
  await l.stop();
});

Deno.test("a newer write of a key stops the older persist job: the old value never comes back", async () => {
  const l = await createLedger();
  let writes = 0;
  l.addEventListener("change", () => writes++);
  // Two persists of one key in a row (two API requests): the first job must not write its
  // value again over the second's.
  l.persist(5, 5_000, "dns", "db", { A: "1" });
  l.persist(5, 5_000, "dns", "db", { TXT: "2" });
  await waitFor(() => l.getKey("dns", "db") === '{"TXT":"2"}');
  const settled = writes;
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(l.getKey("dns", "db"), '{"TXT":"2"}');
  assert.equal(writes, settled, "no write after the newest value is stored");
  // A direct write (the API's PUT) supersedes a pending persist the same way.
  l.persist(5, 5_000, "dns", "web", "old");
  l.supersede("dns", "web");
  await l.add("dns", { web: "new" });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(l.getKey("dns", "web"), '"new"');
  await l.stop();
});

Deno.test("announceDeleteBucket deletes until the bucket is gone, then stops", async () => {
  const id = await generateIdentity();
  const l = await signedLedger(new TestClock(), id);
  await l.add("tmp", { a: 1, b: 2 });
  l.announceDeleteBucket(10, 5_000, "tmp");
  await waitFor(() => !l.currentData().has("tmp"));
  await l.stop();
});

Deno.test("heartbeat and scrubIfLeader follow the alive service", async () => {
  const id = await generateIdentity();
  const clock = new TestClock();
  const l = await signedLedger(clock, id);
  await l.heartbeat();
  assert.equal(l.getKey("healthcheck", id.peerId), '"2026-01-01T00:00:00Z"');
  assert.deepEqual(l.availableNodes(900_000), [id.peerId]);
  assert.equal(l.isOwnerLive(id.peerId), true);
  assert.equal(await l.scrubIfLeader(900_000), true);
  clock.ms += 3_600_000;
  assert.deepEqual(l.availableNodes(900_000), []);
  assert.equal(await l.scrubIfLeader(900_000), false);
  await l.stop();
  const off = await createLedger({ identity: id, now: clock.now });
  await off.heartbeat();
  assert.equal(await off.scrubIfLeader(900_000), true);
  assert.equal(off.currentStorage().has("healthcheck"), false, "off mode deletes the bucket");
  await off.stop();
});

async function waitFor(cond: () => boolean, ms = 3000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("off mode: a write dropped by a fork (a peer's better block without it) is written again on top; one the peer overwrote is not", async () => {
  const sentA: Uint8Array[] = [];
  const sentB: Uint8Array[] = [];
  let now = JAN1_MS;
  const a = await createLedger({
    now: () => now,
    send: (b) => void sentA.push(b),
    broadcastIntervalMs: 0,
  });
  const b = await createLedger({
    now: () => now,
    send: (x) => void sentB.push(x),
    broadcastIntervalMs: 0,
  });
  try {
    await a.add("shared", { base: "0", mine: "old" });
    await b.receive(await encodeBlockMessage(a.lastBlock()));
    assert.equal(b.lastBlock().hash, a.lastBlock().hash);
    // Both write at once: A one key, B two blocks (so B's chain is longer and wins).
    now += 1000;
    await a.add("shared", { mine: "new" });
    await a.add("auth", { key: "k1" });
    await b.add("other", { x: "1" });
    await b.add("other", { y: "2" });
    await b.add("other", { z: "3" });
    await a.receive(await encodeBlockMessage(b.lastBlock()));
    assert.equal(a.getKey("other", "x"), '"1"', "B's better block was adopted");
    assert.equal(a.getKey("shared", "mine"), '"new"', "our dropped update came back");
    assert.equal(a.getKey("auth", "key"), '"k1"', "our dropped new key came back");
    assert.equal(a.counters.ownWritesRestored, 2);
    assert.ok(a.lastBlock().index > b.lastBlock().index, "on top of B's chain");
    // B adopts A's longer chain: both hold everything.
    await b.receive(await encodeBlockMessage(a.lastBlock()));
    assert.equal(b.lastBlock().hash, a.lastBlock().hash);
    // A later overwrite by the peer is left alone.
    now += 1000;
    await a.add("shared", { mine: "mine again" });
    await b.add("shared", { mine: "theirs" });
    await b.add("other", { w: "4" });
    await a.receive(await encodeBlockMessage(b.lastBlock()));
    assert.equal(a.getKey("shared", "mine"), '"theirs"');
    assert.equal(a.counters.ownWritesRestored, 2);
  } finally {
    await a.stop();
    await b.stop();
  }
});
