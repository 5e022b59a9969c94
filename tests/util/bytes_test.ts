import assert from "node:assert/strict";
import { concatBytes } from "../../lib/util/bytes.ts";

Deno.test("concatBytes joins arrays and flattening lists, with or without the total", () => {
  const list = { byteLength: 2, subarray: () => Uint8Array.of(4, 5) };
  assert.deepEqual(
    concatBytes([Uint8Array.of(1), Uint8Array.of(2, 3), list]),
    Uint8Array.of(1, 2, 3, 4, 5),
  );
  assert.deepEqual(concatBytes([Uint8Array.of(7), Uint8Array.of(8)], 2), Uint8Array.of(7, 8));
  assert.deepEqual(concatBytes([]), new Uint8Array(0));
});
