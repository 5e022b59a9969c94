/**
 * Runs the whole test suite with `deno test`, then the `@example` blocks of mod.ts, cli.ts, lib/
 * and ffi/ with `deno test --doc`, and ends with the line `N passed, N failed[, N skipped]`.
 * With paths or filters only those tests run; with `--doc` only the examples.
 */

// deno-lint-ignore no-control-regex -- ANSI colour codes start with ESC
const ANSI = /\x1b\[[0-9;]*m/g;
// Child processes started by tests (`deno run cli.ts …`) would print "Download …" lines on a
// cold module cache, which tests reading stderr take for output: fill the cache first.
const warm = await new Deno.Command(Deno.execPath(), {
  args: ["cache", "--quiet", "mod.ts", "cli.ts", "scripts/", "tests/"],
  stdin: "null",
}).output();
if (!warm.success) {
  await Deno.stderr.write(warm.stderr);
  console.log("0 passed, 1 failed");
  Deno.exit(1);
}

const docOnly = Deno.args.includes("--doc");
const testArgs = Deno.args.filter((a) => a !== "--doc");
const targeted = testArgs.some((a) => !a.startsWith("-"));

const totals = { passed: 0, failed: 0, skipped: 0 };
/** `name => file:line:col` of every failed test, repeated above the last line. */
const failures: string[] = [];
if (!docOnly) {
  const args = ["test", "-A", ...testArgs];
  if (!targeted) args.push("tests/");
  add(await run(args));
}
if (docOnly || !targeted) add(await runExamples());

function add(counts: typeof totals): void {
  totals.passed += counts.passed;
  totals.failed += counts.failed;
  totals.skipped += counts.skipped;
}

/** Runs `deno <args>`, echoing its output, and reads its summary line. */
async function run(args: string[]): Promise<typeof totals> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  let tail = "";
  let line = "";
  let inFailures = false;
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    await Deno.stdout.write(chunk);
    const text = decoder.decode(chunk, { stream: true });
    tail = (tail + text).slice(-4096);
    // deno test ends with a FAILURES section listing `name => file:line:col`.
    const lines = (line + text).split("\n");
    line = lines.pop() ?? "";
    for (const raw of lines) {
      const plain = raw.replace(ANSI, "").trim();
      if (plain === "FAILURES") inFailures = true;
      else if (inFailures && plain.includes(" => ")) failures.push(plain);
    }
  }
  const status = await child.status;
  const summary = tail.replace(ANSI, "").split("\n").reverse().find((l) =>
    /\b\d+ passed\b.*\b\d+ failed\b/.test(l)
  );
  const count = (word: string) => Number(summary?.match(new RegExp(`(\\d+) ${word}`))?.[1] ?? 0);
  const passed = count("passed");
  const failed = count("failed") || (status.success && passed > 0 ? 0 : 1);
  return { passed, failed, skipped: count("ignored") };
}

/**
 * The `@example` blocks, type-checked and run without permissions except reading the
 * environment: an example that would touch files, the network, FFI or subprocesses fails, so it
 * must be marked ```` ```ts ignore ````. They run with a copy of deno.json without
 * `noUnusedLocals`/`noUnusedParameters`: `deno test --doc` imports every export of the module
 * into each example, unused ones included (denoland/deno#26900).
 */
async function runExamples(): Promise<typeof totals> {
  const config = JSON.parse(await Deno.readTextFile("deno.json"));
  delete config.compilerOptions?.noUnusedLocals;
  delete config.compilerOptions?.noUnusedParameters;
  const dir = await Deno.makeTempDir({ prefix: "edgevpn-doctest-" });
  try {
    await Deno.writeTextFile(`${dir}/deno.json`, JSON.stringify(config));
    return await run([
      "test",
      "--doc",
      "--no-prompt",
      "--allow-env",
      `--config=${dir}/deno.json`,
      "--lock=deno.lock",
      "mod.ts",
      "cli.ts",
      "lib/",
      "ffi/",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const { passed, failed, skipped } = totals;
if (failures.length) console.log(`\nfailed:\n${failures.map((f) => `  ${f}`).join("\n")}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
Deno.exit(failed === 0 && passed > 0 ? 0 : 1);
