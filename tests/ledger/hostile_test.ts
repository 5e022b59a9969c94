/**
 * A member's crafted ledger messages: entries from the future, forged signatures, zip bombs,
 * floods, oversized ledgers and quotas. Each test feeds a real ledger through its wire path.
 */
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { nextBlock } from "../../lib/ledger/block.ts";
import { type Entry, UINT64_MAX } from "../../lib/ledger/entry.ts";
import { createLedger } from "../../lib/ledger/ledger.ts";
import { LedgerLimitError } from "../../lib/ledger/limits.ts";
import { decodeMessage, encodeBlockMessage } from "../../lib/ledger/wire.ts";
import { createLogger, type LogRecord } from "../../lib/util/logger.ts";
import { formatRfc3339Seconds } from "../../lib/util/gotime.ts";
import { verifyPeerSignature } from "../../lib/crypto/identity.ts";
import {
  feed,
  generateIdentity,
  JAN1_MS,
  signed,
  signedLedger,
  storage,
  TestClock,
} from "./helpers.ts";

const MINUTE = 60_000;

Deno.test("a heartbeat dated 2100 is refused and does not make its node available", async () => {
  const clock = new TestClock();
  const l = await signedLedger(clock);
  const peer = await generateIdentity();
  const future = Date.UTC(2100, 0, 1);
  const beat = await signed(peer, "healthcheck", peer.peerId, formatRfc3339Seconds(future), 1n);
  await feed(l, storage({ healthcheck: { [peer.peerId]: beat } }));
  assert.equal(l.getKey("healthcheck", peer.peerId), undefined);
  assert.equal(l.counters.rejectedEntries.future_timestamp, 1);
  assert.deepEqual(l.availableNodes(900_000), []);
  // One minute ahead is clock skew, not an attack: taken.
  const near = await signed(
    peer,
    "healthcheck",
    peer.peerId,
    formatRfc3339Seconds(JAN1_MS + MINUTE),
    2n,
  );
  await feed(l, storage({ healthcheck: { [peer.peerId]: near } }));
  assert.deepEqual(l.availableNodes(900_000), [peer.peerId]);
  await l.stop();
});

Deno.test("an UpdatedAt hours ahead and a Version of 2^64-1 are refused; the key stays writable", async () => {
  const clock = new TestClock();
  const l = await signedLedger(clock);
  const peer = await generateIdentity();
  const jan1Ns = BigInt(JAN1_MS) * 1_000_000n;
  const locked = await signed(peer, "notes", "k", "lock", UINT64_MAX);
  await feed(l, storage({ notes: { k: locked } }));
  assert.equal(l.getKey("notes", "k"), undefined);
  assert.equal(l.counters.rejectedEntries.future_version, 1);
  const late = await signed(peer, "notes", "k2", "x", jan1Ns, JAN1_MS + 3 * 3_600_000);
  await feed(l, storage({ notes: { k2: late } }));
  assert.equal(l.counters.rejectedEntries.future_timestamp, 1);
  // An honest write of the same key still goes in.
  const honest = await signed(peer, "notes", "k", "fine", jan1Ns);
  await feed(l, storage({ notes: { k: honest } }));
  assert.equal(l.getKey("notes", "k"), '"fine"');
  await l.stop();
});

/** `n` entries of `owner` whose signatures are garbage. */
async function forged(owner: string, n: number, prefix: string): Promise<Map<string, Entry>> {
  const id = await generateIdentity();
  const template = await signed(id, "notes", "t", "v", BigInt(JAN1_MS) * 1_000_000n);
  const out = new Map<string, Entry>();
  for (let i = 0; i < n; i++) {
    const sig = new Uint8Array(64);
    new DataView(sig.buffer).setUint32(0, i);
    out.set(`${prefix}${i}`, { ...template, owner, value: `"v${i}"`, sig });
  }
  return out;
}

Deno.test("each forged entry costs one signature check, however often it is re-sent", async () => {
  const clock = new TestClock();
  let verified = 0;
  const l = await signedLedger(clock, undefined, {
    verify: (owner, data, sig) => {
      verified++;
      return verifyPeerSignature(owner, data, sig);
    },
  });
  const peer = await generateIdentity();
  const bad = await forged(peer.peerId, 100, "k");
  for (let round = 0; round < 3; round++) await feed(l, new Map([["notes", bad]]));
  assert.equal(verified, 100);
  assert.deepEqual(l.counters.signatures, { checked: 100, cached: 200, skipped: 0 });
  assert.equal(l.counters.rejectedEntries.signature_invalid, 300);
  await l.stop();
});

Deno.test("past 256 failed checks, a message's other entries are refused unchecked", async () => {
  const clock = new TestClock();
  const l = await signedLedger(clock);
  const peer = await generateIdentity();
  await feed(l, new Map([["notes", await forged(peer.peerId, 2000, "k")]]));
  // Checks already running (64 at once) finish.
  const { checked, skipped } = l.counters.signatures;
  assert.ok(checked >= 256 && checked < 256 + 64, `${checked} checks`);
  assert.equal(skipped, 2000 - checked);
  assert.equal(l.counters.rejectedEntries.signature_invalid, 2000);
  assert.equal(l.currentStorage().get("notes")?.size ?? 0, 0);
  await l.stop();
});

Deno.test("15 000 forged entries in 30 messages from one peer: at most 10 WARN lines a minute", async () => {
  const clock = new TestClock();
  const records: LogRecord[] = [];
  const logger = createLogger({ level: "debug", sink: (r) => records.push(r) });
  const l = await signedLedger(clock, undefined, { logger });
  const peer = await generateIdentity();
  for (let m = 0; m < 30; m++) {
    const block = await nextBlock(
      l.lastBlock(),
      new Map([["notes", await forged(peer.peerId, 500, `m${m}-`)]]),
      BigInt(JAN1_MS) * 1_000_000n,
    );
    await l.receive(await encodeBlockMessage(block), peer.peerId);
    clock.ms += 1000;
  }
  const warns = records.filter((r) => r.level === "warn");
  assert.equal(warns.length, 10);
  assert.equal(warns[0].fields?.peer, peer.peerId);
  assert.equal(warns[0].fields?.refused, 500);
  assert.equal(l.counters.rejectedEntries.signature_invalid, 15_000);
  // The next minute, the next line says how many were held back.
  clock.ms += MINUTE;
  const block = await nextBlock(
    l.lastBlock(),
    new Map([["notes", await forged(peer.peerId, 5, "late")]]),
    BigInt(JAN1_MS) * 1_000_000n,
  );
  await l.receive(await encodeBlockMessage(block), peer.peerId);
  const last = records.filter((r) => r.level === "warn").at(-1)!;
  assert.equal(last.fields?.linesSuppressed, 20);
  await l.stop();
});

Deno.test("received messages are handled one at a time from a bounded queue, drops counted", async () => {
  const l = await createLedger({ now: () => JAN1_MS });
  const bomb = gzipSync(new Uint8Array(60 << 20), { level: 9 });
  let inside = 0;
  let most = 0;
  const seen: string[] = [];
  l.addEventListener("rejected", (e) => {
    seen.push(e.detail.reason);
  });
  const receive = l.receive.bind(l);
  // The queue calls `receive` at the time of handling: watch how many run at once.
  l.receive = async (bytes, from) => {
    inside++;
    most = Math.max(most, inside);
    try {
      return await receive(bytes, from);
    } finally {
      inside--;
    }
  };
  let queued = 0;
  for (let i = 0; i < 16; i++) if (l.enqueue(bomb, "peerA")) queued++;
  assert.equal(queued, 9, "one handled and 8 waiting per peer");
  assert.equal(l.counters.rejectedMessages.peer_queue_full, 7);
  assert.equal(l.enqueue(bomb, "peerB"), true, "another peer still gets in");
  while (seen.length < 10) await new Promise((r) => setTimeout(r, 20));
  assert.equal(most, 1, "one at a time");
  assert.deepEqual(seen, Array(10).fill("inflated_too_large"));
  await l.stop();
});

Deno.test("a zip bomb stops at the inflation cap; a big honest block inflates past the floor", async () => {
  const bomb = gzipSync(new Uint8Array(60 << 20), { level: 9 });
  await assert.rejects(decodeMessage(bomb), /inflates past 4194304 bytes/);
  // ~1 MiB compressed inflating to ~12 MiB: under 32 × its size.
  const values: string[] = [];
  const random = new Uint8Array(3 << 18);
  for (let at = 0; at < random.length; at += 65536) {
    crypto.getRandomValues(random.subarray(at, at + 65536));
  }
  for (let i = 0; i < random.length; i += 64) {
    const hex = [...random.subarray(i, i + 64)].map((b) => b.toString(16).padStart(2, "0"))
      .join("");
    values.push(`"k${i}":{"Value":"\\"${hex.repeat(12)}\\""}`);
  }
  const text = `{"Index":1,"Storage":{"notes":{${values.join(",")}}}}`;
  const gz = gzipSync(new TextEncoder().encode(text));
  assert.ok(text.length > 8 << 20 && text.length < 32 * gz.length, `${text.length} / ${gz.length}`);
  const msg = await decodeMessage(gz);
  assert.equal(msg.kind, "block");
  if (msg.kind === "block") assert.equal(msg.block.storage.get("notes")!.size, values.length);
});

Deno.test("10 000 writes in a burst make at most one broadcast a second, the last carrying the final state", async () => {
  const sent: Uint8Array[] = [];
  const id = await generateIdentity();
  const l = await createLedger({ identity: id, mode: "enforce", send: (b) => void sent.push(b) });
  const start = performance.now();
  for (let i = 0; i < 10_000; i++) await l.add("notes", { counter: i });
  const seconds = (performance.now() - start) / 1000;
  assert.ok(
    sent.length <= Math.ceil(seconds) + 1,
    `${sent.length} broadcasts in ${seconds.toFixed(1)} s`,
  );
  assert.ok(l.counters.broadcastsCoalesced >= 10_000 - sent.length - 1);
  await l.stop();
  const last = await decodeMessage(sent.at(-1)!);
  assert.equal(last.kind, "block");
  if (last.kind === "block") {
    assert.equal(last.block.storage.get("notes")!.get("counter")!.value, "9999");
  }
});

Deno.test("a write the gossip could not carry is refused, never sent to be dropped", async () => {
  const sent: Uint8Array[] = [];
  const maxBroadcastBytes = 64 << 10;
  const l = await createLedger({
    identity: await generateIdentity(),
    mode: "enforce",
    send: (b) => void sent.push(b),
    sizeLimits: { maxBroadcastBytes },
    broadcastIntervalMs: 0,
  });
  const random = () => {
    const b = new Uint8Array(1024);
    crypto.getRandomValues(b);
    return btoa(String.fromCharCode(...b));
  };
  let refused: unknown;
  let written = 0;
  for (let i = 0; i < 200 && !refused; i++) {
    try {
      await l.add("files", { [`f${i}`]: random() });
      written++;
    } catch (e) {
      refused = e;
    }
  }
  assert.ok(refused instanceof LedgerLimitError, String(refused));
  assert.equal(refused.code, "LEDGER_TOO_LARGE");
  assert.ok(written > 20, `${written} writes before the limit`);
  assert.ok(sent.every((b) => b.length <= maxBroadcastBytes));
  assert.equal(l.currentStorage().get("files")!.size, written);
  // Deleting is always allowed.
  assert.equal(await l.delete("files", "f0"), true);
  await l.stop();
});

Deno.test("owner quotas: our own writes are refused past it, a peer's entries past it are not merged", async () => {
  const clock = new TestClock();
  const quota = 8 << 10;
  const l = await signedLedger(clock, undefined, { sizeLimits: { ownerQuotaBytes: quota } });
  await l.add("notes", { a: "x".repeat(4000) });
  await assert.rejects(
    l.add("notes", { b: "x".repeat(6000) }),
    (e) => e instanceof LedgerLimitError && e.code === "LEDGER_QUOTA_EXCEEDED",
  );
  // Shrinking is fine.
  await l.add("notes", { a: "small" });
  const peer = await generateIdentity();
  const jan1Ns = BigInt(JAN1_MS) * 1_000_000n;
  const small = await signed(peer, "notes", "p1", "y".repeat(3000), jan1Ns);
  await feed(l, storage({ notes: { p1: small } }));
  assert.equal(l.currentStorage().get("notes")!.get("p1")?.owner, peer.peerId);
  const big = await signed(peer, "notes", "p2", "y".repeat(9000), jan1Ns);
  await feed(l, storage({ notes: { p2: big } }));
  assert.equal(l.getKey("notes", "p2"), undefined);
  assert.equal(l.counters.rejectedEntries.quota_exceeded, 1);
  await l.stop();
});

Deno.test("after a large write, later writes go out as deltas that signed peers merge and off peers ignore", async () => {
  const sent: Uint8Array[] = [];
  const a = await createLedger({
    identity: await generateIdentity(),
    mode: "enforce",
    send: (m) => void sent.push(m),
    broadcastIntervalMs: 0,
  });
  const b = await createLedger({ identity: await generateIdentity(), mode: "enforce" });
  const off = await createLedger({});
  const big: Record<string, string> = {};
  for (let i = 0; i < 50; i++) big[`k${i}`] = "x".repeat(10_000);
  await a.add("notes", big);
  await a.add("notes", { small: 1 });
  await a.add("notes", { small: 2 });
  for (let i = 0; i < 100 && sent.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(sent.length, 3);
  const kinds = await Promise.all(sent.map(async (m) => (await decodeMessage(m)).kind));
  assert.deepEqual(kinds, ["block", "delta", "delta"]);
  assert.ok(sent[2].length < sent[0].length / 10, `${sent[2].length} vs ${sent[0].length}`);
  assert.equal(a.counters.deltasSent, 2);
  for (const m of sent) await b.receive(m);
  assert.equal(b.getKey("notes", "small"), "2");
  assert.equal(b.getKey("notes", "k49"), a.getKey("notes", "k49"));
  assert.equal(b.counters.deltasReceived, 2);
  assert.equal(b.lastBlock().hash, a.lastBlock().hash, "a delta names its head: heads converge");
  // An off-mode ledger adopts whole blocks only: a delta (index 0, no hash) never replaces it.
  await off.receive(sent[0]);
  await off.receive(sent[2]);
  assert.equal(off.getKey("notes", "k0"), a.getKey("notes", "k0"));
  assert.equal(off.getKey("notes", "small"), undefined);
  for (const l of [a, b, off]) await l.stop();
});
