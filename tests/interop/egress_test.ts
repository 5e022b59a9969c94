/**
 * Egress between Go EdgeVPN v0.35 and us, in two namespaces: Go's `edgevpn proxy` leaves
 * through our `join --egress`, and our `edgevpn proxy` (plain HTTP) through Go's `--egress`
 * node, which cannot carry CONNECT (ours says so with a 502). The destination listens only on
 * the egress node's own loopback. Needs EDGEVPN_GO, root and /dev/net/tun; skipped with the
 * reason otherwise.
 */
import assert from "node:assert/strict";
import { CliProcess, eventually, LoggedProcess } from "../helpers/process.ts";
import { curl, curlSkipReason } from "../proxy/helpers.ts";
import { QUICK_FLAGS } from "../helpers/node_pair.ts";
import { GoProcess, interopGoBinary, withGoPair } from "./go_edgevpn.ts";

const curlSkip = curlSkipReason();
if (curlSkip) console.log(`Go EdgeVPN egress interop tests skipped: ${curlSkip}`);
const go = curlSkip ? undefined : interopGoBinary("Go EdgeVPN egress interop tests", { tun: true });

const TOOL = new URL("../e2e/http_target_tool.ts", import.meta.url).pathname;

/** The egress side (namespace a) and the proxy side (namespace b) of one run. */
async function egressAndProxy(
  egressIsGo: boolean,
  check: (
    ns: string,
    egress: LoggedProcess,
    proxy: LoggedProcess,
    target: LoggedProcess,
  ) => Promise<void>,
): Promise<void> {
  const binary = go!.path;
  const scope = {
    prefix: "evz",
    subnet: 246,
    tempPrefix: "evgoegress",
    names: ["egress", "proxy"],
  } as const;
  await withGoPair(binary, scope, async ({ a: egressSide, b: proxySide, processes }) => {
    const target = new LoggedProcess([Deno.execPath(), "run", "-A", TOOL, "8000"], {
      netns: egressSide.ns.name,
    });
    processes.push(target);
    const egressArgs = [
      ...egressSide.flags,
      ...QUICK_FLAGS,
      "--address",
      "10.1.0.1/24",
      "--egress",
      "--egress-announce-time",
      "2",
    ];
    const egress = egressIsGo
      ? new GoProcess(binary, egressArgs, { netns: egressSide.ns.name, home: egressSide.dir })
      : new CliProcess(["join", ...egressArgs, "--state-dir", egressSide.dir], {
        netns: egressSide.ns.name,
      });
    processes.push(egress);
    const proxyArgs = [
      "proxy",
      ...proxySide.flags,
      ...QUICK_FLAGS,
      "--listen",
      "127.0.0.1:3128",
      "--interval",
      "2",
    ];
    const proxy = egressIsGo
      ? new CliProcess([...proxyArgs, "--state-dir", proxySide.dir], { netns: proxySide.ns.name })
      : new GoProcess(binary, proxyArgs, { netns: proxySide.ns.name, home: proxySide.dir });
    processes.push(proxy);
    await target.waitFor(/listening 8000/, 60_000);
    await check(proxySide.ns.name, egress, proxy, target);
  });
}

/** GETs `path` of the destination through the proxy until it answers (the users entry and the egress entry need a few rounds). */
async function firstAnswer(ns: string, path: string): Promise<void> {
  await eventually(
    async () =>
      (await curl(["-x", "http://127.0.0.1:3128", `http://127.0.0.1:8000${path}`], ns)).stdout ===
        `hello ${path}`,
    `an answer to ${path} through the proxy`,
    90_000,
  );
}

Deno.test({
  name: "interop egress: Go EdgeVPN's proxy leaves through our egress node",
  ignore: go === undefined,
  fn: () =>
    egressAndProxy(false, async (ns, egress, proxy, target) => {
      try {
        await firstAnswer(ns, "/from-go-proxy");
        const post = await curl([
          "-x",
          "http://127.0.0.1:3128",
          "--data-binary",
          "y".repeat(50_000),
          "http://127.0.0.1:8000/post",
        ], ns);
        assert.equal(post.stdout, "hello /post", post.stderr);
        assert.match(target.log, /request \/post 50000 bytes/);
      } catch (e) {
        throw new Error(
          `${e}\n--- egress (ours)\n${egress.log.slice(-3000)}\n--- proxy (Go)\n${
            proxy.log.slice(-3000)
          }`,
        );
      }
    }),
});

Deno.test({
  name:
    "interop egress: our proxy leaves through Go EdgeVPN's egress node (plain HTTP GET and a 50 kB POST); CONNECT gets a clear 502",
  ignore: go === undefined,
  fn: () =>
    egressAndProxy(true, async (ns, egress, proxy, target) => {
      try {
        await firstAnswer(ns, "/from-our-proxy");
        assert.match(target.log, /request \/from-our-proxy/);
        const post = await curl([
          "-x",
          "http://127.0.0.1:3128",
          "--data-binary",
          "z".repeat(50_000),
          "http://127.0.0.1:8000/post-through-go",
        ], ns);
        assert.equal(post.stdout, "hello /post-through-go", post.stderr);
        assert.match(target.log, /request \/post-through-go 50000 bytes/);
        const connect = await curl([
          "-i",
          "-x",
          "http://127.0.0.1:3128",
          "-p",
          "http://127.0.0.1:8000/",
        ], ns);
        assert.match(connect.stderr + connect.stdout, /502/);
        const socks = await curl(["--socks5", "127.0.0.1:3128", "http://127.0.0.1:8000/"], ns);
        assert.notEqual(socks.code, 0);
      } catch (e) {
        throw new Error(
          `${e}\n--- egress (Go)\n${egress.log.slice(-3000)}\n--- proxy (ours)\n${
            proxy.log.slice(-3000)
          }`,
        );
      }
    }),
});
