/**
 * Egress nodes (`edgevpn --egress` and `join` with `EGRESS=true`) and `edgevpn proxy` as
 * separate processes in namespaces: destinations that exist only on the egress nodes' own
 * loopback answer HTTP, HTTPS (CONNECT) and SOCKS5 asked in the proxy's namespace; after one
 * egress node is killed, every request goes through the other.
 */
import assert from "node:assert/strict";
import { encodeToken, generateNetworkConfig } from "../../lib/config/token.ts";
import { generateIdentity } from "../../lib/crypto/identity.ts";
import { PRIVKEY_FILE } from "../../lib/node/privkey.ts";
import { CliProcess, eventually, LoggedProcess } from "../helpers/process.ts";
import {
  curl,
  curlSkipReason,
  opensslSkipReason,
  selfSignedCertificate,
} from "../proxy/helpers.ts";
import { createNamespaceLan, namespaceSkipReason } from "../../scripts/netns.ts";

const skip = namespaceSkipReason({ tun: true }) ?? curlSkipReason() ?? opensslSkipReason();
if (skip) console.log(`proxy namespace test skipped: ${skip}`);

const TOOL = new URL("./http_target_tool.ts", import.meta.url).pathname;

Deno.test({
  name:
    "edgevpn --egress and join (EGRESS=true) in two namespaces, proxy in a third: HTTP, HTTPS and SOCKS5 reach the egress nodes' loopback; killing one egress node keeps requests working",
  ignore: skip !== undefined,
  async fn() {
    const lan = await createNamespaceLan("evp", 3, 245);
    const dir = await Deno.makeTempDir({ prefix: "evproxyns" });
    const processes: LoggedProcess[] = [];
    try {
      const tls = await selfSignedCertificate();
      const ids = await Promise.all(lan.nodes.map(() => generateIdentity()));
      const token = encodeToken(generateNetworkConfig());
      const peer = (i: number) => `/ip4/${lan.nodes[i].address}/tcp/4001/p2p/${ids[i].peerId}`;
      for (const [i, id] of ids.entries()) {
        await Deno.mkdir(`${dir}/${i}`);
        await Deno.writeFile(`${dir}/${i}/${PRIVKEY_FILE}`, id.privateKeyProtobuf, { mode: 0o600 });
      }
      const common = (i: number) => [
        "--token",
        token,
        "--state-dir",
        `${dir}/${i}`,
        "--privkey-cache-dir",
        `${dir}/${i}`,
        "--privkey-cache",
        "--listen-maddrs",
        `/ip4/${lan.nodes[i].address}/tcp/4001`,
        "--discovery-bootstrap-peers",
        lan.nodes.map((_, j) => j).filter((j) => j !== i).map(peer).join(","),
        "--dht=false",
        "--mdns=false",
        "--ledger-synchronization-interval",
        "1",
      ];
      const targets: LoggedProcess[] = [];
      for (const i of [0, 1]) {
        const http = new LoggedProcess([Deno.execPath(), "run", "-A", TOOL, "8000"], {
          netns: lan.nodes[i].name,
        });
        const https = new LoggedProcess(
          [Deno.execPath(), "run", "-A", TOOL, "8443", tls.certPath, tls.keyPath],
          { netns: lan.nodes[i].name },
        );
        targets.push(http, https);
        processes.push(http, https);
        // Node 0 runs the root command with flags, node 1 `join` with the environment.
        const egressArgs = i === 0 ? ["--egress", "--egress-announce-time", "1"] : ["join"];
        processes.push(
          new CliProcess([
            ...egressArgs,
            ...common(i),
            "--address",
            `10.1.0.${i + 1}/24`,
            "--aliveness-healthcheck-interval",
            "1",
          ], {
            netns: lan.nodes[i].name,
            env: i === 0 ? {} : { EGRESS: "true", EGRESSANNOUNCE: "1" },
          }),
        );
      }
      const proxy = new CliProcess([
        "proxy",
        ...common(2),
        "--listen",
        "127.0.0.1:3128",
        "--interval",
        "1",
      ], { netns: lan.nodes[2].name });
      processes.push(proxy);
      for (const t of targets) await t.waitFor(/listening \d+/, 60_000);
      await proxy.waitFor(/proxy listening on 127\.0\.0\.1:3128/, 60_000);
      const ns = lan.nodes[2].name;
      const served = () => targets.map((t) => (t.log.match(/^request /gm) ?? []).length);
      const get = (args: string[]) => curl(args, ns);

      // Both egress nodes must be usable: wait until each has served a request.
      await eventually(
        async () => {
          await get(["-x", "http://127.0.0.1:3128", "http://127.0.0.1:8000/warmup"]);
          const [a, , c] = served();
          return a > 0 && c > 0;
        },
        "requests through both egress nodes",
        60_000,
      );

      const http = await get(["-x", "http://127.0.0.1:3128", "http://127.0.0.1:8000/plain"]);
      assert.equal(http.stdout, "hello /plain", http.stderr);
      const https = await get([
        "--cacert",
        tls.certPath,
        "-x",
        "http://127.0.0.1:3128",
        "https://127.0.0.1:8443/secure",
      ]);
      assert.equal(https.stdout, "hello /secure", https.stderr);
      const socks = await get([
        "--socks5-hostname",
        "127.0.0.1:3128",
        "http://localhost:8000/socks",
      ]);
      assert.equal(socks.stdout, "hello /socks", socks.stderr);
      // The destinations exist only on the egress nodes' loopback: nothing answers in B's.
      const direct = await get(["http://127.0.0.1:8000/"]);
      assert.notEqual(direct.code, 0);

      // Egress node A dies without a word; its entries still look alive to the proxy.
      await processes[2].kill();
      const before = served();
      for (let i = 0; i < 6; i++) {
        const r = await get(["-x", "http://127.0.0.1:3128", `http://127.0.0.1:8000/after${i}`]);
        assert.equal(r.stdout, `hello /after${i}`, r.stderr);
        const s = await get([
          "--cacert",
          tls.certPath,
          "--socks5",
          "127.0.0.1:3128",
          `https://127.0.0.1:8443/s${i}`,
        ]);
        assert.equal(s.stdout, `hello /s${i}`, s.stderr);
      }
      const after = served();
      assert.equal(after[2] - before[2] + after[3] - before[3], 12, "all through the survivor");
      const { code } = await proxy.stop();
      assert.equal(code, 0, proxy.log.slice(-2000));
    } finally {
      for (const p of processes) await p.kill();
      await lan.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
