/**
 * `edgevpn proxy` as users run it, in front of egress nodes on loopback: HTTP, HTTPS
 * (CONNECT) and SOCKS5 leave through the egress node, /metrics counts them, bad flags get one
 * line and exit 2.
 */
import assert from "node:assert/strict";
import { encodeToken, generateNetworkConfig } from "../../lib/config/token.ts";
import { createEgress, egressComponentsOf } from "../../lib/egress/mod.ts";
import { runCli } from "../helpers/cli.ts";
import { CliProcess, eventually } from "../helpers/process.ts";
import { startHttpTarget } from "../egress/helpers.ts";
import { startLoopbackMesh } from "../mesh/helpers.ts";
import {
  curl,
  curlSkipReason,
  opensslSkipReason,
  selfSignedCertificate,
} from "../proxy/helpers.ts";

const skip = curlSkipReason() ?? opensslSkipReason();
if (skip) console.log(`proxy CLI test skipped: ${skip}`);

Deno.test({
  name:
    "edgevpn proxy: HTTP, HTTPS and SOCKS5 through an egress node; its API's /metrics counts them",
  ignore: skip !== undefined,
  async fn() {
    const network = generateNetworkConfig();
    const mesh = await startLoopbackMesh(network);
    const egress = createEgress(egressComponentsOf(mesh), {
      announceIntervalMs: 1_000,
      allowPrivate: true,
    });
    await egress.start();
    const tls = await selfSignedCertificate();
    const plain = startHttpTarget();
    const secure = startHttpTarget(tls);
    const dir = await Deno.makeTempDir({ prefix: "evproxy" });
    const proxy = new CliProcess([
      "proxy",
      "--token",
      encodeToken(network),
      "--listen",
      "127.0.0.1:0",
      "--api",
      "--api-listen",
      "127.0.0.1:0",
      "--state-dir",
      dir,
      "--listen-maddrs",
      "/ip4/127.0.0.1/tcp/0",
      "--mdns=false",
      "--dht=false",
      "--discovery-bootstrap-peers",
      mesh.node.multiaddrs()[0],
      "--ledger-synchronization-interval",
      "1",
      "--interval",
      "1",
    ]);
    try {
      const port = Number((await proxy.waitFor(/proxy listening on 127\.0\.0\.1:(\d+)/))[1]);
      const api = (await proxy.waitFor(/API listening on (\S+)/))[1];
      const url = `http://127.0.0.1:${port}`;
      // Until the proxy's users entry reaches the egress node, the node resets its streams.
      await eventually(
        async () =>
          (await curl(["-x", url, `http://127.0.0.1:${plain.port}/ready`])).stdout ===
            "hello /ready",
        "a first request through the egress node",
      );
      const https = await curl([
        "--cacert",
        tls.certPath,
        "-x",
        url,
        `https://127.0.0.1:${secure.port}/s`,
      ]);
      assert.equal(https.stdout, "hello /s", https.stderr);
      const socks = await curl([
        "--socks5-hostname",
        `127.0.0.1:${port}`,
        `http://localhost:${plain.port}/k`,
      ]);
      assert.equal(socks.stdout, "hello /k", socks.stderr);
      assert.equal(secure.requests.length, 1);
      assert.equal(plain.requests.at(-1)?.path, "/k");
      assert.ok(egress.counters().tunnels >= 3, "the requests left through the egress node");

      const metrics = await (await fetch(`http://${api}/metrics`)).text();
      assert.match(metrics, /edgevpn_proxy_requests_total\{kind="connect"\} 1/);
      assert.match(metrics, /edgevpn_proxy_requests_total\{kind="socks"\} 1/);
      assert.match(metrics, /edgevpn_proxy_egress_total\{protocol="tunnel"\} \d+/);
      const { code } = await proxy.stop();
      assert.equal(code, 0, proxy.log.slice(-2000));
    } finally {
      await proxy.kill();
      await plain.close();
      await secure.close();
      await egress.stop();
      await mesh.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("edgevpn proxy refuses bad addresses and an API on the proxy's socket with one line, exit 2", async () => {
  const token = encodeToken(generateNetworkConfig());
  const same = await runCli([
    "proxy",
    "--token",
    token,
    "--api",
    "--listen",
    ":8080",
    "--api-listen",
    "127.0.0.1:8080",
  ]);
  assert.equal(same.code, 2);
  assert.match(
    same.stderr,
    /^edgevpn: --listen \(":8080"\) and --api-listen \("127\.0\.0\.1:8080"\) would bind the same address/,
  );
  assert.equal(same.stderr.trim().split("\n").length, 1);
  const bad = await runCli(["proxy", "--token", token, "--listen", "nowhere"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^edgevpn: --listen: expected host:port/);
  const env = await runCli(["proxy", "--token", token], { PROXYDEADINTERVAL: "soon" });
  assert.equal(env.code, 2);
  assert.match(env.stderr, /PROXYDEADINTERVAL: expected a number of seconds/);
});
