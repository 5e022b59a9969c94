/**
 * The VPN between a Go EdgeVPN v0.35 node (`edgevpn`, 10.1.0.1) and our `join` (10.1.0.2), each
 * in its own network namespace on a veth LAN, on real TUN devices, both enforcing ledger
 * ownership: each lists the other's signed machine entry, pings cross the VPN both ways, and TCP
 * transfers arrive byte-exact both ways over Go's `/edgevpn/0.1` protocol.
 * Needs EDGEVPN_GO, root and /dev/net/tun; skipped with the reason otherwise.
 */
import assert from "node:assert/strict";
import { CliProcess, eventually } from "../helpers/process.ts";
import { QUICK_FLAGS } from "../helpers/node_pair.ts";
import { pingUntilReply, transferOverTcp } from "../e2e/vpn_helpers.ts";
import {
  droppedMessages,
  GoProcess,
  interopGoBinary,
  unexpectedViolations,
  UnixApi,
  withGoPair,
} from "./go_edgevpn.ts";

const go = interopGoBinary("Go EdgeVPN VPN interop tests", { tun: true });

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
  fn: () =>
    withGoPair(go!.path, { prefix: "evh", subnet: 241, tempPrefix: "evgovpn" }, async (p) => {
      const { processes, defer } = p;
      const [goId, ourId] = [p.a.id, p.b.id];
      const common = (flags: string[], socket: string) => [
        ...flags,
        "--api",
        "--api-listen",
        `unix://${socket}`,
        "--ownership",
        "enforce",
        ...QUICK_FLAGS,
      ];
      const goNode = new GoProcess(go!.path, [
        ...common(p.a.flags, p.a.socket),
        "--address",
        "10.1.0.1/24",
      ], { netns: p.a.ns.name, home: p.a.dir });
      processes.push(goNode);
      const ours = new CliProcess([
        "join",
        ...common(p.b.flags, p.b.socket),
        "--address",
        "10.1.0.2/24",
        "--state-dir",
        p.b.dir,
      ], { netns: p.b.ns.name });
      processes.push(ours);
      await ours.waitFor(/VPN up: interface \S+ with address 10\.1\.0\.2\/24/, 60_000);
      await goNode.waitFor(/http server started/);
      const goApi = new UnixApi(p.a.socket);
      const ourApi = new UnixApi(p.b.socket);
      defer(() => goApi.close());
      defer(() => ourApi.close());

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

      await pingUntilReply(p.a.ns, "10.1.0.2");
      await pingUntilReply(p.b.ns, "10.1.0.1");
      for (
        const [from, to, address] of [[p.b.ns, p.a.ns, "10.1.0.1"], [
          p.a.ns,
          p.b.ns,
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
    }),
});
