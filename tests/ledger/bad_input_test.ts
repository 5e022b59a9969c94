import assert from "node:assert/strict";
import { generateIdentity } from "../../lib/crypto/identity.ts";
import { checksum, encodeBlock, GENESIS_HASH, nextBlock } from "../../lib/ledger/block.ts";
import { encodeEntry } from "../../lib/ledger/entry.ts";
import {
  createLedger,
  type Ledger,
  type LedgerOptions,
  type RejectedDetail,
} from "../../lib/ledger/ledger.ts";
import { DIGEST_MARKER, encodeBlockMessage, gzip } from "../../lib/ledger/wire.ts";
import { msToNs } from "../../lib/util/gotime.ts";
import {
  feed,
  heartbeat,
  JAN1_MS,
  machine,
  signed,
  signedLedger,
  storage,
  TestClock,
  tombstone,
} from "./helpers.ts";

const enc = new TextEncoder();
const gz = (text: string) => gzip(enc.encode(text));

async function seeded(extra: Partial<LedgerOptions> = {}): Promise<Ledger> {
  const l = await createLedger({ now: () => JAN1_MS, ...extra });
  await l.add("nodes", { a: "1" });
  return l;
}

/** Feeds `bytes`, checks the message is rejected for `reason`, counted once, and nothing changed. */
async function expectRejected(l: Ledger, bytes: Uint8Array, reason: string) {
  const before = l.lastBlock();
  const count = l.counters.rejectedMessages[reason] ?? 0;
  const events: RejectedDetail[] = [];
  const listener = (e: CustomEvent<RejectedDetail>) => events.push(e.detail);
  l.addEventListener("rejected", listener);
  const result = await l.receive(bytes);
  l.removeEventListener("rejected", listener);
  assert.equal(result.kind, "rejected", `expected ${reason}, got ${JSON.stringify(result)}`);
  assert.equal(result.kind === "rejected" && result.reason, reason);
  assert.equal(l.counters.rejectedMessages[reason], count + 1);
  assert.equal(events.length, 1);
  assert.equal(l.lastBlock(), before, "state unchanged");
}

function blockText(index: number, storageJson: string, hash = "0".repeat(64), prev = GENESIS_HASH) {
  return `{"Index":${index},"Timestamp":"t","Storage":${storageJson},"Hash":"${hash}","PrevHash":"${prev}"}`;
}

Deno.test("undecodable transport bytes are rejected and counted", async () => {
  const l = await seeded();
  const good = await encodeBlockMessage(l.lastBlock());
  await expectRejected(l, enc.encode("not gzip"), "gzip_invalid");
  await expectRejected(l, new Uint8Array(0), "gzip_invalid");
  await expectRejected(l, good.slice(0, good.length - 5), "gzip_invalid");
  await expectRejected(l, await gzip(new Uint8Array([0xff, 0xfe, 0x7b])), "utf8_invalid");
  await expectRejected(l, await gz("{"), "json_invalid");
  await expectRejected(l, await gz("\ufeff{}"), "json_invalid");
  await expectRejected(l, await gz('"a string"'), "type_invalid");
  await expectRejected(l, await gz("null"), "type_invalid");
  await expectRejected(l, await gz("[1,2]"), "type_invalid");
  await l.stop();
});

Deno.test("messages over the size limits are rejected, zip bombs while inflating", async () => {
  const l = await seeded({ limits: { maxMessageBytes: 4096, maxInflatedBytes: 1 << 20 } });
  await expectRejected(l, new Uint8Array(5000), "message_too_large");
  const bomb = await gzip(new Uint8Array(64 << 20));
  assert.ok(bomb.length <= 4096 * 20, `bomb is ${bomb.length} bytes`);
  const l2 = await seeded({ limits: { maxInflatedBytes: 1 << 20 } });
  await expectRejected(l2, bomb, "inflated_too_large");
  await l.stop();
  await l2.stop();
});

Deno.test("blocks with bad hashes or impossible indexes are rejected", async () => {
  const l = await seeded();
  const last = l.lastBlock();
  const forged = { ...last, index: last.index + 1, storage: storage({ nodes: {} }) };
  await expectRejected(l, await gz(encodeBlock(forged)), "hash_invalid");
  await expectRejected(l, await gz(blockText(5, "{}")), "hash_invalid");
  await expectRejected(l, await gz(blockText(5, "{}", "0".repeat(64), "nothex")), "hash_invalid");
  await expectRejected(l, await gz(blockText(-1, "{}")), "index_invalid");
  await expectRejected(
    l,
    await gz(blockText(0, '{"nodes":{"a":"\\"x\\""}}', GENESIS_HASH, "")),
    "index_invalid",
  );
  await expectRejected(l, await gz(blockText(2 ** 53, "{}")), "index_invalid");
  await expectRejected(l, await gz(blockText(1.5, "{}")), "number_invalid");
  await l.stop();
});

Deno.test("wrong types and precision-losing numbers are rejected", async () => {
  const l = await seeded();
  const cases: Array<[string, string]> = [
    ['{"nodes":[]}', "type_invalid"],
    ['{"nodes":{"k":5}}', "type_invalid"],
    ['{"nodes":{"k":{"Version":"1"}}}', "type_invalid"],
    ['{"nodes":{"k":{"Deleted":"yes"}}}', "type_invalid"],
    ['{"nodes":{"k":{"Sig":"%%%"}}}', "type_invalid"],
    ['{"nodes":{"k":{"Version":1.7672256e18}}}', "number_invalid"],
    ['{"nodes":{"k":{"Version":1767225600000000000.0}}}', "number_invalid"],
    ['{"nodes":{"k":{"Version":18446744073709551616}}}', "number_invalid"],
    ['{"nodes":{"k":{"UpdatedAt":-9223372036854775809}}}', "number_invalid"],
  ];
  for (const [s, reason] of cases) await expectRejected(l, await gz(blockText(9, s)), reason);
  await l.stop();
});

Deno.test("huge storage is rejected by the block limits", async () => {
  const l = await seeded({
    limits: { maxEntries: 10, maxValueLength: 100, maxNameLength: 50, maxBuckets: 3 },
  });
  const many = `{"b":{${Array.from({ length: 11 }, (_, i) => `"k${i}":"1"`).join(",")}}}`;
  await expectRejected(l, await gz(blockText(9, many)), "limit_exceeded");
  await expectRejected(
    l,
    await gz(blockText(9, `{"b":{"k":${JSON.stringify("x".repeat(101))}}}`)),
    "limit_exceeded",
  );
  await expectRejected(
    l,
    await gz(blockText(9, `{"b":{"${"k".repeat(51)}":"1"}}`)),
    "limit_exceeded",
  );
  await expectRejected(
    l,
    await gz(blockText(9, `{"a":{},"b":{},"c":{},"d":{}}`)),
    "limit_exceeded",
  );
  await l.stop();
});

Deno.test("malformed digests are rejected", async () => {
  const l = await seeded();
  const h = "a".repeat(64);
  const digest = (body: string) => gz(`{"${DIGEST_MARKER}":${body}}`);
  await expectRejected(l, await digest(`[1,"${h}"]`), "digest_invalid");
  await expectRejected(l, await digest(`[-1,"${h}","${h}"]`), "digest_invalid");
  await expectRejected(l, await digest(`[1,"xyz","${h}"]`), "digest_invalid");
  await expectRejected(l, await digest(`[1e3,"${h}","${h}"]`), "digest_invalid");
  await expectRejected(l, await digest(`{"index":1}`), "digest_invalid");
  await expectRejected(l, await digest("null"), "digest_invalid");
  await l.stop();
});

Deno.test("bad signatures, wrong owners and replayed versions are dropped entry by entry and counted", async () => {
  const clock = new TestClock();
  const l = await signedLedger(clock);
  const [a, b] = [await generateIdentity(), await generateIdentity()];
  await feed(l, await heartbeat(a));
  const v2 = await signed(a, "machines", "10.1.0.1", machine(a.peerId, "10.1.0.1"), 2n);
  await feed(l, storage({ machines: { "10.1.0.1": v2 } }));
  const state = l.lastBlock();
  const attacks = [
    storage({
      machines: {
        "10.1.0.1": { ...v2, value: JSON.stringify(machine(a.peerId, "6.6.6.6")), version: 3n },
      },
    }),
    storage({
      machines: {
        "10.1.0.1": await signed(b, "machines", "10.1.0.1", machine(a.peerId, "10.1.0.1"), 3n),
      },
    }),
    storage({
      machines: {
        "10.1.0.1": await signed(b, "machines", "10.1.0.1", machine(b.peerId, "10.1.0.1"), 3n),
      },
    }),
    storage({
      machines: {
        "10.1.0.1": await signed(a, "machines", "10.1.0.1", machine(a.peerId, "old"), 1n),
      },
    }),
    storage({ machines: { "10.1.0.1": await tombstone(b, "machines", "10.1.0.1", 9n) } }),
    storage({
      users: { [a.peerId]: await signed(b, "users", a.peerId, { PeerID: a.peerId }, 1n) },
    }),
  ];
  for (const s of attacks) {
    const r = await feed(l, s);
    assert.deepEqual(r, { kind: "block", changed: false });
  }
  assert.equal(l.lastBlock(), state);
  assert.deepEqual(l.counters.rejectedEntries, {
    signature_invalid: 1,
    owner_mismatch: 2,
    hijack: 1,
    rollback: 1,
    tombstone_not_owner: 1,
  });
  await l.stop();
});

Deno.test("a block mixing good and bad entries is applied all-or-nothing per entry, never half an entry", async () => {
  const l = await signedLedger(new TestClock());
  const a = await generateIdentity();
  const good = await signed(a, "machines", "10.1.0.1", machine(a.peerId, "10.1.0.1"), 1n);
  const json = `{"machines":{"10.1.0.1":${encodeEntry(good)},"10.1.0.2":{"Version":"bad"}}}`;
  const before = l.lastBlock();
  const prev = before.hash;
  const text = blockText(1, json, "0".repeat(64), prev);
  const r = await l.receive(await gz(text));
  assert.equal(r.kind, "rejected", "a type error anywhere drops the whole block, as in Go");
  assert.equal(l.lastBlock(), before);
  assert.equal(l.getKey("machines", "10.1.0.1"), undefined);
  await l.stop();
});

Deno.test("random corruption of a valid message never throws and never half-applies (fuzz)", async () => {
  const id = await generateIdentity();
  const l = await signedLedger(new TestClock(), id);
  const source = await signedLedger(new TestClock());
  for (let i = 0; i < 20; i++) await source.add("nodes", { [`k${i}`]: { n: i, s: "<&>" } });
  const good = await encodeBlockMessage(source.lastBlock());
  const plain = enc.encode(encodeBlock(source.lastBlock()));
  const want = await source.contentHash();
  let seed = 99;
  const r = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let i = 0; i < 300; i++) {
    const before = l.lastBlock();
    const useGz = i % 2 === 0;
    const bytes = (useGz ? good : plain).slice();
    for (let j = 0; j < 1 + Math.floor(r() * 4); j++) {
      bytes[Math.floor(r() * bytes.length)] = Math.floor(r() * 256);
    }
    const result = await l.receive(useGz ? bytes : await gzip(bytes));
    if (result.kind === "rejected") assert.equal(l.lastBlock(), before);
    // Signed modes merge entry by entry: a corrupted entry fails its signature and is dropped
    // while intact ones are taken, so whatever is held must be exactly the source's entries.
    const sourceNodes = source.currentData().get("nodes")!;
    for (const [key, value] of l.currentData().get("nodes") ?? []) {
      assert.equal(value, sourceNodes.get(key), `entry ${key} must be the source's`);
    }
  }
  await l.receive(good);
  assert.equal(await l.contentHash(), want);
  assert.equal(l.currentData().get("nodes")?.size, 20);
  await l.stop();
  await source.stop();
});

Deno.test("a valid Go-shaped block is accepted after all those rejections", async () => {
  const l = await seeded();
  const s = storage({
    nodes: {
      b: { value: '"2"', owner: "", version: 0n, updatedAt: 0n, deleted: false, sig: null },
    },
  });
  const partial = {
    index: 7,
    timestamp: "2026-01-01 00:00:00 +0000 UTC",
    storage: s,
    prevHash: GENESIS_HASH,
  };
  const block = { ...partial, hash: await checksum(partial) };
  assert.deepEqual(await l.receive(await encodeBlockMessage(block)), {
    kind: "block",
    changed: true,
  });
  assert.equal(l.getKey("nodes", "b"), '"2"');
  const next = await nextBlock(block, s, msToNs(JAN1_MS));
  assert.deepEqual(await l.receive(await encodeBlockMessage(next)), {
    kind: "block",
    changed: true,
  });
  await l.stop();
});
