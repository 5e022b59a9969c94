/**
 * `join --api` in network namespaces, as users run it: /metrics byte counters grow by at least
 * what a TCP transfer through the VPN carried, and 1 000 API requests per second from loopback
 * for 10 s leave the VPN forwarding (no ping lost) and the node's RSS bounded.
 * Needs root and /dev/net/tun; skipped with the reason otherwise.
 */
import assert from "node:assert/strict";
import { type Namespace, namespaceSkipReason } from "../../scripts/netns.ts";
import { QUICK_FLAGS, withNodePair } from "../helpers/node_pair.ts";
import { CliProcess } from "../helpers/process.ts";
import { parseMetrics, valueOf } from "../metrics/helpers.ts";
import { pingUntilReply } from "./vpn_helpers.ts";

const skip = namespaceSkipReason({ tun: true });
if (skip) console.log(`API namespace tests skipped: ${skip}`);

const LOAD = new URL("./api_load_tool.ts", import.meta.url).pathname;
const TCP = new URL("./vpn_tcp_tool.ts", import.meta.url).pathname;
const API = "http://127.0.0.1:8080";
const TRANSFER = 8 * 1024 * 1024;

async function scrape(ns: Namespace) {
  return parseMetrics(await ns.run(Deno.execPath(), ["run", "-A", LOAD, "get", `${API}/metrics`]));
}

/** Sends `bytes` over TCP from `from` to `address` (on `to`); returns the receiver's count. */
async function transfer(from: Namespace, to: Namespace, address: string, bytes: number) {
  const recv = to.spawn(Deno.execPath(), ["run", "-A", TCP, "recv", address, "7000"]);
  const received = recv.output();
  await from.run(Deno.execPath(), ["run", "-A", TCP, "send", address, "7000", String(bytes)]);
  const lines = new TextDecoder().decode((await received).stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]).bytes as number;
}

Deno.test({
  name: "join --api: /metrics counts a VPN transfer; 1000 requests/s for 10 s lose no ping",
  ignore: skip !== undefined,
  fn: () =>
    withNodePair({ prefix: "eva", subnet: 237, tempPrefix: "evapi" }, async (p) => {
      const { pair } = p;
      const ids = [p.a.id, p.b.id];
      const nodes = [p.a, p.b].map((side, i) =>
        new CliProcess([
          "join",
          ...side.flags,
          ...QUICK_FLAGS,
          "--address",
          `10.1.0.${i + 1}/24`,
          "--api",
          "--api-listen",
          "127.0.0.1:8080",
          "--state-dir",
          side.dir,
        ], { netns: side.ns.name })
      );
      p.processes.push(...nodes);
      for (const node of nodes) {
        await node.waitFor(/VPN up: interface/, 60_000);
        await node.waitFor(
          /Dashboard \(one-time login link\): http:\/\/127\.0\.0\.1:8080\/login\?code=/,
        );
      }
      await pingUntilReply(pair.a, "10.1.0.2");

      const beforeA = await scrape(pair.a);
      const beforeB = await scrape(pair.b);
      assert.equal(await transfer(pair.a, pair.b, "10.1.0.2", TRANSFER), TRANSFER);
      const afterA = await scrape(pair.a);
      const afterB = await scrape(pair.b);
      const grew = (before: typeof afterA, after: typeof afterA, name: string, labels = {}) =>
        valueOf(after, name, labels) - valueOf(before, name, labels);
      const peerB = { peer: ids[1].peerId, direction: "out" };
      const peerA = { peer: ids[0].peerId, direction: "in" };
      const sentVpn = ["fastGso", "fast", "legacy"].reduce(
        (n, protocol) =>
          n + grew(beforeA, afterA, "edgevpn_vpn_bytes_total", { direction: "out", protocol }),
        0,
      );
      assert.ok(sentVpn >= TRANSFER, `VPN bytes out grew by ${sentVpn}`);
      const outToB = grew(beforeA, afterA, "edgevpn_peer_bytes_total", peerB);
      assert.ok(outToB >= TRANSFER, `bytes to b grew by ${outToB}`);
      const vpnToB = grew(beforeA, afterA, "edgevpn_vpn_peer_bytes_total", peerB);
      assert.ok(vpnToB >= TRANSFER, `VPN bytes to b grew by ${vpnToB}`);
      // A TCP super-packet of up to 64 KiB counts as one packet.
      const packets = grew(beforeA, afterA, "edgevpn_vpn_peer_packets_total", peerB);
      assert.ok(packets >= TRANSFER / 65536, `${packets} VPN packets to b`);
      const inFromA = grew(beforeB, afterB, "edgevpn_peer_bytes_total", peerA);
      assert.ok(inFromA >= TRANSFER, `bytes from a grew by ${inFromA}`);
      const fastIn = ["/edgevpn/fast-gso/1.0.0", "/edgevpn/fast/1.0.0", "/edgevpn/0.1"].reduce(
        (n, protocol) =>
          n + grew(beforeB, afterB, "edgevpn_protocol_bytes_total", { protocol, direction: "in" }),
        0,
      );
      assert.ok(fastIn >= TRANSFER, `VPN protocol bytes in grew by ${fastIn}`);

      // 1 000 requests per second for 10 s while pinging through the VPN.
      const rssBefore = valueOf(afterA, "process_resident_memory_bytes");
      const ping = pair.a.run("ping", ["-c", "50", "-i", "0.2", "-W", "1", "10.1.0.2"]);
      const load = JSON.parse(
        await pair.a.run(Deno.execPath(), ["run", "-A", LOAD, "load", API, "1000", "10"]),
      );
      const pingText = await ping;
      assert.match(pingText, / 0% packet loss/, pingText);
      // How many the node served depends on the machine (a benchmark's business, not a
      // test's); every request sent must be answered, and the VPN must go on forwarding.
      assert.equal(load.sent + load.skipped, 10_000, `load: ${JSON.stringify(load)}`);
      assert.ok(load.ok > 0, `load: ${JSON.stringify(load)}`);
      assert.equal(load.failed, 0, `load: ${JSON.stringify(load)}`);
      const rssAfter = valueOf(await scrape(pair.a), "process_resident_memory_bytes");
      assert.ok(
        rssAfter < rssBefore + 96 * 1024 * 1024,
        `RSS ${Math.round(rssBefore / 2 ** 20)} MiB → ${Math.round(rssAfter / 2 ** 20)} MiB`,
      );
      console.log(
        `load ${JSON.stringify(load)}; RSS ${Math.round(rssBefore / 2 ** 20)} → ${
          Math.round(rssAfter / 2 ** 20)
        } MiB`,
      );
      for (const node of nodes) assert.equal((await node.stop()).code, 0, node.log);
    }),
});
