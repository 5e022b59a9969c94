import assert from "node:assert/strict";
import { loadOrCreateStateNetwork, NETWORK_FILE } from "../lib/commands/network_state.ts";
import { hasNetAdmin } from "../lib/commands/privileges.ts";
import { UsageError } from "../lib/util/errors.ts";

Deno.test("join's state network is created once, private, then reused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const first = await loadOrCreateStateNetwork(`${dir}/state`, 360);
    assert.equal(first.created, true);
    assert.equal((await Deno.stat(first.path)).mode! & 0o777, 0o600);
    const again = await loadOrCreateStateNetwork(`${dir}/state`, 360);
    assert.equal(again.created, false);
    assert.deepEqual(again.network, first.network);
    const racing = await Promise.all(
      [1, 2, 3].map(() => loadOrCreateStateNetwork(`${dir}/race`, 60)),
    );
    assert.equal(racing.filter((r) => r.created).length, 1);
    assert.ok(racing.every((r) => r.network.room === racing[0].network.room));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a damaged saved network is reported, not replaced", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/${NETWORK_FILE}`, "room: [\n");
    await assert.rejects(() => loadOrCreateStateNetwork(dir, 360), UsageError);
    assert.equal(await Deno.readTextFile(`${dir}/${NETWORK_FILE}`), "room: [\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("capability check agrees with the user id for root", async () => {
  if (Deno.uid() === 0) assert.equal(await hasNetAdmin(), true);
  else assert.equal(typeof (await hasNetAdmin()), "boolean");
});
