/**
 * `join --dns` in network namespaces: node A serves DNS on its VPN address; node B asks it
 * through the VPN for the machines' names and gets their VPN addresses. Both nodes share the
 * test machine's hostname, so the collision rule applies. Needs root and /dev/net/tun.
 */
import assert from "node:assert/strict";
import { hostnameLabel } from "../../lib/dns/zone.ts";
import { namespaceSkipReason } from "../../scripts/netns.ts";
import { QUICK_FLAGS, withNodePair } from "../helpers/node_pair.ts";
import { CliProcess, eventually } from "../helpers/process.ts";
import { dig, digSkipReason } from "../dns/helpers.ts";
import { pingUntilReply } from "./vpn_helpers.ts";

const skip = namespaceSkipReason({ tun: true }) ?? digSkipReason();
if (skip) console.log(`join --dns namespace test skipped: ${skip}`);

Deno.test({
  name:
    "join --dns on the VPN address: members resolve machine names to VPN addresses through the VPN",
  ignore: skip !== undefined,
  fn: () =>
    withNodePair({ prefix: "evd", subnet: 243, tempPrefix: "evdnsns" }, async (p) => {
      const { pair } = p;
      const ids = [p.a.id, p.b.id];
      const args = (side: typeof p.a, i: number) => [
        "join",
        ...side.flags,
        ...QUICK_FLAGS,
        "--address",
        `10.1.0.${i + 1}/24`,
        "--state-dir",
        side.dir,
      ];
      const nodes = [
        new CliProcess([...args(p.a, 0), "--dns", "10.1.0.1:53", "--dns-forwarder=false"], {
          netns: pair.a.name,
        }),
        new CliProcess(args(p.b, 1), { netns: pair.b.name }),
      ];
      p.processes.push(...nodes);
      await nodes[0].waitFor(/DNS server listening on 10\.1\.0\.1:53/, 60_000);
      await nodes[1].waitFor(/VPN up/, 60_000);
      await pingUntilReply(pair.b, "10.1.0.1");

      const ask = (name: string, type = "A", tcp = false) =>
        dig(53, name, type, { server: "10.1.0.1", netns: pair.b.name, tcp });
      for (const [i, id] of ids.entries()) {
        await eventually(
          async () => (await ask(`${id.peerId}.edgevpn`)).answers[0]?.data === `10.1.0.${i + 1}`,
          `${id.peerId}.edgevpn. from B through the VPN`,
          30_000,
        );
      }
      // Same hostname on both: the bare name answers neither; each has a suffixed name.
      const label = hostnameLabel(Deno.hostname());
      if (label) {
        assert.equal((await ask(`${label}.edgevpn`)).status, "NXDOMAIN");
        for (const [i, id] of ids.entries()) {
          const suffixed: string = `${label}-${id.peerId.slice(-6).toLowerCase()}.edgevpn`;
          const r = await ask(suffixed, "A", true);
          assert.deepEqual(r.answers.map((a) => a.data), [`10.1.0.${i + 1}`], suffixed);
        }
      }
      const ptr = await ask("2.0.1.10.in-addr.arpa", "PTR");
      assert.equal(ptr.answers.length, 1);
      assert.match(ptr.answers[0].data, /\.edgevpn\.$/);
      for (const n of nodes.reverse()) {
        const { code } = await n.stop();
        assert.equal(code, 0, n.log.slice(-2000));
      }
    }),
});
