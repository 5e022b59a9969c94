import assert from "node:assert/strict";
import { generateIdentity, type Identity } from "../../lib/crypto/identity.ts";
import { nextBlock } from "../../lib/ledger/block.ts";
import { createLedger, type Ledger, type LedgerOptions } from "../../lib/ledger/ledger.ts";
import { encodeBlockMessage } from "../../lib/ledger/wire.ts";
import { msToNs } from "../../lib/util/gotime.ts";
import { signed, storage, TestClock } from "./helpers.ts";

const REPLY_DELAY_MS = 5;

/** An in-memory stand-in for gossip: every message reaches every other attached ledger. */
class Network {
  readonly nodes: Ledger[] = [];
  readonly bytesSent: number[] = [];
  /** Nodes that currently receive nothing (a partition). */
  readonly offline = new Set<Ledger>();
  #inflight = 0;
  #activity = 0;

  async join(options: LedgerOptions): Promise<Ledger> {
    const index = this.nodes.length;
    this.bytesSent.push(0);
    const ledger = await createLedger({
      replyDelayMs: REPLY_DELAY_MS,
      // Replies paced as real nodes pace them, scaled like the reply delay (2 s : 500 ms).
      replyIntervalMs: REPLY_DELAY_MS * 4,
      ...options,
      send: (bytes) => this.broadcast(index, bytes),
    });
    this.nodes.push(ledger);
    return ledger;
  }

  broadcast(from: number, bytes: Uint8Array): void {
    this.bytesSent[from] += bytes.length;
    this.#activity++;
    this.nodes.forEach((to, i) => {
      if (i === from || this.offline.has(to)) return;
      this.#inflight++;
      setTimeout(() => {
        to.receive(bytes).finally(() => this.#inflight--);
      }, 0);
    });
  }

  /** Resolves once no message has been in flight for a few reply windows. */
  async settle(): Promise<void> {
    let quietRounds = 0;
    const deadline = Date.now() + 20_000;
    while (quietRounds < 3) {
      if (Date.now() > deadline) {
        throw new Error(
          `network never settled: ${this.#inflight} in flight, counters ${
            JSON.stringify(this.nodes.map((n) => n.counters))
          }`,
        );
      }
      const before = this.#activity;
      await new Promise((r) => setTimeout(r, REPLY_DELAY_MS * 4));
      quietRounds = this.#inflight === 0 && this.#activity === before ? quietRounds + 1 : 0;
    }
  }

  async tickAll(): Promise<void> {
    for (const n of this.nodes) await n.syncTick();
    await this.settle();
  }

  async stop(): Promise<void> {
    for (const n of this.nodes) await n.stop();
    while (this.#inflight > 0) await new Promise((r) => setTimeout(r, 5));
  }
}

function heads(nodes: Ledger[]): Set<string> {
  return new Set(nodes.map((n) => n.lastBlock().hash));
}

async function contents(nodes: Ledger[]): Promise<Set<string>> {
  return new Set(await Promise.all(nodes.map((n) => n.contentHash())));
}

Deno.test("enforce: five ledgers converge, a late joiner catches up, forged entries never take hold, idle gossip is quiet", async () => {
  const clock = new TestClock();
  const net = new Network();
  const ids: Identity[] = [];
  for (let i = 0; i < 5; i++) {
    ids.push(await generateIdentity());
    await net.join({ identity: ids[i], mode: "enforce", ownershipTtlMs: 60_000, now: clock.now });
  }
  // A write on each: heartbeat plus 20 services, 100 entries in all.
  await Promise.all(net.nodes.map(async (n, i) => {
    await n.heartbeat();
    for (let j = 0; j < 20; j++) {
      await n.add("services", {
        [`svc-${i}-${j}`]: { PeerID: ids[i].peerId, Name: `svc-${i}-${j}` },
      });
    }
  }));
  await net.settle();
  await net.tickAll();
  assert.equal((await contents(net.nodes)).size, 1, "all ledgers hold the same entries");
  for (let round = 0; round < 3 && heads(net.nodes).size > 1; round++) await net.tickAll();
  assert.equal(heads(net.nodes).size, 1, "and the same last block");
  for (const n of net.nodes) {
    assert.equal(n.currentData().get("services")?.size, 100);
    assert.equal(n.availableNodes(60_000).length, 5);
  }

  // Late joiner: starts from genesis, announces its digest, gets the state.
  const late = await net.join({
    identity: await generateIdentity(),
    mode: "enforce",
    ownershipTtlMs: 60_000,
    now: clock.now,
  });
  await late.syncTick();
  await net.settle();
  assert.equal(late.currentData().get("services")?.size, 100);
  assert.equal((await contents(net.nodes)).size, 1);
  for (let round = 0; round < 3 && heads(net.nodes).size > 1; round++) await net.tickAll();
  assert.equal(heads(net.nodes).size, 1, "the late joiner ends on the same last block");

  // Forgeries injected through one node: a key claimed in node 0's name but signed by the
  // attacker, a hijack of node 1's live key, and a signature transplanted onto another value.
  const attacker = await generateIdentity();
  const victimEntry = net.nodes[1].currentStorage().get("services")!.get("svc-1-0")!;
  const forged = storage({
    services: {
      "svc-new": {
        ...(await signed(
          attacker,
          "services",
          "svc-new",
          { PeerID: ids[0].peerId, Name: "x" },
          1n,
        )),
      },
      "svc-1-0": await signed(attacker, "services", "svc-1-0", {
        PeerID: attacker.peerId,
        Name: "mine",
      }, victimEntry.version + 1n),
      "svc-1-1": {
        ...victimEntry,
        value: JSON.stringify({ PeerID: ids[1].peerId, Name: "evil" }),
        version: victimEntry.version + 5n,
      },
    },
  });
  const forgedBlock = await nextBlock(net.nodes[2].lastBlock(), forged, msToNs(clock.ms));
  net.broadcast(2, await encodeBlockMessage(forgedBlock));
  await net.settle();
  await net.tickAll();
  for (const n of net.nodes) {
    const services = n.currentData().get("services")!;
    assert.equal(services.has("svc-new"), false);
    assert.equal(JSON.parse(services.get("svc-1-0")!).PeerID, ids[1].peerId);
    assert.equal(JSON.parse(services.get("svc-1-1")!).Name, "svc-1-1");
  }
  assert.ok(net.nodes[0].counters.rejectedEntries.owner_mismatch >= 1);
  assert.ok(net.nodes[0].counters.rejectedEntries.hijack >= 1);
  assert.ok(net.nodes[0].counters.rejectedEntries.signature_invalid >= 1);
  assert.equal((await contents(net.nodes)).size, 1);

  // Idle: ten sync rounds. Quiet gossip sends digests only; the full-block scheme (Go's) would
  // send every node's whole block every round.
  const before = [...net.bytesSent];
  const fullBefore = net.nodes.map((n) => n.counters.fullBlocksSent);
  const rounds = 10;
  for (let r = 0; r < rounds; r++) await net.tickAll();
  const quietBytes = net.bytesSent.reduce((sum, b, i) => sum + b - before[i], 0);
  let fullBytes = 0;
  for (const n of net.nodes) fullBytes += (await encodeBlockMessage(n.lastBlock())).length * rounds;
  const ratio = quietBytes / fullBytes;
  console.log(
    `idle gossip: ${quietBytes} B quiet vs ${fullBytes} B full-block over ${rounds} rounds × ${net.nodes.length} ` +
      `nodes (ratio 1/${Math.round(1 / ratio)})`,
  );
  assert.deepEqual(
    net.nodes.map((n) => n.counters.fullBlocksSent),
    fullBefore,
    "no full block while idle",
  );
  assert.ok(ratio <= 0.1, `ratio ${ratio}`);
  await net.stop();
});

Deno.test("enforce with real timers: startSync converges and stop() leaves nothing running", async () => {
  const clock = new TestClock();
  const net = new Network();
  for (let i = 0; i < 5; i++) {
    const id = await generateIdentity();
    const l = await net.join({
      identity: id,
      mode: "enforce",
      ownershipTtlMs: 60_000,
      now: clock.now,
    });
    await l.heartbeat();
    await l.add("nodes", { [`n${i}`]: i });
  }
  // Nodes joined one after the other: each missed the writes made before it joined.
  for (const n of net.nodes) n.startSync(20);
  const end = Date.now() + 5000;
  while ((await contents(net.nodes)).size > 1 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal((await contents(net.nodes)).size, 1);
  assert.equal(net.nodes[0].currentData().get("nodes")?.size, 5);
  await net.stop();
});

Deno.test("off mode: five ledgers re-announcing their keys converge to the same last hash; a late joiner too", async () => {
  const net = new Network();
  for (let i = 0; i < 5; i++) {
    const l = await net.join({ identity: await generateIdentity() });
    l.startSync(25);
    l.announceUpdate(25, "nodes", `n${i}`, "1");
  }
  const converged = () =>
    new Set(net.nodes.map((n) => n.lastBlock().hash)).size === 1 &&
    net.nodes.every((n) => n.currentData().get("nodes")?.size === net.nodes.length);
  let end = Date.now() + 8000;
  while (!converged() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  assert.ok(converged(), "ledgers did not converge");
  const late = await net.join({ identity: await generateIdentity() });
  late.startSync(25);
  late.announceUpdate(25, "nodes", "late", "1");
  end = Date.now() + 8000;
  while (!converged() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  assert.ok(converged(), "late joiner did not converge");
  await net.stop();
});

Deno.test("a node that does not speak digests (Go-like full blocks) still converges with quiet nodes", async () => {
  const clock = new TestClock();
  const net = new Network();
  const goLike = await net.join({
    identity: await generateIdentity(),
    mode: "enforce",
    now: clock.now,
    quiet: false,
  });
  for (let i = 0; i < 3; i++) {
    await net.join({ identity: await generateIdentity(), mode: "enforce", now: clock.now });
  }
  await net.settle();
  await goLike.add("nodes", { go: 1 });
  // The Go-like node misses the others' writes (partitioned while they are made).
  net.offline.add(goLike);
  for (const [i, n] of net.nodes.slice(1).entries()) await n.add("nodes", { [`deno${i}`]: i });
  await net.settle();
  net.offline.delete(goLike);
  // Its next full-block tick shows a differing state: a quiet node answers with the full block.
  await goLike.syncTick();
  await net.settle();
  assert.equal(goLike.currentData().get("nodes")?.size, 4);
  assert.equal((await contents(net.nodes)).size, 1);
  // Converged: its periodic full blocks no longer draw answers.
  const replies = net.nodes.reduce((s, n) => s + n.counters.repliesSent, 0);
  await net.tickAll();
  await net.tickAll();
  assert.equal(net.nodes.reduce((s, n) => s + n.counters.repliesSent, 0), replies);
  await net.stop();
});

Deno.test("two nodes writing one open-bucket key in the same instant end on the same value", async () => {
  for (let round = 0; round < 5; round++) {
    const net = new Network();
    try {
      const ids = await Promise.all([0, 1, 2].map(() => generateIdentity()));
      const nodes: Ledger[] = [];
      for (const identity of ids) nodes.push(await net.join({ identity, mode: "enforce" }));
      // In-process nodes share a clock: these writes often carry the same version.
      await Promise.all(
        [0, 1].map((i) => nodes[i].add("dhcp", new Map([["leader", ids[i].peerId]]))),
      );
      await net.settle();
      const values = new Set(nodes.map((n) => n.getKey("dhcp", "leader")));
      assert.equal(values.size, 1, `round ${round}: ${[...values].join(" vs ")}`);
    } finally {
      await net.stop();
    }
  }
});

Deno.test("a peer left on a lower head with the same entries is answered again after 2 s, 4 s, 8 s… up to a minute", async () => {
  const { FakeClock } = await import("../helpers/fake_clock.ts");
  const { encodeDigest } = await import("../../lib/ledger/wire.ts");
  const { DIVERGENCE_RETRY_FIRST_MS } = await import("../../lib/ledger/ledger.ts");
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const sentAt: number[] = [];
  const ledger = await createLedger({
    identity: await generateIdentity(),
    mode: "enforce",
    clock,
    replyDelayMs: 100,
    send: () => void sentAt.push(clock.now()),
  });
  await ledger.add("chaos", { k: "v" });
  await clock.advance(0);
  sentAt.length = 0;
  // The peer holds our entries on a lower head and never takes our block (its replies are
  // lost): it keeps sending the same digest every second.
  const digest = await encodeDigest({
    index: 0,
    hash: "0".repeat(64),
    contentHash: await ledger.contentHash(),
  });
  const t0 = clock.now();
  for (let s = 0; s < 130; s++) {
    await ledger.receive(digest);
    await clock.advance(1_000);
  }
  const at = sentAt.map((t) => (t - t0) / 1000);
  // Answers at about 0, 2, 6, 14, 30, 62, 122 s (waits 2, 4, 8, 16, 32, then 60 s).
  assert.equal(at.length, 7, `answers at ${at} s`);
  const gaps = at.slice(1).map((t, i) => t - at[i]);
  for (const [i, gap] of gaps.entries()) {
    const wait = Math.min(60, DIVERGENCE_RETRY_FIRST_MS / 1000 * 2 ** i);
    assert.ok(gap >= wait && gap <= wait + 1.5, `gap ${i}: ${gap} s (answers at ${at} s)`);
  }
  assert.equal(ledger.counters.repliesSent, 7);
  await ledger.stop();
  assert.equal(clock.pending, 0);
});

Deno.test("a ledger with the same entries takes a better head from a digest alone, no full block crossing", async () => {
  const { decodeMessage, encodeDigest } = await import("../../lib/ledger/wire.ts");
  const sent: Uint8Array[][] = [[], []];
  const make = (i: number) =>
    generateIdentity().then((identity) =>
      createLedger({ identity, mode: "enforce", send: (b) => void sent[i].push(b) })
    );
  const [a, b] = await Promise.all([make(0), make(1)]);
  try {
    await a.add("chaos", { k: "v" });
    await b.receive(await encodeBlockMessage(a.lastBlock()));
    assert.equal(b.lastBlock().hash, a.lastBlock().hash);
    // A moves to a better block with the same entries (as a merge elsewhere would).
    const better = await nextBlock(a.lastBlock(), a.lastBlock().storage, msToNs(Date.now()));
    await a.receive(await encodeBlockMessage(better));
    assert.equal(a.lastBlock().hash, better.hash);
    sent[0].length = 0;
    sent[1].length = 0;
    await a.syncTick();
    const [digest] = sent[0];
    assert.equal((await decodeMessage(digest)).kind, "digest");
    // A digest whose header does not hash to its hash over B's entries is not adopted.
    const forged = await encodeDigest({
      index: better.index,
      hash: better.hash,
      contentHash: await b.contentHash(),
      header: { timestamp: "forged", prevHash: better.prevHash },
    });
    await b.receive(forged);
    assert.notEqual(b.lastBlock().hash, better.hash);
    await b.receive(digest);
    assert.equal(b.lastBlock().hash, better.hash);
    assert.equal(b.counters.headsAdopted, 1);
    await new Promise((r) => setTimeout(r, 600));
    // B sent no full block: neither to answer the digest nor to ask for A's.
    assert.equal(b.counters.fullBlocksSent, 0);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});
