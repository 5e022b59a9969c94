import assert from "node:assert/strict";
import { encodeBlock, genesisBlock, verifyBlockHash } from "../../lib/ledger/block.ts";
import { createLedger } from "../../lib/ledger/ledger.ts";
import { DiskStore, openDiskStore, STATE_FILE } from "../../lib/ledger/store_disk.ts";
import { signedLedger, TestClock } from "./helpers.ts";

async function files(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

Deno.test("the disk store keeps the last block as Go-format JSON and reloads it", async () => {
  const dir = await Deno.makeTempDir();
  const l = await createLedger({ store: await openDiskStore(dir) });
  await l.add("nodes", { a: "<1>" });
  await l.add("nodes", { b: 2 });
  const last = l.lastBlock();
  await l.stop();
  assert.deepEqual(await files(dir), [STATE_FILE]);
  assert.equal(await Deno.readTextFile(`${dir}/${STATE_FILE}`), encodeBlock(last));
  const again = await createLedger({ store: await openDiskStore(dir) });
  assert.equal(again.loadWarning, undefined);
  assert.equal(again.lastBlock().hash, last.hash);
  assert.equal(again.getKey("nodes", "a"), '"\\u003c1\\u003e"');
  await again.stop();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("signed ledgers survive a restart byte for byte", async () => {
  const dir = await Deno.makeTempDir();
  const l = await signedLedger(new TestClock(), undefined, { store: await openDiskStore(dir) });
  await l.add("nodes", { k: { deep: ["v", 1] } });
  await l.delete("nodes", "k");
  const json = encodeBlock(l.lastBlock());
  await l.stop();
  const { block, warning } = await (await openDiskStore(dir)).load();
  assert.equal(warning, undefined);
  assert.equal(encodeBlock(block!), json);
  await Deno.remove(dir, { recursive: true });
});

for (
  const [name, content] of [
    ["truncated", (json: string) => json.slice(0, json.length - 7)],
    ["empty", () => ""],
    ["garbage", () => "\u0000\u0001binary"],
    ["tampered", (json: string) => json.replace('\\"1\\"', '\\"2\\"')],
  ] as const
) {
  Deno.test(`state file ${name}: moved aside with a one-line warning and the ledger starts empty`, async () => {
    const dir = await Deno.makeTempDir();
    const l = await createLedger({ store: await openDiskStore(dir) });
    await l.add("nodes", { a: "1" });
    await l.stop();
    const path = `${dir}/${STATE_FILE}`;
    const original = await Deno.readTextFile(path);
    await Deno.writeTextFile(path, content(original));
    const warnings: string[] = [];
    const again = await createLedger({
      store: await openDiskStore(dir),
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
    assert.equal(warnings.length, 1);
    assert.ok(!warnings[0].includes("\n"));
    assert.match(
      again.loadWarning!,
      /unreadable.*moved to .*corrupt-.*starting from an empty ledger/,
    );
    assert.equal(again.index(), 0);
    await verifyBlockHash(again.lastBlock());
    const names = await files(dir);
    assert.equal(names.length, 2);
    assert.ok(names.some((n) => n.startsWith(`${STATE_FILE}.corrupt-`)));
    const aside = names.find((n) => n.includes("corrupt"))!;
    assert.equal(await Deno.readTextFile(`${dir}/${aside}`), content(original));
    await again.stop();
    await Deno.remove(dir, { recursive: true });
  });
}

Deno.test("leftover temporary files from a crash are removed on load", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/${STATE_FILE}.tmp-123-4`, "{half");
  const store = new DiskStore(dir);
  assert.deepEqual(await store.load(), {});
  assert.deepEqual(await files(dir), []);
  await store.save(genesisBlock(0n));
  assert.deepEqual(await files(dir), [STATE_FILE]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("every acknowledged write survives SIGKILL at random moments (20 kills)", async () => {
  const dir = await Deno.makeTempDir();
  const script = new URL("./crash_writer.ts", import.meta.url).pathname;
  const acked = new Set<string>();
  let totalAcked = 0;
  const started = Date.now();
  for (let run = 0; run < 20; run++) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script, dir, `r${run}`],
      stdout: "piped",
      stderr: "null",
      stdin: "null",
    }).spawn();
    const reader = child.stdout.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    let firstAck: () => void = () => {};
    const sawFirst = new Promise<void>((r) => (firstAck = r));
    const reading = (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffered += decoder.decode(value, { stream: true });
        const lines = buffered.split("\n");
        buffered = lines.pop()!;
        for (const line of lines) {
          assert.ok(!line.startsWith("WARNING"), line);
          acked.add(line);
          totalAcked++;
          firstAck();
        }
      }
    })();
    await sawFirst;
    await new Promise((r) => setTimeout(r, Math.random() * 300));
    child.kill("SIGKILL");
    const status = await child.status;
    await reading;
    assert.equal(status.signal, "SIGKILL");

    const { block, warning } = await new DiskStore(dir).load();
    assert.equal(warning, undefined, `run ${run}: ${warning}`);
    assert.ok(block, `run ${run}: no ledger after restart`);
    await verifyBlockHash(block);
    const keys = block.storage.get("crash") ?? new Map();
    for (const key of acked) assert.ok(keys.has(key), `run ${run}: acknowledged key ${key} lost`);
  }
  assert.ok(totalAcked >= 20);
  console.log(`crash test: ${totalAcked} acknowledged writes over 20 SIGKILLs`);
  assert.ok(Date.now() - started < 60_000, "crash test took over a minute");
  await Deno.remove(dir, { recursive: true });
});
