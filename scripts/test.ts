/**
 * Runs the whole test suite with `deno test`, then the `@example` blocks of mod.ts, cli.ts, lib/
 * and ffi/ with `deno test --doc`, and ends with the line `N passed, N failed[, N skipped]`.
 * With paths or filters only those tests run; with `--doc` only the examples.
 *
 * The whole suite runs in two lanes at once, to stay within 15 minutes on two cores: the main
 * lane (every test file, one at a time, its output shown as it comes) and the long lane (the
 * tests that mostly wait — the soak's minutes of steady traffic, the chaos run — then the
 * examples), whose output is shown once the main lane ends. The names of failed tests are
 * repeated above the last line.
 */

// deno-lint-ignore no-control-regex -- ANSI colour codes start with ESC
const ANSI = /\x1b\[[0-9;]*m/g;
/** Test folders of the long lane: they run while the main lane does. */
const LONG_LANE = ["tests/soak/", "tests/chaos/"];

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

type Counts = { passed: number; failed: number; skipped: number };

const docOnly = Deno.args.includes("--doc");
const testArgs = Deno.args.filter((a) => a !== "--doc");
const targeted = testArgs.some((a) => !a.startsWith("-"));

/** `name => file:line:col` of every failed test. */
const failures: string[] = [];
const results: Counts[] = [];
if (docOnly) {
  results.push(await runExamples(live));
} else if (targeted) {
  results.push(await run(["test", "-A", ...testArgs], live));
} else {
  const held: Uint8Array[] = [];
  const hold = (chunk: Uint8Array) => {
    held.push(chunk);
    return Promise.resolve();
  };
  const longLane = (async () => {
    const counts = [
      await run(["test", "-A", ...testArgs, ...LONG_LANE], hold),
      await runExamples(hold),
    ];
    return counts;
  })();
  results.push(
    await run(["test", "-A", ...testArgs, `--ignore=${LONG_LANE.join(",")}`, "tests/"], live),
  );
  const long = await longLane;
  for (const chunk of held) await Deno.stdout.write(chunk);
  results.push(...long);
}

async function live(chunk: Uint8Array): Promise<void> {
  await Deno.stdout.write(chunk);
}

/** Runs `deno <args>`, passing its output on, and reads its summary line. */
async function run(args: string[], out: (chunk: Uint8Array) => Promise<void>): Promise<Counts> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  let tail = "";
  let line = "";
  let inFailures = false;
  const decoder = new TextDecoder();
  const errors = (async () => {
    for await (const chunk of child.stderr) await out(chunk);
  })();
  for await (const chunk of child.stdout) {
    await out(chunk);
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
  await errors;
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
async function runExamples(out: (chunk: Uint8Array) => Promise<void>): Promise<Counts> {
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
    ], out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const passed = results.reduce((n, r) => n + r.passed, 0);
const failed = results.reduce((n, r) => n + r.failed, 0);
const skipped = results.reduce((n, r) => n + r.skipped, 0);
if (failures.length) console.log(`\nfailed:\n${failures.map((f) => `  ${f}`).join("\n")}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
Deno.exit(failed === 0 && passed > 0 ? 0 : 1);
