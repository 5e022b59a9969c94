import assert from "node:assert/strict";
import { Ring } from "../../lib/util/ring.ts";

Deno.test("ring of 3 keeps the last three and ignores a repeat of the newest (§16.1)", () => {
  const r = new Ring(3);
  r.add("a");
  r.add("b");
  r.add("c");
  assert.deepEqual(r.data, ["a", "b", "c"]);
  r.add("d");
  assert.deepEqual(r.data, ["b", "c", "d"]);
  r.add("d");
  assert.deepEqual(r.data, ["b", "c", "d"]);
});

Deno.test("ring of 2 keeps the last two (§16.1)", () => {
  const r = new Ring(2);
  r.add("a");
  r.add("b");
  r.add("c");
  assert.deepEqual(r.data, ["b", "c"]);
  r.add("d");
  assert.deepEqual(r.data, ["c", "d"]);
  r.add("d");
  assert.deepEqual(r.data, ["c", "d"]);
});

Deno.test("ring refuses a length below one", () => {
  assert.throws(() => new Ring(0), { code: "RING_LENGTH_INVALID" });
});
