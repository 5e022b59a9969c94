/**
 * The release workflow builds both Linux binaries with the same compile script users run, smoke
 * tests them and publishes them with checksums; the compile script embeds the commit.
 */
import assert from "node:assert/strict";
import YAML from "yaml";
import { BUILD_INFO_FILE } from "../../lib/build_info.ts";
import { compileArgs, TARGETS } from "../../scripts/compile.ts";
import { REPO_ROOT } from "../helpers/cli.ts";

interface Step {
  name?: string;
  run?: string;
  uses?: string;
  with?: Record<string, unknown>;
}

Deno.test("release.yml builds, smoke tests, checksums and publishes both targets on a tag", async () => {
  const wf = YAML.parse(await Deno.readTextFile(`${REPO_ROOT}.github/workflows/release.yml`));
  assert.deepEqual(wf.on.push.tags, ["v*"]);
  const build = wf.jobs.build;
  const matrix: { target: string; asset: string }[] = build.strategy.matrix.include;
  assert.deepEqual(matrix.map((m) => m.target).sort(), [...TARGETS].sort());
  const steps: Step[] = build.steps;
  const compile = steps.find((s) => s.run?.includes("./deno task compile"));
  assert.ok(compile, "built with the repository's compile task");
  assert.match(
    compile!.run!,
    /--target \$\{\{ matrix\.target \}\} --output dist\/\$\{\{ matrix\.asset \}\}/,
  );
  const smoke = steps.find((s) => s.name === "Smoke test")!.run!;
  assert.match(smoke, /--version/);
  assert.match(smoke, /-g -b/);
  const release = wf.jobs.release;
  assert.deepEqual(release.needs, "build");
  assert.equal(release.permissions.contents, "write");
  const run = (release.steps as Step[]).map((s) => s.run ?? "").join("\n");
  assert.match(run, /sha256sum edgevpn-\* > SHA256SUMS/);
  for (const m of matrix) assert.ok(run.includes(`dist/${m.asset}`), `${m.asset} is published`);
  assert.match(run, /dist\/SHA256SUMS/);
  // deno task compile runs scripts/compile.ts.
  const deno = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`));
  assert.equal(deno.tasks.compile, "deno run -A scripts/compile.ts");
});

Deno.test("the compile script embeds the build info and passes the target", () => {
  const args = compileArgs({ output: "dist/x", target: TARGETS[1] });
  assert.deepEqual(args.slice(args.indexOf("--include"), args.indexOf("--include") + 2), [
    "--include",
    BUILD_INFO_FILE,
  ]);
  assert.deepEqual(args.slice(args.indexOf("--target"), args.indexOf("--target") + 2), [
    "--target",
    TARGETS[1],
  ]);
  assert.ok(args.includes("--unstable-net"));
  assert.equal(args.at(-1), "cli.ts");
  assert.ok(!compileArgs({ output: "dist/x" }).includes("--target"));
});

Deno.test("the compile script refuses an unknown target with exit 2 before building", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO_ROOT}scripts/compile.ts`, "--target", "mips-unknown-linux"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  assert.match(new TextDecoder().decode(out.stderr), /--target: expected one of x86_64/);
});
