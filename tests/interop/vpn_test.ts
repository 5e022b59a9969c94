/**
 * The VPN between a Go EdgeVPN v0.35 node (`edgevpn`, 10.1.0.1) and our `join` (10.1.0.2), each
 * in its own network namespace on a veth LAN, on real TUN devices, both enforcing ledger
 * ownership: each lists the other's signed machine entry, pings cross the VPN both ways, and TCP
 * transfers arrive byte-exact both ways over Go's `/edgevpn/0.1` protocol.
 * Needs EDGEVPN_GO, root and /dev/net/tun; skipped with the reason otherwise.
 */
import assert from "node:assert/strict";
import { createNamespacePair } from "../../scripts/netns.ts";
import { CliProcess, eventually, type LoggedProcess } from "../helpers/process.ts";
import { pingUntilReply, transferOverTcp } from "../e2e/vpn_helpers.ts";
import {
  droppedMessages,
  GoProcess,
  interopGoBinary,
  unexpectedViolations,
  UnixApi,
  writeNodeKey,
} from "./go_edgevpn.ts";

const go = interopGoBinary("Go EdgeVPN VPN interop tests", { tun: true });

/** Fast ledger rounds and heartbeats; no DHT, no mDNS: each node knows only the other. */
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

/** The part of a machine entry both APIs serve. */
interface Machine {
  PeerID: string;
  Address: string;
  Online?: boolean;
}

const MB = 1024 * 1024;

Deno.test({
  name: "interop VPN: Go EdgeVPN and our join ping and carry TCP both ways, byte-exact",
  ignore: go === undefined,
  async fn() {
    const binary = go!.path;
    const pair = await createNamespacePair("evh", 241);
    const dir = await Deno.makeTempDir({ prefix: "evgovpn" });
    const processes: LoggedProcess[] = [];
    const apis: UnixApi[] = [];
    try {
      const generated = await new Deno.Command(binary, { args: ["-g", "-b"], clearEnv: true })
        .output();
      assert.ok(generated.success, "Go generates a token");
      const token = new TextDecoder().decode(generated.stdout).trim();
      const goId = await writeNodeKey(`${dir}/go`);
      const ourId = await writeNodeKey(`${dir}/deno`);
      const goAddr = `/ip4/${pair.a.address}/tcp/4001`;
      const ourAddr = `/ip4/${pair.b.address}/tcp/4001`;
      const common = (self: string, peer: string, keyDir: string, socket: string) => [
        "--token",
        token,
        "--api",
        "--api-listen",
        `unix://${socket}`,
        "--listen-maddrs",
        self,
        "--discovery-bootstrap-peers",
        peer,
        "--privkey-cache",
        "--privkey-cache-dir",
        keyDir,
        "--ownership",
        "enforce",
        ...QUICK,
      ];
      const goNode = new GoProcess(binary, [
        ...common(goAddr, `${ourAddr}/p2p/${ourId.peerId}`, `${dir}/go`, `${dir}/go.sock`),
        "--address",
        "10.1.0.1/24",
      ], { netns: pair.a.name, home: `${dir}/go` });
      processes.push(goNode);
      const ours = new CliProcess([
        "join",
        ...common(ourAddr, `${goAddr}/p2p/${goId.peerId}`, `${dir}/deno`, `${dir}/deno.sock`),
        "--address",
        "10.1.0.2/24",
        "--state-dir",
        `${dir}/deno`,
      ], { netns: pair.b.name });
      processes.push(ours);
      await ours.waitFor(/VPN up: interface \S+ with address 10\.1\.0\.2\/24/, 60_000);
      await goNode.waitFor(/http server started/);
      const goApi = new UnixApi(`${dir}/go.sock`);
      const ourApi = new UnixApi(`${dir}/deno.sock`);
      apis.push(goApi, ourApi);

      // Each side lists both signed machine entries, and Go counts our heartbeats (Online).
      const machines = async (api: UnixApi) => await api.get("/api/machines") as Machine[];
      const listsBoth = async (api: UnixApi) => {
        const list = await machines(api);
        return list.some((m) => m.PeerID === goId.peerId && m.Address === "10.1.0.1") &&
          list.some((m) => m.PeerID === ourId.peerId && m.Address === "10.1.0.2" && m.Online);
      };
      await eventually(
        () => listsBoth(goApi),
        "both machines (ours online) on the Go node",
        60_000,
      );
      await eventually(() => listsBoth(ourApi), "both machines on our node", 60_000);

      await pingUntilReply(pair.a, "10.1.0.2");
      await pingUntilReply(pair.b, "10.1.0.1");
      for (
        const [from, to, address] of [[pair.b, pair.a, "10.1.0.1"], [
          pair.a,
          pair.b,
          "10.1.0.2",
        ]] as const
      ) {
        const { sent, received } = await transferOverTcp(from, to, address, 4 * MB);
        assert.equal(received.bytes, 4 * MB, `bytes received in ${to.name}`);
        assert.equal(received.sha256, sent.sha256, `data received in ${to.name}`);
      }

      assert.deepEqual(await droppedMessages(ourApi), {}, "messages our node dropped");
      assert.deepEqual(unexpectedViolations(goNode.log), [], "violations on the Go node");
      assert.deepEqual(unexpectedViolations(ours.log), [], "violations on our node");
      assert.equal((await ours.stop()).code, 0, ours.log.slice(-2000));
    } finally {
      for (const api of apis) api.close();
      for (const p of processes) await p.kill();
      await pair.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
