/** docs/: the configuration reference is generated from the option table and never stale. */
import assert from "node:assert/strict";
import { OPTIONS } from "../lib/config/options.ts";
import { formattedConfigReference, REFERENCE_PATH } from "../scripts/config_reference.ts";
import { REPO_ROOT } from "./helpers/cli.ts";

Deno.test("docs/configuration.md is what ./deno task docs generates from the option table", async () => {
  const committed = await Deno.readTextFile(`${REPO_ROOT}${REFERENCE_PATH}`);
  const generated = await formattedConfigReference();
  assert.ok(
    committed === generated,
    `${REFERENCE_PATH} is stale: run ./deno task docs (first difference at line ${
      committed.split("\n").findIndex((l, i) => l !== generated.split("\n")[i]) + 1
    })`,
  );
  for (const spec of Object.values(OPTIONS)) {
    const dash = spec.flag.length === 1 ? "-" : "--";
    assert.ok(committed.includes(`${dash}${spec.flag}\``), `${dash}${spec.flag} documented`);
    if ("env" in spec && spec.env) assert.ok(committed.includes(`\`${spec.env}\``), spec.env);
  }
});

Deno.test("docs/README.md links every page of docs/, each link resolves, README links docs", async () => {
  const index = await Deno.readTextFile(`${REPO_ROOT}docs/README.md`);
  const links = [...index.matchAll(/\]\(([^)#]+)\)/g)].map((m) => m[1]);
  for (const link of links) await Deno.stat(`${REPO_ROOT}docs/${link}`);
  for (const e of Deno.readDirSync(`${REPO_ROOT}docs`)) {
    if (e.name.endsWith(".md") && e.name !== "README.md") {
      assert.ok(links.includes(e.name), `docs/README.md links ${e.name}`);
    }
  }
  for (
    const page of [
      "getting-started.md",
      "vpn.md",
      "services-and-files.md",
      "dns-and-egress.md",
      "api-and-dashboard.md",
      "configuration.md",
      "migrating-from-go.md",
      "performance.md",
    ]
  ) assert.ok(links.includes(page), `a page ${page}`);
  const readme = await Deno.readTextFile(`${REPO_ROOT}README.md`);
  assert.match(readme, /\]\(docs\/README\.md\)/);
  // Relative links inside the pages resolve too.
  for (const e of Deno.readDirSync(`${REPO_ROOT}docs`)) {
    if (!e.name.endsWith(".md")) continue;
    const text = await Deno.readTextFile(`${REPO_ROOT}docs/${e.name}`);
    for (const m of text.matchAll(/\]\(([a-z][a-z0-9-]*\.md)(#[^)]*)?\)/g)) {
      await Deno.stat(`${REPO_ROOT}docs/${m[1]}`);
    }
  }
});
