/** Tests of the quiet sync decisions and of the save queue, each on its own. */
import assert from "node:assert/strict";
import { type Block, genesisBlock, nextBlock, type Storage } from "../../lib/ledger/block.ts";
import { unsignedEntry } from "../../lib/ledger/entry.ts";
import { SaveQueue } from "../../lib/ledger/save_queue.ts";
import { better, replyToBlock, replyToDigest } from "../../lib/ledger/sync.ts";

const NOW = 1_767_225_600_000_000_000n;

function storage(entries: Record<string, string>): Storage {
  return new Map([[
    "b",
    new Map(Object.entries(entries).map(([k, v]) => [k, unsignedEntry(v)])),
  ]]);
}

async function chain(...states: Record<string, string>[]): Promise<Block[]> {
  const blocks = [genesisBlock(NOW)];
  for (const s of states) blocks.push(await nextBlock(blocks[blocks.length - 1], storage(s), NOW));
  return blocks;
}

Deno.test("the better head is the higher index, then the greater hash", () => {
  assert.ok(better({ index: 3, hash: "a" }, { index: 2, hash: "f" }));
  assert.ok(better({ index: 2, hash: "f" }, { index: 2, hash: "a" }));
  assert.ok(!better({ index: 2, hash: "a" }, { index: 2, hash: "a" }));
});

Deno.test("digests: off mode answers only from the better head; signed modes answer content differences", async () => {
  const [, low, high] = await chain({ k: '"1"' }, { k: '"2"' });
  const digestOf = (b: Block, contentHash: string) => ({
    index: b.index,
    hash: b.hash,
    contentHash,
  });
  assert.deepEqual(replyToDigest("off", high, "", digestOf(high, "")), { differs: false });
  assert.deepEqual(replyToDigest("off", high, "", digestOf(low, "")), {
    differs: true,
    reply: `${low.hash}|${high.hash}`,
  });
  assert.deepEqual(replyToDigest("off", low, "", digestOf(high, "")), { differs: true });
  assert.deepEqual(replyToDigest("enforce", low, "c1", digestOf(high, "c2")), {
    differs: true,
    reply: "c2|c1",
  });
  assert.deepEqual(replyToDigest("enforce", high, "c", digestOf(low, "c")), {
    differs: false,
    reply: `${low.hash}|${high.hash}`,
  });
  assert.deepEqual(replyToDigest("enforce", low, "c", digestOf(high, "c")), { differs: false });
});

Deno.test("blocks: equal state cancels a pending answer, entries the peer lacks are answered", async () => {
  const [, a, b] = await chain({ k: '"1"' }, { k: '"1"', extra: '"2"' });
  assert.deepEqual(replyToBlock("enforce", a, a, 0n, NOW), { cancel: true });
  assert.deepEqual(replyToBlock("enforce", b, a, 0n, NOW), { reply: `${a.hash}|${b.hash}` });
  assert.deepEqual(replyToBlock("enforce", a, b, 0n, NOW), {}, "the peer has all we hold");
  assert.deepEqual(replyToBlock("off", b, a, 0n, NOW), { reply: `${a.hash}|${b.hash}` });
  assert.deepEqual(replyToBlock("off", a, b, 0n, NOW), {});
});

Deno.test("the save queue writes one block at a time and skips blocks a newer one replaced", async () => {
  const saved: number[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const queue = new SaveQueue(async (block) => {
    if (block.index === 1) await gate;
    saved.push(block.index);
  }, () => {});
  const blocks = await chain({ a: "1" }, { a: "2" }, { a: "3" }, { a: "4" });
  const done = [1, 2, 3, 4].map((i) => queue.save(blocks[i]));
  release();
  await Promise.all(done);
  await queue.idle();
  assert.deepEqual(saved, [1, 4], "blocks 2 and 3 were replaced while block 1 was being saved");
});

Deno.test("a failed save rejects the callers it covered and is reported once", async () => {
  const failures: unknown[] = [];
  const queue = new SaveQueue(
    () => Promise.reject(new Error("disk full")),
    (e) => failures.push(e),
  );
  const [, block] = await chain({ a: "1" });
  await assert.rejects(queue.save(block), /disk full/);
  assert.equal(failures.length, 1);
});
