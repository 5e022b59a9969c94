import assert from "node:assert/strict";
import { formatRfc3339Seconds, goTimeString, msToNs, parseRfc3339 } from "../../lib/util/gotime.ts";

const JAN1 = 1767225600n * 1_000_000_000n;

Deno.test("goTimeString prints Go's Time.String() in UTC, trimming the fraction", () => {
  assert.equal(goTimeString(JAN1), "2026-01-01 00:00:00 +0000 UTC");
  assert.equal(goTimeString(JAN1 + 123456789n), "2026-01-01 00:00:00.123456789 +0000 UTC");
  assert.equal(goTimeString(JAN1 + 100000000n), "2026-01-01 00:00:00.1 +0000 UTC");
  assert.equal(goTimeString(JAN1 + 1000n), "2026-01-01 00:00:00.000001 +0000 UTC");
  assert.equal(goTimeString(0n), "1970-01-01 00:00:00 +0000 UTC");
});

Deno.test("formatRfc3339Seconds prints Go's RFC3339 in UTC", () => {
  assert.equal(formatRfc3339Seconds(Date.UTC(2026, 0, 1, 0, 0, 0, 999)), "2026-01-01T00:00:00Z");
  assert.equal(formatRfc3339Seconds(Date.UTC(2026, 11, 31, 23, 59, 59)), "2026-12-31T23:59:59Z");
});

Deno.test("parseRfc3339 accepts what Go's time.Parse(RFC3339) accepts", () => {
  assert.equal(parseRfc3339("2026-01-01T00:00:00Z"), JAN1);
  assert.equal(parseRfc3339("2026-01-01T01:00:00+01:00"), JAN1);
  assert.equal(parseRfc3339("2025-12-31T23:00:00-01:00"), JAN1);
  assert.equal(parseRfc3339("2026-01-01T00:00:00.5Z"), JAN1 + 500_000_000n);
  assert.equal(parseRfc3339("2024-02-29T00:00:00Z") !== undefined, true);
});

Deno.test("parseRfc3339 rejects what Go's time.Parse(RFC3339) rejects", () => {
  for (
    const bad of [
      "",
      "2026-01-01",
      "2026-01-01 00:00:00Z",
      "2026-01-01T00:00:00",
      "2026-13-01T00:00:00Z",
      "2025-02-29T00:00:00Z",
      "2026-01-01T24:00:00Z",
      "2026-01-01T00:60:00Z",
      "2026-01-01T00:00:60Z",
      "2026-01-01T00:00:00z",
      "2026-01-01T00:00:00+0100",
      '"2026-01-01T00:00:00Z"',
    ]
  ) {
    assert.equal(parseRfc3339(bad), undefined, bad);
  }
});

Deno.test("msToNs converts fractional milliseconds", () => {
  assert.equal(msToNs(1.5), 1_500_000n);
  assert.equal(msToNs(1767225600000), JAN1);
});
