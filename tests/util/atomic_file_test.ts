import assert from "node:assert/strict";
import { writeFileAtomic } from "../../lib/util/atomic_file.ts";

Deno.test("writeFileAtomic replaces content, sets the mode and leaves no temporary file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/state.json`;
    await writeFileAtomic(path, new TextEncoder().encode("one"));
    await writeFileAtomic(path, new TextEncoder().encode("two"), { mode: 0o640 });
    assert.equal(await Deno.readTextFile(path), "two");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o640);
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names, ["state.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFileAtomic with createNew keeps the first writer's file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/key`;
    const results = await Promise.allSettled(
      ["a", "b", "c"].map((s) =>
        writeFileAtomic(path, new TextEncoder().encode(s), { createNew: true })
      ),
    );
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
    for (const r of results) {
      if (r.status === "rejected") assert.ok(r.reason instanceof Deno.errors.AlreadyExists);
    }
    assert.match(await Deno.readTextFile(path), /^[abc]$/);
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names, ["key"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
