/**
 * `edgevpn dns` and `edgevpn dns add|rm|ls` as users run them: records added through one
 * node's API answer on another node's DNS server (asked with dig), bad input gets one line
 * and a non-zero exit.
 */
import assert from "node:assert/strict";
import { encodeToken, generateNetworkConfig } from "../../lib/config/token.ts";
import { runCli } from "../helpers/cli.ts";
import { CliProcess, eventually } from "../helpers/process.ts";
import { dig, digSkipReason } from "../dns/helpers.ts";

const skip = digSkipReason();
if (skip) console.log(`dns CLI test skipped: ${skip}`);

const UNREACHABLE = "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";

Deno.test({
  name: "dns add, ls and rm through one node's API; another node's `edgevpn dns` answers",
  ignore: skip !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "evdns" });
    const token = encodeToken(generateNetworkConfig());
    const common = [
      "--token",
      token,
      "--listen-maddrs",
      "/ip4/127.0.0.1/tcp/0",
      "--mdns=false",
      "--dht=false",
      "--ledger-synchronization-interval",
      "1",
    ];
    const api = new CliProcess([
      "api",
      ...common,
      "--state-dir",
      dir,
      "--listen",
      "127.0.0.1:0",
      "--discovery-bootstrap-peers",
      UNREACHABLE,
    ]);
    let dns: CliProcess | undefined;
    try {
      const address = (await api.waitFor(/Node Addresses: (\S+)/))[1];
      const url = `http://${(await api.waitFor(/API listening on (\S+)/))[1]}`;
      dns = new CliProcess([
        "dns",
        ...common,
        "--listen",
        "127.0.0.1:0",
        "--dns-forwarder=false",
        "--discovery-bootstrap-peers",
        address,
      ]);
      const port = Number((await dns.waitFor(/DNS server listening on 127\.0\.0\.1:(\d+)/))[1]);
      const client = ["--api-url", url, "--state-dir", dir];

      const added = await runCli(["dns", "add", "db.mesh", "A", "10.1.0.9", ...client]);
      assert.equal(added.code, 0, added.stderr);
      assert.equal(added.stdout, "added ^db\\.mesh\\.$ A 10.1.0.9\n");
      const txt = await runCli(["dns", "add", ...client, "db.mesh", "TXT", '"build 42"', "ok"]);
      assert.equal(txt.code, 0, txt.stderr);
      const regex = await runCli(["dns", "add", ".*\\.svc\\.mesh\\.", "A", "10.1.0.10", ...client]);
      assert.equal(regex.code, 0, regex.stderr);

      await eventually(
        async () => (await dig(port, "db.mesh", "A")).answers[0]?.data === "10.1.0.9",
        "db.mesh on the other node",
      );
      // The TXT record is a later write of the same key: the A record alone may be there first.
      await eventually(
        async () =>
          (await dig(port, "db.mesh", "TXT", { tcp: true })).answers.map((r) => r.data)
            .join("|") === '"build 42" "ok"',
        "the TXT record of db.mesh over TCP on the other node",
      );
      await eventually(
        async () => (await dig(port, "api.svc.mesh", "A")).answers[0]?.data === "10.1.0.10",
        "the regular expression on the other node",
      );
      assert.equal((await dig(port, "xdb.mesh", "A")).status, "REFUSED", "db.mesh is exact");

      const ls = await runCli(["dns", "ls", ...client]);
      assert.equal(ls.code, 0, ls.stderr);
      assert.match(ls.stdout, /^NAME\s+TYPE\s+DATA\n/);
      assert.match(ls.stdout, /\^db\\\.mesh\\\.\$\s+A\s+10\.1\.0\.9\n/);
      assert.match(ls.stdout, /\^db\\\.mesh\\\.\$\s+TXT\s+"build 42" ok\n/);

      const rmType = await runCli(["dns", "rm", "db.mesh", "A", ...client]);
      assert.equal(rmType.code, 0, rmType.stderr);
      await eventually(
        async () => (await dig(port, "db.mesh", "A")).status === "REFUSED",
        "the A record removed",
      );
      const kept = await dig(port, "db.mesh", "TXT");
      assert.equal(kept.answers.length, 1, `TXT kept: ${JSON.stringify(kept)}`);
      const rmAll = await runCli(["dns", "rm", ".*\\.svc\\.mesh\\.", ...client]);
      assert.equal(rmAll.code, 0, rmAll.stderr);
      await eventually(
        async () => (await dig(port, "api.svc.mesh", "A")).status === "REFUSED",
        "the expression removed",
      );

      // Bad input: one line, non-zero exit, nothing sent.
      const cases: [string[], number, RegExp][] = [
        [["dns", "add", "db.mesh", "A", "10.1.0.300", ...client], 2, /A record: expected an IPv4/],
        [["dns", "add", "db.mesh", "BOGUS", "x", ...client], 2, /expected a record type/],
        [["dns", "add", "((", "A", "10.1.0.1", ...client], 2, /regular expression/],
        [["dns", "rm", "nothing.mesh", ...client], 1, /No DNS record for "nothing\.mesh"/],
        [
          ["dns", "add", "x.mesh", "A", "10.1.0.1", "--api-url", url, "--state-dir", `${dir}/none`],
          1,
          /answered 401.*no API token/,
        ],
        [["dns", "ls", "--api-url", "http://127.0.0.1:9"], 1, /Cannot reach the API/],
      ];
      for (const [args, code, message] of cases) {
        const r = await runCli(args);
        assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, message);
        assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      }
      assert.equal((await dns.stop()).code, 0);
      assert.equal((await api.stop()).code, 0);
    } finally {
      await dns?.kill();
      await api.kill();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("edgevpn dns: bad flags exit 2 and a busy address exits 1, each with one line", async () => {
  const token = encodeToken(generateNetworkConfig());
  const busy = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    const port = (busy.addr as Deno.NetAddr).port;
    const base = ["dns", "--token", token, "--mdns=false", "--dht=false"];
    const cases: [string[], number, RegExp][] = [
      [[...base, "--listen", "nowhere:53"], 2, /--listen: expected an IP address/],
      [[...base, "--listen", "127.0.0.1:0", "--dns-zone", "a..b"], 2, /--dns-zone: expected/],
      [[...base, "--listen", "127.0.0.1:0", "--dns-cache-size", "-1"], 2, /--dns-cache-size/],
      [
        [...base, "--listen", "127.0.0.1:0", "--dns-forward-server", "dns.google"],
        2,
        /--dns-forward-server/,
      ],
      [
        [...base, "--listen", `127.0.0.1:${port}`, "--discovery-bootstrap-peers", UNREACHABLE],
        1,
        /Cannot serve DNS on 127\.0\.0\.1:\d+: the address is in use/,
      ],
      [["join", "--dns", "300.0.0.1:53", "--token", token], 2, /--dns: expected an IP address/],
    ];
    for (const [args, code, message] of cases) {
      const r = await runCli(args);
      assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.ok(!/\n\s+at /.test(r.stderr), "no stack trace");
    }
  } finally {
    busy.close();
  }
});
