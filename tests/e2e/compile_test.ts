import assert from "node:assert/strict";
import { decodeToken } from "../../lib/config/token.ts";
import { gitCommit } from "../../lib/build_info.ts";
import { VERSION } from "../../lib/version.ts";
import { namespaceSkipReason } from "../../scripts/netns.ts";
import { REPO_ROOT } from "../helpers/cli.ts";
import { LoggedProcess } from "../helpers/process.ts";
import { createNamespaceLan } from "./vpn_helpers.ts";

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
      // The same script as `deno task compile` and the release workflow.
      const build = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${REPO_ROOT}scripts/compile.ts`, "--output", out],
        cwd: REPO_ROOT,
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.ok(build.success, new TextDecoder().decode(build.stderr));
      const version = await new Deno.Command(out, { args: ["--version"] }).output();
      assert.equal(
        new TextDecoder().decode(version.stdout),
        `edgevpn ${VERSION} (commit ${await gitCommit(REPO_ROOT)})\n`,
      );
      const token = await new Deno.Command(out, { args: ["-g", "-b"] }).output();
      assert.equal(token.code, 0);
      assert.equal(
        decodeToken(new TextDecoder().decode(token.stdout).trim()).maxMessageSize,
        20971520,
      );
      const bad = await new Deno.Command(out, { args: ["--nope"], stderr: "piped" }).output();
      assert.equal(bad.code, 2);
      // The dashboard's assets travel inside the binary: serve them from a directory without them.
      const api = new Deno.Command(out, {
        args: [
          "api",
          "--token",
          new TextDecoder().decode(token.stdout).trim(),
          "--listen",
          "127.0.0.1:0",
          "--state-dir",
          dir,
          "--listen-maddrs",
          "/ip4/127.0.0.1/tcp/0",
          "--mdns=false",
          "--dht=false",
          "--discovery-bootstrap-peers",
          "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq",
        ],
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      try {
        const reader = api.stdout.pipeThrough(new TextDecoderStream()).getReader();
        let text = "";
        let link: RegExpExecArray | null = null;
        while (!(link = /(http:\/\/[\d.:]+)\/login\?code=/.exec(text))) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`no login link in: ${text}`);
          text += value;
        }
        reader.releaseLock();
        const base: string = link[1];
        for (const path of ["/", "/assets/app.js", "/assets/vendor/preact.mjs"]) {
          const res: Response = await fetch(base + path);
          assert.equal(res.status, 200, path);
          await res.body?.cancel();
        }
      } finally {
        api.kill("SIGTERM");
        await api.status;
        await api.stdout.cancel().catch(() => {});
        await api.stderr.cancel();
      }
      // The VPN from the binary (its FFI inside), in a namespace when this machine has them.
      const nsSkip = namespaceSkipReason({ tun: true });
      if (nsSkip) {
        console.log(`compiled join in a namespace skipped: ${nsSkip}`);
      } else {
        const lan = await createNamespaceLan("evc", 1, 237);
        try {
          const join = new LoggedProcess([
            out,
            "join",
            "--token",
            new TextDecoder().decode(token.stdout).trim(),
            "--address",
            "10.9.0.1/24",
            "--interface",
            "evcomp0",
            "--state-dir",
            dir,
            "--privkey-cache-dir",
            dir,
            "--listen-maddrs",
            `/ip4/${lan.nodes[0].address}/tcp/4001`,
            "--dht=false",
            "--mdns=false",
            "--discovery-bootstrap-peers",
            "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq",
          ], { netns: lan.nodes[0].name });
          try {
            await join.waitFor(/VPN up: interface evcomp0/, 60_000);
            await lan.nodes[0].run("ping", ["-c", "1", "-W", "2", "10.9.0.1"]);
            const { code } = await join.stop("SIGTERM");
            assert.equal(code, 0, join.log);
            const links = await lan.nodes[0].run("ip", ["-o", "link", "show"]);
            assert.ok(!links.includes("evcomp0"), links);
          } finally {
            await join.kill();
          }
        } finally {
          await lan.close();
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
