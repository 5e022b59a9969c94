/**
 * Egress between Go EdgeVPN v0.35 and us, in two namespaces: Go's `edgevpn proxy` leaves
 * through our `join --egress`, and our `edgevpn proxy` (plain HTTP) through Go's `--egress`
 * node, which cannot carry CONNECT (ours says so with a 502). The destination listens only on
 * the egress node's own loopback. Needs EDGEVPN_GO, root and /dev/net/tun; skipped with the
 * reason otherwise.
 */
import assert from "node:assert/strict";
import { createNamespacePair } from "../../scripts/netns.ts";
import { CliProcess, eventually, LoggedProcess } from "../helpers/process.ts";
import { curl, curlSkipReason } from "../proxy/helpers.ts";
import { GoProcess, interopGoBinary, writeNodeKey } from "./go_edgevpn.ts";

const curlSkip = curlSkipReason();
if (curlSkip) console.log(`Go EdgeVPN egress interop tests skipped: ${curlSkip}`);
const go = curlSkip ? undefined : interopGoBinary("Go EdgeVPN egress interop tests", { tun: true });

const TOOL = new URL("../e2e/http_target_tool.ts", import.meta.url).pathname;
const QUICK = [
  "--ledger-announce-interval",
  "2",
  "--ledger-synchronization-interval",
  "1",
  "--aliveness-healthcheck-interval",
  "2",
  "--dht=false",
  "--mdns=false",
];

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
  const pair = await createNamespacePair("evz", 246);
  const dir = await Deno.makeTempDir({ prefix: "evgoegress" });
  const processes: LoggedProcess[] = [];
  try {
    const generated = await new Deno.Command(binary, { args: ["-g", "-b"], clearEnv: true })
      .output();
    assert.ok(generated.success, "Go generates a token");
    const token = new TextDecoder().decode(generated.stdout).trim();
    const egressId = await writeNodeKey(`${dir}/egress`);
    const proxyId = await writeNodeKey(`${dir}/proxy`);
    const egressAddr = `/ip4/${pair.a.address}/tcp/4001`;
    const proxyAddr = `/ip4/${pair.b.address}/tcp/4001`;
    const common = (self: string, peer: string, keyDir: string) => [
      "--token",
      token,
      "--listen-maddrs",
      self,
      "--discovery-bootstrap-peers",
      peer,
      "--privkey-cache",
      "--privkey-cache-dir",
      keyDir,
      ...QUICK,
    ];
    const target = new LoggedProcess([Deno.execPath(), "run", "-A", TOOL, "8000"], {
      netns: pair.a.name,
    });
    processes.push(target);
    const egressArgs = [
      ...common(egressAddr, `${proxyAddr}/p2p/${proxyId.peerId}`, `${dir}/egress`),
      "--address",
      "10.1.0.1/24",
      "--egress",
      "--egress-announce-time",
      "2",
    ];
    const egress = egressIsGo
      ? new GoProcess(binary, egressArgs, { netns: pair.a.name, home: `${dir}/egress` })
      : new CliProcess(["join", ...egressArgs, "--state-dir", `${dir}/egress`], {
        netns: pair.a.name,
      });
    processes.push(egress);
    const proxyArgs = [
      "proxy",
      ...common(proxyAddr, `${egressAddr}/p2p/${egressId.peerId}`, `${dir}/proxy`),
      "--listen",
      "127.0.0.1:3128",
      "--interval",
      "2",
    ];
    const proxy = egressIsGo
      ? new CliProcess([...proxyArgs, "--state-dir", `${dir}/proxy`], { netns: pair.b.name })
      : new GoProcess(binary, proxyArgs, { netns: pair.b.name, home: `${dir}/proxy` });
    processes.push(proxy);
    await target.waitFor(/listening 8000/, 60_000);
    await check(pair.b.name, egress, proxy, target);
  } finally {
    for (const p of processes) await p.kill();
    await pair.close();
    await Deno.remove(dir, { recursive: true });
  }
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
