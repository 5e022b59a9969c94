/** Runs `cli.ts` in a child Deno process for tests. */

const ROOT = new URL("../../", import.meta.url).pathname;

/** Output of one CLI run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion with `args`, an environment without EdgeVPN variables plus `env`. */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (!/^(EDGEVPN|IFACE|ADDRESS|DHCP|API|ROUTER|HEALTHCHECK|DNS)/.test(k)) clean[k] = v;
  }
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}cli.ts`, ...args],
    env: { ...clean, NO_COLOR: "1", ...env },
    clearEnv: true,
    cwd: ROOT,
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Absolute path of the repository root, with a trailing slash. */
export const REPO_ROOT = ROOT;
