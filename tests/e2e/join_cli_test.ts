/**
 * `edgevpn join` as users run it, in network namespaces: the first node creates the network and
 * prints its token, two more join with it, DHCP gives the three distinct addresses and every
 * pair pings. Without CAP_NET_ADMIN, join explains how to grant it and exits 1.
 * Needs root and /dev/net/tun; skipped with the reason otherwise.
 */
import assert from "node:assert/strict";
import { generateIdentity } from "../../lib/crypto/identity.ts";
import { PRIVKEY_FILE } from "../../lib/node/privkey.ts";
import { namespaceSkipReason } from "../../scripts/netns.ts";
import { runCli } from "../helpers/cli.ts";
import { CliProcess } from "../helpers/process.ts";
import { createNamespaceLan, pingUntilReply } from "./vpn_helpers.ts";

const skip = namespaceSkipReason({ tun: true });
if (skip) console.log(`join CLI namespace tests skipped: ${skip}`);

/** Fast ledger and heartbeat rounds, so that DHCP decides within seconds. */
const QUICK = [
  "--ledger-announce-interval",
  "2",
  "--ledger-synchronization-interval",
  "1",
  "--aliveness-healthcheck-interval",
  "2",
  "--dht=false",
];

Deno.test({
  name: "join: the first node creates the network, DHCP gives 3 nodes distinct addresses, all ping",
  ignore: skip !== undefined,
  async fn() {
    const lan = await createNamespaceLan("evj", 3, 236);
    const dir = await Deno.makeTempDir({ prefix: "evjoin" });
    const nodes: CliProcess[] = [];
    try {
      // Keys written ahead in each node's key cache, so that every node's bootstrap list can
      // name the others (join caches its key by default).
      const ids = await Promise.all(lan.nodes.map(() => generateIdentity()));
      for (const [i, id] of ids.entries()) {
        await Deno.mkdir(`${dir}/${i}`, { recursive: true });
        await Deno.writeFile(`${dir}/${i}/${PRIVKEY_FILE}`, id.privateKeyProtobuf, { mode: 0o600 });
      }
      const args = (i: number) => [
        "join",
        "--dhcp",
        "--state-dir",
        `${dir}/${i}`,
        "--privkey-cache-dir",
        `${dir}/${i}`,
        "--lease-dir",
        `${dir}/${i}/leases`,
        "--listen-maddrs",
        `/ip4/${lan.nodes[i].address}/tcp/4001`,
        "--discovery-bootstrap-peers",
        lan.nodes.flatMap((ns, j) =>
          j === i ? [] : [`/ip4/${ns.address}/tcp/4001/p2p/${ids[j].peerId}`]
        )
          .join(","),
        ...QUICK,
      ];
      nodes.push(new CliProcess(args(0), { netns: lan.nodes[0].name }));
      const created = await nodes[0].waitFor(/Network token[^\n]*\n\n(\S+)\n/);
      const token = created[1];
      // The printed command keeps the token out of the process list.
      assert.match(nodes[0].log, /sudo \.\/deno task join --dhcp --token-file -\n/);
      await Deno.writeTextFile(`${dir}/token`, `${token}\n`, { mode: 0o600 });
      nodes.push(
        new CliProcess([...args(1), "--token-file", `${dir}/token`], { netns: lan.nodes[1].name }),
      );
      nodes.push(new CliProcess([...args(2), "--token", token], { netns: lan.nodes[2].name }));
      const addresses = await Promise.all(
        nodes.map(async (n) =>
          (await n.waitFor(/VPN up: interface \S+ with address ([\d.]+)\/24/, 60_000))[1]
        ),
      );
      assert.equal(new Set(addresses).size, 3, `distinct addresses: ${addresses.join(", ")}`);
      for (const a of addresses) assert.match(a, /^10\.1\.0\.\d+$/);
      for (const [i, ns] of lan.nodes.entries()) {
        for (const [j, to] of addresses.entries()) if (j !== i) await pingUntilReply(ns, to);
      }
      // The network the first node created is kept and reused by its next run.
      const saved = await Deno.readTextFile(`${dir}/0/network.yaml`);
      assert.match(saved, /otp:/);
      for (const n of nodes.splice(0).reverse()) {
        const { code } = await n.stop();
        assert.equal(code, 0, n.log.slice(-2000));
      }
    } finally {
      for (const n of nodes) await n.kill();
      await lan.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

function tunMissing(): boolean {
  try {
    Deno.statSync("/dev/net/tun");
    return false;
  } catch {
    console.log("join privilege test skipped: /dev/net/tun is missing");
    return true;
  }
}

Deno.test({
  name: "join without CAP_NET_ADMIN says how to grant it, in one line, and exits 1",
  ignore: tunMissing(),
  async fn() {
    const token = (await runCli(["-g", "-b"])).stdout.trim();
    // A local bootstrap list all the same, should the check ever let the node start.
    const nobody = `/ip4/127.0.0.1/tcp/9/p2p/${(await generateIdentity()).peerId}`;
    const args = ["join", "--token", token, "--discovery-bootstrap-peers", nobody, "--dht=false"];
    let result;
    if (Deno.uid() === 0) {
      // Root without the capability: drop CAP_NET_ADMIN from every set before exec.
      const out = await new Deno.Command("setpriv", {
        args: [
          "--inh-caps=-net_admin",
          "--bounding-set=-net_admin",
          Deno.execPath(),
          "run",
          "-A",
          new URL("../../cli.ts", import.meta.url).pathname,
          ...args,
        ],
        env: { NO_COLOR: "1" },
        stdin: "null",
        // Killed (and failing below) should the node start after all.
        signal: AbortSignal.timeout(30_000),
      }).output().catch((e) => {
        throw new Error(`setpriv (util-linux) is needed for this test as root: ${e}`);
      });
      const dec = new TextDecoder();
      result = { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
    } else {
      result = await runCli(args);
    }
    assert.equal(result.code, 1, result.stderr);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0], /CAP_NET_ADMIN/);
    assert.match(lines[0], /sudo/);
  },
});
