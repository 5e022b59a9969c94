/**
 * Builds the standalone binary with `deno compile`, with the commit it is built from inside
 * (`edgevpn --version`).
 *
 *   ./deno task compile                                            # dist/edgevpn for this machine
 *   ./deno task compile --target aarch64-unknown-linux-gnu --output dist/edgevpn-linux-aarch64
 *
 * `deno compile` embeds a `denort` runtime for the target, downloaded from dl.deno.land unless
 * the environment variable DENORT_BIN names a local copy (needed offline).
 */
import { BUILD_INFO_FILE, gitCommit } from "../lib/build_info.ts";
import { VERSION } from "../lib/version.ts";

/** Targets the release workflow builds. */
export const TARGETS = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"] as const;

/**
 * The `deno compile` arguments for one binary.
 *
 * @example
 * ```ts
 * compileArgs({ output: "dist/edgevpn" }); // ["compile", "-A", …, "cli.ts"]
 * ```
 */
export function compileArgs(options: { output: string; target?: string }): string[] {
  return [
    "compile",
    "-A",
    "--unstable-net",
    // The runtime flags the nodes are tuned for (as `deno task edgevpn`).
    "--v8-flags=--max-semi-space-size=1,--no-concurrent-array-buffer-sweeping",
    "--include",
    BUILD_INFO_FILE,
    ...(options.target ? ["--target", options.target] : []),
    "--output",
    options.output,
    "cli.ts",
  ];
}

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  if (i < 0) return undefined;
  const value = Deno.args[i + 1];
  if (value === undefined || value.startsWith("--")) {
    console.error(`compile: ${name} needs a value`);
    Deno.exit(2);
  }
  return value;
}

if (import.meta.main) {
  const root = new URL("../", import.meta.url).pathname;
  const target = flag("--target");
  if (target && !(TARGETS as readonly string[]).includes(target)) {
    console.error(`compile: --target: expected one of ${TARGETS.join(", ")}, got ${target}`);
    Deno.exit(2);
  }
  const output = flag("--output") ?? "dist/edgevpn";
  await Deno.mkdir(`${root}dist`, { recursive: true });
  const commit = await gitCommit(root);
  await Deno.writeTextFile(
    `${root}${BUILD_INFO_FILE}`,
    JSON.stringify({ version: VERSION, commit }) + "\n",
  );
  const status = await new Deno.Command(Deno.execPath(), {
    args: compileArgs({ output, target }),
    cwd: root,
    stdin: "null",
  }).spawn().status;
  if (!status.success) {
    console.error(
      "compile: deno compile failed (offline? set DENORT_BIN to a local denort of the target)",
    );
    Deno.exit(1);
  }
  console.log(`built ${output} (${VERSION}, commit ${commit})`);
}
