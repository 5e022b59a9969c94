/** Tests of the quiet sync decisions and of the save queue, each on its own. */
import assert from "node:assert/strict";
import { type Block, genesisBlock, nextBlock, type Storage } from "../../lib/ledger/block.ts";
import { unsignedEntry } from "../../lib/ledger/entry.ts";
import { SaveQueue } from "../../lib/ledger/save_queue.ts";
import {
  better,
  REPLY_MIN_INTERVAL_MS,
  replyToBlock,
  replyToDigest,
  SyncSender,
} from "../../lib/ledger/sync.ts";
import type { Clock } from "../../lib/util/clock.ts";
import { silentLogger } from "../../lib/util/logger.ts";

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

Deno.test("ten peers diverging at once are answered by one full block every 2 s, not one each", async () => {
  // A clock that runs its timers in order as the test advances it.
  let time = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  let nextId = 1;
  const clock: Clock = {
    now: () => time,
    setTimeout: (fn, ms) => {
      timers.set(nextId, { at: time + ms, fn });
      return nextId++;
    },
    clearTimeout: (id) => void timers.delete(id as number),
  };
  const advance = async (ms: number) => {
    const end = time + ms;
    for (;;) {
      const [id, t] = [...timers].sort((a, b) => a[1].at - b[1].at)[0] ?? [];
      if (id === undefined || t.at > end) break;
      timers.delete(id);
      time = t.at;
      t.fn();
      await Promise.resolve();
    }
    time = end;
  };
  const [, head] = await chain({ k: '"1"' });
  const sentAt: number[] = [];
  const counters = {
    fullBlocksSent: 0,
    digestsSent: 0,
    repliesSent: 0,
    repliesSuppressed: 0,
    bytesSent: 0,
    broadcastsCoalesced: 0,
    sendFailures: 0,
    deltasSent: 0,
  };
  const sender = new SyncSender({
    send: () => {},
    // Read once per full block, when it is sent.
    head: () => {
      sentAt.push(time);
      return head;
    },
    clock,
    now: () => time,
    random: () => 0.5,
    log: silentLogger,
    counters,
    replyDelayMs: 500,
    backoffMs: 60_000,
  });
  // Every 100 ms for 10 s, a digest from one of ten joiners, each a new divergence.
  for (let i = 0; i < 100; i++) {
    sender.scheduleReply(`joiner${i % 10}-${i}|ours`);
    await advance(100);
  }
  await sender.stop();
  assert.ok(counters.repliesSent >= 4 && counters.repliesSent <= 6, `${counters.repliesSent}`);
  for (let i = 1; i < sentAt.length; i++) {
    assert.ok(sentAt[i] - sentAt[i - 1] >= REPLY_MIN_INTERVAL_MS, `${sentAt}`);
  }
});
