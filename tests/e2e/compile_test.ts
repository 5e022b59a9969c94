import assert from "node:assert/strict";
import { decodeToken } from "../../lib/config/token.ts";
import { REPO_ROOT } from "../helpers/cli.ts";

// `deno compile` embeds a `denort` runtime that it downloads from dl.deno.land unless
// DENORT_BIN names a local copy; without either there is nothing to build with.
const denort = Deno.env.get("DENORT_BIN");
const skip = denort
  ? undefined
  : "DENORT_BIN is not set (deno compile needs a local denort offline)";
if (skip) console.log(`compile test skipped: ${skip}`);

Deno.test({
  name: "the compiled binary prints a valid token and rejects bad flags like the script",
  ignore: skip !== undefined,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const out = `${dir}/edgevpn`;
      const build = await new Deno.Command(Deno.execPath(), {
        args: ["compile", "-A", "--unstable-net", "--output", out, `${REPO_ROOT}cli.ts`],
        cwd: REPO_ROOT,
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.ok(build.success, new TextDecoder().decode(build.stderr));
      const token = await new Deno.Command(out, { args: ["-g", "-b"] }).output();
      assert.equal(token.code, 0);
      assert.equal(
        decodeToken(new TextDecoder().decode(token.stdout).trim()).maxMessageSize,
        20971520,
      );
      const bad = await new Deno.Command(out, { args: ["--nope"], stderr: "piped" }).output();
      assert.equal(bad.code, 2);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
