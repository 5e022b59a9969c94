import assert from "node:assert/strict";
import { goIndent } from "../../lib/api/json.ts";
import { checkName, quoteInput } from "../../lib/api/route.ts";
import { ApiRequestError } from "../../lib/api/errors.ts";

Deno.test("goIndent matches Go's json.Indent with two spaces", () => {
  const cases: Array<[string, string]> = [
    ['{"a":[1,2],"b":{}}', '{\n  "a": [\n    1,\n    2\n  ],\n  "b": {}\n}'],
    ["[]", "[]"],
    ["{}", "{}"],
    ["[{}]", "[\n  {}\n]"],
    ['"x"', '"x"'],
    ["null", "null"],
    ['{"k":"a\\"{,:}[]\\\\"}', '{\n  "k": "a\\"{,:}[]\\\\"\n}'],
    ['[[1],{"a":null}]', '[\n  [\n    1\n  ],\n  {\n    "a": null\n  }\n]'],
  ];
  for (const [compact, indented] of cases) assert.equal(goIndent(compact, "  "), indented, compact);
});

Deno.test("names are 1 to maxBytes UTF-8 bytes", () => {
  assert.equal(checkName("key", "k", 1024), "k");
  assert.equal(checkName("key", "é".repeat(512), 1024), "é".repeat(512));
  for (const bad of ["", "é".repeat(513), "k".repeat(1025)]) {
    assert.throws(
      () => checkName("key", bad, 1024),
      (e: unknown) => e instanceof ApiRequestError && e.status === 400 && e.code === "NAME_INVALID",
    );
  }
});

Deno.test("untrusted text in error messages is quoted and cut", () => {
  assert.equal(quoteInput('a"b'), '"a\\"b"');
  assert.equal(quoteInput("x".repeat(100)), JSON.stringify("x".repeat(64) + "…"));
});
