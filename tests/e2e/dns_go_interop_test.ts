/**
 * DNS records between Go EdgeVPN v0.35.4 and us, in one network across two namespaces: a
 * record POSTed to Go's API answers on our `edgevpn dns`, and a record added with our
 * `edgevpn dns add` answers on Go's `edgevpn dns` (UDP). Runs when EDGEVPN_GO names the Go
 * binary; skipped with the reason otherwise.
 */
import assert from "node:assert/strict";
import { encodeToken, generateNetworkConfig } from "../../lib/config/token.ts";
import { withNamespacePair, writeNodeKey } from "../helpers/node_pair.ts";
import { CliProcess, eventually } from "../helpers/process.ts";
import { dig, digSkipReason } from "../dns/helpers.ts";
import { GoProcess, interopGoBinary } from "../interop/go_edgevpn.ts";

const digSkip = digSkipReason();
if (digSkip) console.log(`Go DNS interop test skipped: ${digSkip}`);
const go = digSkip ? undefined : interopGoBinary("Go DNS interop test");

const TOOL = new URL("./api_load_tool.ts", import.meta.url).pathname;

Deno.test({
  name: "a record written by Go resolves on our DNS server, and one written by us on Go's",
  ignore: go === undefined,
  fn: () =>
    withNamespacePair({ prefix: "evq", subnet: 244, tempPrefix: "evgodns" }, async (scope) => {
      const { pair, dir, processes: procs } = scope;
      const token = encodeToken(generateNetworkConfig());
      // Our two nodes (API and DNS) with known peer IDs, for everyone's bootstrap lists.
      const ids = [await writeNodeKey(`${dir}/0`), await writeNodeKey(`${dir}/1`)];
      const ours = (i: number) => `/ip4/${pair.b.address}/tcp/${4001 + i}/p2p/${ids[i].peerId}`;
      // Go is configured by its environment variables here.
      const goNode = (args: string[], port: number) =>
        procs.push(
          new GoProcess(go!.path, args, {
            netns: pair.a.name,
            home: dir,
            env: {
              EDGEVPNTOKEN: token,
              EDGEVPNLISTENMADDRS: `/ip4/${pair.a.address}/tcp/${port}`,
              EDGEVPNBOOTSTRAPPEERS: `${ours(0)},${ours(1)}`,
              EDGEVPNDHT: "false",
              EDGEVPNMDNS: "false",
              EDGEVPNLEDGERSYNCINTERVAL: "1",
            },
          }),
        );
      const common = (i: number) => [
        "--token",
        token,
        "--privkey-cache",
        "--privkey-cache-dir",
        `${dir}/${i}`,
        "--listen-maddrs",
        `/ip4/${pair.b.address}/tcp/${4001 + i}`,
        "--discovery-bootstrap-peers",
        ours(1 - i),
        "--dht=false",
        "--mdns=false",
        "--ledger-synchronization-interval",
        "1",
      ];
      const api = new CliProcess([
        "api",
        ...common(0),
        "--listen",
        "127.0.0.1:8080",
        "--state-dir",
        `${dir}/0`,
      ], { netns: pair.b.name });
      procs.push(api);
      const dns = new CliProcess([
        "dns",
        ...common(1),
        "--listen",
        "127.0.0.1:5353",
        "--dns-forwarder=false",
      ], { netns: pair.b.name });
      procs.push(dns);
      await api.waitFor(/API listening/);
      await dns.waitFor(/DNS server listening/);
      // Go's nodes dial ours once when they start: ours listen first.
      goNode(["api", "--listen", "127.0.0.1:8080"], 4001);
      goNode(["dns", "--listen", "127.0.0.1:5353", "--dns-forwarder=false"], 4002);

      // Go's API takes the record (retried until Go's API is up).
      await eventually(
        async () => {
          const out = await pair.a.run(Deno.execPath(), [
            "run",
            "-A",
            TOOL,
            "call",
            "POST",
            "http://127.0.0.1:8080/api/dns",
            JSON.stringify({
              Regex: "^go\\.mesh\\.$",
              Records: { A: "10.1.0.51", TXT: "from-go" },
            }),
          ]);
          return JSON.parse(out).status === 200;
        },
        "Go's API took the record",
        30_000,
      );
      await eventually(
        async () => {
          const r = await dig(5353, "go.mesh", "A", { netns: pair.b.name });
          return r.answers[0]?.data === "10.1.0.51";
        },
        "Go's record answering on our DNS server",
        60_000,
      ).catch((e) => {
        throw new Error(
          `${e.message}\nour api node:\n${api.log.slice(-3000)}\nour dns node:\n${
            dns.log.slice(-3000)
          }`,
        );
      });
      const tcp = await dig(5353, "go.mesh", "TXT", { netns: pair.b.name, tcp: true });
      assert.deepEqual(tcp.answers.map((r) => r.data), ['"from-go"']);

      // Ours, through our CLI and our API, answers on Go's dns (UDP).
      const add = new CliProcess([
        "dns",
        "add",
        "deno.mesh",
        "A",
        "10.1.0.52",
        "--api-url",
        "http://127.0.0.1:8080",
        "--state-dir",
        `${dir}/0`,
      ], { netns: pair.b.name });
      assert.equal((await add.child.status).code, 0, add.log);
      await eventually(
        async () => {
          const r = await dig(5353, "deno.mesh", "A", { netns: pair.a.name });
          return r.answers[0]?.data === "10.1.0.52";
        },
        "our record answering on Go's DNS server",
        60_000,
      );
    }),
});
