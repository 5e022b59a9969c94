import assert from "node:assert/strict";
import { KeyedRateLimiter, LogBudget } from "../../lib/util/rate_limit.ts";

Deno.test("a key spends its burst, then gets tokens back at its rate; other keys are apart", () => {
  let now = 0;
  const limits = new KeyedRateLimiter({ perSecond: 2, burst: 3 }, { now: () => now });
  assert.deepEqual([1, 2, 3, 4].map(() => limits.take("a")), [true, true, true, false]);
  assert.equal(limits.take("b"), true);
  now = 499;
  assert.equal(limits.take("a"), false);
  now = 500;
  assert.equal(limits.take("a"), true);
  now = 100_000;
  assert.equal(limits.take("a", 3), true, "refilled, but never above the burst");
  assert.equal(limits.take("a"), false);
  assert.equal(limits.take("a", 0), true);
});

Deno.test("a take larger than what is left spends nothing", () => {
  const limits = new KeyedRateLimiter({ perSecond: 0, burst: 10 }, { now: () => 0 });
  assert.equal(limits.take("a", 11), false);
  assert.equal(limits.take("a", 10), true);
});

Deno.test("memory stays bounded: the least recently used key is forgotten", () => {
  const limits = new KeyedRateLimiter({ perSecond: 0, burst: 1 }, { now: () => 0, maxKeys: 2 });
  assert.equal(limits.take("a"), true);
  assert.equal(limits.take("b"), true);
  assert.equal(limits.take("a"), false, "a was used last");
  assert.equal(limits.take("c"), true, "pushes b out");
  assert.equal(limits.take("a"), false);
  assert.equal(limits.take("b"), true, "b starts over");
});

Deno.test("a log budget allows N lines per window and reports what it held back", () => {
  let now = 0;
  const budget = new LogBudget(2, 60_000, { now: () => now });
  assert.deepEqual(budget.allow("p"), { allowed: true, suppressed: 0 });
  assert.deepEqual(budget.allow("p"), { allowed: true, suppressed: 0 });
  for (let i = 0; i < 5; i++) assert.equal(budget.allow("p").allowed, false);
  assert.deepEqual(budget.allow("q"), { allowed: true, suppressed: 0 });
  now = 60_000;
  assert.deepEqual(budget.allow("p"), { allowed: true, suppressed: 5 });
  assert.deepEqual(budget.allow("p"), { allowed: true, suppressed: 0 });
});
