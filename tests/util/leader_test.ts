import assert from "node:assert/strict";
import { fnv1a32, leader } from "../../lib/util/leader.ts";

Deno.test("fnv1a32 matches Go's hash/fnv New32a", () => {
  assert.equal(fnv1a32("a"), 0xe40c292c);
  assert.equal(fnv1a32("b"), 0xe70c2de5);
  assert.equal(fnv1a32("z"), 0xff0c53ad);
  assert.equal(fnv1a32(""), 0x811c9dc5);
});

Deno.test("leader picks the highest hash as Go's utils.Leader (§16.1 vectors)", () => {
  assert.equal(leader(["a", "b", "c", "d"]), "b");
  assert.equal(leader(["a", "b", "c", "d", "e", "f", "G", "bb"]), "b");
  assert.equal(leader(["a", "b", "c", "d", "e", "f", "G", "bb", "z", "b1", "b2"]), "z");
  assert.equal(leader(["1", "2", "3", "4", "5"]), "2");
  assert.equal(leader(["1", "2", "3", "4", "5", "6", "7", "21", "22"]), "22");
});

Deno.test("leader keeps the earlier element on equal hashes and has no leader for no nodes", () => {
  assert.equal(leader(["x", "x"]), "x");
  assert.equal(leader([]), undefined);
});
