import assert from "node:assert/strict";
import { rotationPlan } from "../../lib/hub/rotation.ts";

Deno.test("rotation plan keeps only the current window mid-interval", () => {
  const p = rotationPlan(360, 1000 * 360 * 10 + 180_000, 5000, 10_000);
  assert.equal(p.current, 10);
  assert.deepEqual(p.active, [10]);
  assert.equal(p.nextChangeMs, 1000 * 360 * 11 - 5000);
});

Deno.test("rotation plan adds the next window before the boundary", () => {
  const end = 1000 * 360 * 11;
  const p = rotationPlan(360, end - 5000, 5000, 10_000);
  assert.deepEqual(p.active, [10, 11]);
  assert.equal(p.nextChangeMs, end);
  assert.deepEqual(rotationPlan(360, end - 1, 5000, 10_000).active, [10, 11]);
});

Deno.test("rotation plan switches exactly at floor(unix/interval) and keeps the previous window", () => {
  const start = 1000 * 360 * 11;
  const p = rotationPlan(360, start, 5000, 10_000);
  assert.equal(p.current, 11);
  assert.deepEqual(p.active, [11, 10]);
  assert.equal(p.nextChangeMs, start + 10_000);
  assert.deepEqual(rotationPlan(360, start + 10_000, 5000, 10_000).active, [11]);
});

Deno.test("rotation plan caps lead and grace at half the interval", () => {
  const p = rotationPlan(2, 4000, 5000, 10_000);
  assert.deepEqual(p.active, [2, 1]);
  assert.equal(p.nextChangeMs, 5000);
  assert.deepEqual(rotationPlan(2, 5000, 5000, 10_000).active, [2, 3]);
});
