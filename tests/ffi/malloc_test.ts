import assert from "node:assert/strict";
import { tuneMalloc } from "../../ffi/malloc.ts";

Deno.test({
  name: "malloc tuning is accepted by glibc",
  ignore: Deno.build.os !== "linux",
  fn() {
    assert.equal(tuneMalloc(), true);
  },
});
