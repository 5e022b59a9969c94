import assert from "node:assert/strict";
import { MAX_KEY_LENGTH, RegexKeys, type SkippedKey } from "../../lib/dns/regex_keys.ts";

Deno.test("keys match unanchored against the name with its trailing dot, RE2 syntax", () => {
  const keys = new RegexKeys(() => {});
  const all = ["foo\\.mesh\\.$", "(?i)^BAR\\.", "^baz$", "\\Qq.x\\E"];
  const first = (name: string) => keys.firstMatch(name, all, () => true);
  assert.equal(first("foo.mesh."), "foo\\.mesh\\.$");
  assert.equal(first("sub.foo.mesh."), "foo\\.mesh\\.$", "unanchored");
  assert.equal(first("foo.mesh.org."), undefined);
  assert.equal(first("bar.example."), "(?i)^BAR\\.");
  assert.equal(first("baz."), undefined, "the trailing dot is part of the name");
  assert.equal(first("aq.xb."), "\\Qq.x\\E");
  assert.equal(keys.firstMatch("foo.mesh.", all, (k) => k !== "foo\\.mesh\\.$"), undefined);
});

Deno.test("keys that cannot be used are skipped and reported once each", () => {
  const skipped: SkippedKey[] = [];
  const keys = new RegexKeys((s) => skipped.push(s));
  const all = [
    "((",
    "(?<=x)a",
    "x".repeat(MAX_KEY_LENGTH + 1),
    "a{1000}b{1000}c{1000}d{1000}e{100}",
    "ok\\.",
  ];
  for (let i = 0; i < 5; i++) assert.equal(keys.firstMatch("ok.", all, () => true), "ok\\.");
  assert.deepEqual(skipped.map((s) => s.reason), ["invalid", "invalid", "too_long", "too_complex"]);
  // A key that leaves the bucket and comes back is checked (and reported) again.
  keys.sync(["ok\\."]);
  keys.firstMatch("ok.", all, () => true);
  assert.equal(skipped.length, 8);
});

Deno.test("hostile keys match in linear time and a query stops at its work budget", () => {
  const keys = new RegexKeys(() => {});
  const name = `${"a".repeat(60)}.${"a".repeat(60)}.${"a".repeat(60)}.${"a".repeat(60)}!.`;
  // Catastrophic for a backtracking engine; RE2 answers at once.
  assert.equal(keys.firstMatch(name, ["(a+)+$", "(a|aa)+b", "(.*a){12}z"], () => true), undefined);
  // Thousands of costly keys: the query stops early instead of working through all of them.
  const heavy = Array.from({ length: 3000 }, (_, i) => `(?:a?){300}a{300}x${i}`);
  assert.equal(keys.firstMatch(name, heavy, () => true), undefined);
  assert.equal(keys.budgetExhausted, 1);
});
