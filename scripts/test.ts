/** Runs the whole test suite with `deno test` and ends with the line `N passed, N failed[, N skipped]`. */

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

const args = ["test", "-A", ...Deno.args];
if (!Deno.args.some((a) => !a.startsWith("-"))) args.push("tests/");

const child = new Deno.Command(Deno.execPath(), {
  args,
  stdout: "piped",
  stderr: "inherit",
  stdin: "null",
}).spawn();

let tail = "";
const decoder = new TextDecoder();
for await (const chunk of child.stdout) {
  await Deno.stdout.write(chunk);
  tail = (tail + decoder.decode(chunk, { stream: true })).slice(-4096);
}
const status = await child.status;

const summary = tail.replace(ANSI, "").split("\n").reverse().find((l) =>
  /\b\d+ passed\b.*\b\d+ failed\b/.test(l)
);
const count = (word: string) => Number(summary?.match(new RegExp(`(\\d+) ${word}`))?.[1] ?? 0);
const passed = count("passed");
const failed = count("failed") || (status.success ? 0 : 1);
const skipped = count("ignored");
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
Deno.exit(status.success && failed === 0 && passed > 0 ? 0 : 1);
