/**
 * contrib/systemd: the unit is valid (`systemd-analyze verify`), and the node runs as the unit
 * runs it: an unprivileged user (65534) holding only the unit's ambient capabilities, its
 * environment from the unit and the example environment file, the token from a file, inside a
 * network namespace; it brings the VPN up, stops on SIGTERM with exit 0 and removes the interface.
 * Skipped with the reason where systemd-analyze, root, namespaces or /dev/net/tun are missing.
 */
import assert from "node:assert/strict";
import { namespaceSkipReason, sh } from "../../scripts/netns.ts";
import { REPO_ROOT, runCli } from "../helpers/cli.ts";
import { createNamespaceLan } from "../e2e/vpn_helpers.ts";

const UNIT = `${REPO_ROOT}contrib/systemd/edgevpn.service`;
const ENV_FILE = `${REPO_ROOT}contrib/systemd/edgevpn.env`;

/** `Key=value` lines of a unit's or environment file's text, in order (comments dropped). */
function assignments(text: string): [string, string][] {
  return text.split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#") && !l.startsWith("[") && l.includes("="))
    .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]);
}

function which(cmd: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      Deno.statSync(`${dir}/${cmd}`);
      return true;
    } catch { /* next */ }
  }
  return false;
}

const verifySkip = Deno.build.os !== "linux" || !which("systemd-analyze")
  ? "systemd-analyze is missing"
  : undefined;
if (verifySkip) console.log(`systemd unit verification skipped: ${verifySkip}`);

Deno.test("contrib/systemd: the unit asks for CAP_NET_ADMIN rather than root and verifies", async () => {
  const unit = await Deno.readTextFile(UNIT);
  const keys = new Map(assignments(unit));
  assert.equal(keys.get("DynamicUser"), "yes", "not root");
  assert.match(keys.get("AmbientCapabilities") ?? "", /\bCAP_NET_ADMIN\b/);
  assert.match(keys.get("CapabilityBoundingSet") ?? "", /\bCAP_NET_ADMIN\b/);
  assert.match(keys.get("ExecStart") ?? "", / join --token-file %d\/token$/);
  assert.equal(keys.get("LoadCredential"), "token:/etc/edgevpn/token");
  assert.equal(keys.get("RestartPreventExitStatus"), "2", "bad configuration is not retried");
  // Every variable of the example environment file is one of our options' variables.
  const { OPTIONS } = await import("../../lib/config/options.ts");
  const known = new Set(Object.values(OPTIONS).map((o) => (o as { env?: string }).env));
  const envText = await Deno.readTextFile(ENV_FILE);
  const commented = [...envText.matchAll(/^# ?([A-Z_][A-Z0-9_]*)=/gm)].map((m) => m[1]);
  for (const [name] of [...assignments(envText), ...commented.map((c) => [c, ""])]) {
    assert.ok(known.has(name), `${name} in edgevpn.env is an option's variable`);
  }
  if (verifySkip) return;
  const dir = await Deno.makeTempDir();
  try {
    // verify checks that ExecStart's program exists: point it at a stand-in.
    await Deno.writeTextFile(`${dir}/edgevpn`, "#!/bin/sh\n", { mode: 0o755 });
    await Deno.writeTextFile(
      `${dir}/edgevpn.service`,
      unit.replaceAll("/usr/local/bin/edgevpn", `${dir}/edgevpn`),
    );
    const out = await new Deno.Command("systemd-analyze", {
      args: ["verify", `${dir}/edgevpn.service`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    assert.ok(out.success, text);
    assert.doesNotMatch(text, /Unknown|Invalid|ignoring/i, text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const runSkip = namespaceSkipReason({ tun: true }) ??
  (which("setpriv") && which("unshare") ? undefined : "setpriv/unshare (util-linux) are missing");
if (runSkip) console.log(`systemd unit run skipped: ${runSkip}`);

Deno.test({
  name: "contrib/systemd: the node runs as user 65534 with only the unit's ambient capabilities",
  ignore: runSkip !== undefined,
  async fn() {
    const unit = await Deno.readTextFile(UNIT);
    const keys = assignments(unit);
    const caps = keys.find(([k]) => k === "AmbientCapabilities")![1].split(/\s+/)
      .map((c) => c.replace(/^CAP_/, "").toLowerCase());
    const lan = await createNamespaceLan("evsd", 1, 239);
    const dir = await Deno.makeTempDir({ prefix: "evsd" });
    let child: Deno.ChildProcess | undefined;
    try {
      // The unit's state directory and credential, owned and readable by the service's user.
      const state = `${dir}/state`;
      await Deno.mkdir(state, { mode: 0o700 });
      const token = (await runCli(["-g", "-b"])).stdout.trim();
      await Deno.mkdir(`${dir}/credentials`, { mode: 0o700 });
      await Deno.writeTextFile(`${dir}/credentials/token`, `${token}\n`, { mode: 0o400 });
      // Deno, its module cache and the repository, reachable by user 65534 through bind mounts
      // in a mount namespace of the test's own (/root is not readable by other users).
      for (const d of ["bin", "denodir", "repo"]) await Deno.mkdir(`${dir}/${d}`);
      await sh("chown", ["-R", "65534:65534", state, `${dir}/credentials`]);
      await Deno.chmod(dir, 0o755);
      const denoDir = Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`;
      const exe = Deno.execPath();
      const exeDir = exe.slice(0, exe.lastIndexOf("/"));
      const exeName = exe.slice(exe.lastIndexOf("/") + 1);
      // Environment: the unit's Environment= lines, then the example file, then test settings.
      const env: Record<string, string> = {
        PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
        NO_COLOR: "1",
        DENO_DIR: `${dir}/denodir`,
        DENO_NO_UPDATE_CHECK: "1",
      };
      for (const [k, v] of keys) {
        if (k === "Environment") {
          const [name, value] = [v.slice(0, v.indexOf("=")), v.slice(v.indexOf("=") + 1)];
          env[name] = value.replace("/var/lib/edgevpn", state);
        }
      }
      for (const [k, v] of assignments(await Deno.readTextFile(ENV_FILE))) env[k] = v;
      Object.assign(env, {
        IFACE: "edgevpnsd0",
        EDGEVPNLISTENMADDRS: `/ip4/${lan.nodes[0].address}/tcp/4001`,
        EDGEVPNBOOTSTRAPPEERS: `/ip4/${
          lan.nodes[0].address
        }/tcp/9/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq`,
        EDGEVPNDHT: "false",
        EDGEVPNMDNS: "false",
      });
      const execStart = keys.find(([k]) => k === "ExecStart")![1].split(/\s+/).slice(1)
        .map((a) => a.replace("%d", `${dir}/credentials`));
      // Distributions make /dev/net/tun 0666 (the capability is what guards it); where this
      // machine's is stricter, a 0666 node of the same device stands in, in this mount namespace.
      await sh("mknod", ["-m", "0666", `${dir}/tun`, "c", "10", "200"]);
      const script = [
        `mount --bind ${dir}/tun /dev/net/tun`,
        `mount --bind ${exeDir} ${dir}/bin`,
        `mount --bind ${denoDir} ${dir}/denodir`,
        `mount --bind ${REPO_ROOT} ${dir}/repo`,
        `exec ip netns exec ${lan.nodes[0].name} setpriv --reuid=65534 --regid=65534 ` +
        `--clear-groups --inh-caps=-all,${caps.map((c) => `+${c}`).join(",")} ` +
        `--ambient-caps=-all,${caps.map((c) => `+${c}`).join(",")} ` +
        `--bounding-set=-all,${caps.map((c) => `+${c}`).join(",")} ` +
        `${dir}/bin/${exeName} run -A --cached-only ${dir}/repo/cli.ts ${execStart.join(" ")}`,
      ].join(" && ");
      child = new Deno.Command("unshare", {
        args: ["-m", "--propagation", "private", "sh", "-c", script],
        env,
        clearEnv: true,
        cwd: state,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      let log = "";
      const dec = new TextDecoder();
      const pumps = [child.stdout, child.stderr].map(async (s) => {
        for await (const c of s) log += dec.decode(c, { stream: true });
      });
      const deadline = Date.now() + 120_000;
      while (!/VPN up: interface edgevpnsd0 with address 10\.1\.0\.1\/24/.test(log)) {
        if (Date.now() > deadline) throw new Error(`no VPN after 120 s:\n${log}`);
        const exited = await Promise.race([
          child.status.then(() => true),
          new Promise<false>((r) => setTimeout(() => r(false), 100)),
        ]);
        if (exited) {
          await Promise.all(pumps);
          throw new Error(`exited before the VPN came up:\n${log}`);
        }
      }
      const status = await lan.nodes[0].run("cat", ["/proc/net/dev"]);
      assert.match(status, /edgevpnsd0:/);
      // It runs as 65534 with CAP_NET_ADMIN among its effective capabilities, not as root.
      const pid = (await lan.nodes[0].run("pgrep", ["-n", "-u", "65534", "-f", "repo/cli.ts"]))
        .trim();
      const proc = await Deno.readTextFile(`/proc/${pid}/status`);
      assert.match(proc, /^Uid:\s+65534\s+65534/m);
      const capEff = BigInt(`0x${proc.match(/^CapEff:\s+([0-9a-f]+)/m)![1]}`);
      assert.equal((capEff >> 12n) & 1n, 1n, "CAP_NET_ADMIN effective");
      assert.equal((capEff >> 21n) & 1n, 0n, "no CAP_SYS_ADMIN");
      child.kill("SIGTERM");
      const { code } = await child.status;
      await Promise.all(pumps);
      child = undefined;
      assert.equal(code, 0, log.slice(-3000));
      const links = await lan.nodes[0].run("ip", ["-o", "link", "show"]);
      assert.ok(!links.includes("edgevpnsd0"), links);
      // The unit's state directory holds the node's key, written by the service's user.
      const key = await Deno.stat(`${state}/privkey`).catch(() => undefined) ??
        [...Deno.readDirSync(state)][0];
      assert.ok(key, `state written to ${state}`);
    } finally {
      if (child) {
        try {
          child.kill("SIGKILL");
        } catch { /* exited */ }
        await child.status;
      }
      await lan.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
