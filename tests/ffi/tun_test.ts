/** Real TUN device tests inside throw-away network namespaces (need root and /dev/net/tun). */

import assert from "node:assert/strict";
import { TunError } from "../../ffi/errors.ts";
import { libc, Linux } from "../../ffi/libc.ts";
import { TunDevice } from "../../ffi/tun.ts";
import {
  forEachPacket,
  internetChecksum,
  parseVirtioNetHdr,
  pseudoHeaderSum,
  VIRTIO_NET_HDR_LENGTH,
  VirtioNetGsoType,
} from "../../lib/vpn/gso.ts";
import { parseCidr } from "../../lib/net/ip.ts";
import { IpProtocol, parseIpHeader } from "../../lib/vpn/packet.ts";
import { Netns, openFdCount, run, tunTestsUnavailable } from "./netns.ts";

const unavailable = tunTestsUnavailable();
if (unavailable) console.log(`Skipping real TUN tests: ${unavailable}`);
const ignore = unavailable !== undefined;

/** CIDR text as the device takes it: parsed, as the VPN parses `--address`. */
function cidr(text: string) {
  const parsed = parseCidr(text);
  if (parsed === null) throw new Error(`bad test CIDR ${text}`);
  return parsed;
}

function isTunError(code: string) {
  return (e: unknown) => e instanceof TunError && e.code === code;
}

/** Turns an ICMP/ICMPv6 echo request into its reply in place; false for any other packet. */
function makeEchoReply(packet: Uint8Array): boolean {
  const header = parseIpHeader(packet);
  if (header === null) return false;
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  if (header.version === 4) {
    const icmp = packet.subarray(header.headerLength, header.totalLength);
    if (header.protocol !== IpProtocol.ICMP || icmp[0] !== 8) return false;
    const src = packet.slice(12, 16);
    packet.copyWithin(12, 16, 20);
    packet.set(src, 16);
    view.setUint16(10, 0);
    view.setUint16(10, internetChecksum(packet.subarray(0, header.headerLength)));
    icmp[0] = 0;
    icmp[2] = icmp[3] = 0;
    const sum = internetChecksum(icmp);
    icmp[2] = sum >> 8;
    icmp[3] = sum & 0xff;
    return true;
  }
  const icmp = packet.subarray(40, header.totalLength);
  if (header.nextHeader !== IpProtocol.ICMPV6 || icmp[0] !== 128) return false;
  const src = packet.slice(8, 24);
  packet.copyWithin(8, 24, 40);
  packet.set(src, 24);
  icmp[0] = 129;
  icmp[2] = icmp[3] = 0;
  const sum = internetChecksum(icmp, pseudoHeaderSum(packet, IpProtocol.ICMPV6, icmp.length));
  icmp[2] = sum >> 8;
  icmp[3] = sum & 0xff;
  return true;
}

/** Answers echo requests read from the device until it is closed; returns how many. */
async function answerPings(tun: TunDevice): Promise<number> {
  const buffers = Array.from({ length: 8 }, () => new Uint8Array(tun.frameSize));
  const lengths = new Uint32Array(8);
  const offset = tun.offload ? VIRTIO_NET_HDR_LENGTH : 0;
  let answered = 0;
  for (;;) {
    const n = await tun.readBatch(buffers, lengths);
    if (n === 0) return answered;
    for (let i = 0; i < n; i++) {
      const packet = buffers[i].subarray(offset, lengths[i]);
      if (!makeEchoReply(packet)) continue;
      if (tun.offload) assert.ok(tun.writePacketSync(packet));
      else assert.ok(tun.writeSync(packet));
      answered++;
    }
  }
}

async function ping(ns: Netns, address: string): Promise<string> {
  const args = ["-c", "3", "-i", "0.2", "-W", "2", address];
  const out = await ns.spawn("ping", address.includes(":") ? ["-6", ...args] : args).output();
  return new TextDecoder().decode(out.stdout);
}

interface IpLink {
  ifname: string;
  flags: string[];
  mtu: number;
  txqlen: number;
  addr_info: { family: string; local: string; prefixlen: number }[];
}

Deno.test({
  name: "open creates the interface and configures it with ioctls only",
  ignore,
  fn: async () => {
    await using ns = await Netns.create();
    const tun = ns.enter(() =>
      TunDevice.open({
        name: "evtest%d",
        ipv4: cidr("10.201.0.1/24"),
        ipv6: cidr("fd20:1::1/64"),
        mtu: 1400,
        txQueueLength: 321,
      })
    );
    try {
      assert.match(tun.name, /^evtest\d+$/, "the kernel fills in the template");
      assert.equal(tun.mtu, 1400);
      const [link] = await ns.ipJson<IpLink[]>("addr", "show", "dev", tun.name);
      assert.equal(link.ifname, tun.name);
      assert.equal(link.mtu, 1400);
      assert.equal(link.txqlen, 321);
      assert.ok(link.flags.includes("UP"), `flags ${link.flags}`);
      const addresses = link.addr_info.map((a) => `${a.family} ${a.local}/${a.prefixlen}`);
      assert.ok(addresses.includes("inet 10.201.0.1/24"), `addresses ${addresses}`);
      assert.ok(addresses.includes("inet6 fd20:1::1/64"), `addresses ${addresses}`);
      const routes = await ns.ipJson<{ dst: string; dev: string }[]>("route", "show");
      assert.ok(routes.some((r) => r.dst === "10.201.0.0/24" && r.dev === tun.name));
      const flags = libc().fcntl(tun.fd, Linux.F_GETFL, 0);
      assert.ok((flags & Linux.O_NONBLOCK) !== 0, "the descriptor is non-blocking");
    } finally {
      await tun.close();
    }
    const links = await ns.ipJson<IpLink[]>("link", "show");
    assert.ok(!links.some((l) => l.ifname === tun.name), "closing removes the interface");
  },
});

for (const offload of [false, true]) {
  Deno.test({
    name: `ping through the TUN is answered from the echo requests read off it${
      offload ? " (offload)" : ""
    }`,
    ignore,
    fn: async () => {
      await using ns = await Netns.create();
      const tun = ns.enter(() =>
        TunDevice.open({
          offload,
          ipv4: cidr("10.201.0.1/24"),
          ipv6: cidr("fd20:1::1/64"),
          mtu: 1400,
        })
      );
      const responder = answerPings(tun);
      try {
        const v4 = await ping(ns, "10.201.0.2");
        assert.match(v4, /3 packets transmitted, 3 received/, v4);
        const v6 = await ping(ns, "fd20:1::2");
        assert.match(v6, /3 packets transmitted, 3 received/, v6);
      } finally {
        await tun.close();
      }
      assert.equal(await responder, 6);
      assert.equal(tun.stats.txPackets, 6);
      assert.ok(tun.stats.rxPackets >= 6);
      assert.ok(tun.stats.readWaits > 0, "the reader waited on poll between pings");
    },
  });
}

Deno.test({
  name: "offload: TCP through two relayed TUNs arrives as super-packets that segment validly",
  ignore,
  fn: async () => {
    await using nsA = await Netns.create();
    await using nsB = await Netns.create();
    const options = { offload: true, mtu: 1400, up: true };
    const a = nsA.enter(() => TunDevice.open({ ...options, ipv4: cidr("10.202.0.1/24") }));
    const b = nsB.enter(() => TunDevice.open({ ...options, ipv4: cidr("10.202.0.2/24") }));
    const scratch = new Uint8Array(65535);
    let superPackets = 0;
    let segments = 0;
    const verify = (frame: Uint8Array) => {
      const hdr = parseVirtioNetHdr(frame)!;
      if ((hdr.gsoType & ~VirtioNetGsoType.ECN) !== VirtioNetGsoType.TCPV4) return;
      superPackets++;
      forEachPacket(frame.slice(), scratch, (packet) => {
        segments++;
        assert.ok(packet.length <= 1400, `segment of ${packet.length} bytes`);
        assert.equal(internetChecksum(packet.subarray(0, 20)), 0, "IPv4 header checksum");
        const tcp = packet.subarray(20);
        assert.equal(
          internetChecksum(tcp, pseudoHeaderSum(packet, IpProtocol.TCP, tcp.length)),
          0,
          "TCP checksum",
        );
      });
    };
    const relay = async (from: TunDevice, to: TunDevice, inspect: boolean) => {
      const buffers = Array.from({ length: 16 }, () => new Uint8Array(from.frameSize));
      const lengths = new Uint32Array(16);
      for (;;) {
        const n = await from.readBatch(buffers, lengths);
        if (n === 0) return;
        for (let i = 0; i < n; i++) {
          const frame = buffers[i].subarray(0, lengths[i]);
          if (inspect) verify(frame);
          if (!to.closed) await to.write(frame);
        }
      }
    };
    const relays = [relay(a, b, true), relay(b, a, false)];
    const server = nsB.spawn("iperf3", ["-s", "-1", "-B", "10.202.0.2"]);
    try {
      let report = "";
      for (let attempt = 0; attempt < 20 && report === ""; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        const client = await nsA.spawn("iperf3", ["-c", "10.202.0.2", "-n", "8M", "-J"]).output();
        if (client.success) report = new TextDecoder().decode(client.stdout);
      }
      assert.notEqual(report, "", "iperf3 ran through the relayed TUNs");
      // With -n the client ends once its socket took the bytes, so the server may report less.
      const { sum_sent, sum_received } = JSON.parse(report).end;
      assert.ok(sum_sent.bytes >= 8 * 1024 * 1024, `sent ${sum_sent.bytes} bytes`);
      assert.ok(sum_received.bytes > 0, `received ${sum_received.bytes} bytes`);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await Promise.all(relays);
      await server.output();
    }
    assert.ok(superPackets > 0, "the kernel handed over TSO super-packets");
    assert.ok(segments > superPackets, `${superPackets} super-packets → ${segments} segments`);
  },
});

Deno.test({
  name: "close() during a pending read resolves it with 0 promptly and releases descriptors",
  ignore,
  fn: async () => {
    await using ns = await Netns.create();
    const before = openFdCount();
    const tun = ns.enter(() => TunDevice.open({ name: "evclose0", up: false }));
    assert.equal(openFdCount(), before + 2, "the device holds its fd and an eventfd");
    const pending = tun.readBatch([new Uint8Array(1500)], new Uint32Array(1));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(tun.stats.readWaits, 1, "the read is waiting in poll");
    await assert.rejects(
      tun.readBatch([new Uint8Array(1500)], new Uint32Array(1)),
      isTunError("TUN_READ_IN_PROGRESS"),
    );
    const started = performance.now();
    await tun.close();
    assert.equal(await pending, 0);
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 500, `close took ${elapsed.toFixed(1)} ms`);
    assert.equal(openFdCount(), before, "every descriptor is closed");
    assert.equal(await tun.readBatch([new Uint8Array(1500)], new Uint32Array(1)), 0);
    assert.throws(() => tun.writeSync(new Uint8Array(20)), isTunError("TUN_CLOSED"));
    assert.throws(() => tun.setMtu(1400), isTunError("TUN_CLOSED"));
    await tun.close();
  },
});

Deno.test({
  name: "configuration and usage errors carry stable codes",
  ignore,
  fn: async () => {
    await using ns = await Netns.create();
    const tun = ns.enter(() => TunDevice.open({ name: "everr0", mtu: 1200 }));
    try {
      ns.enter(() => {
        assert.throws(
          () => TunDevice.open({ name: "a-name-too-long-x" }),
          isTunError("TUN_INVALID"),
        );
        assert.throws(() => TunDevice.open({ name: "everr0" }), isTunError("TUN_BUSY"));
        assert.throws(() => TunDevice.open({ name: "lo" }), isTunError("TUN_INVALID"));
        assert.throws(
          () => TunDevice.open({ devicePath: "/dev/net/missing-tun" }),
          isTunError("TUN_UNAVAILABLE"),
        );
        assert.throws(
          () => tun.setIPv4({ address: Uint8Array.of(10, 1, 0, 1), prefixLength: 33 }),
          isTunError("TUN_INVALID"),
        );
        assert.throws(() => tun.setIPv4(cidr("fd00::1/64")), isTunError("TUN_INVALID"));
        assert.throws(() => tun.setMtu(20), isTunError("TUN_INVALID"));
        assert.throws(
          () => tun.addIPv6(cidr("fd21::1/64")),
          (e: unknown) => isTunError("TUN_INVALID")(e) && /at least 1280/.test(String(e)),
        );
        tun.setMtu(1280);
        tun.addIPv6(cidr("fd21::1/64"));
        assert.throws(() => tun.addIPv6(cidr("fd21::1/64")), isTunError("TUN_ADDRESS_IN_USE"));
      });
    } finally {
      await tun.close();
    }
  },
});

Deno.test({
  name: "packets the kernel rejects are dropped and counted, not thrown",
  ignore,
  fn: async () => {
    await using ns = await Netns.create();
    const tun = ns.enter(() => TunDevice.open({ ipv4: cidr("10.203.0.1/24"), up: false }));
    try {
      const packet = new Uint8Array(28);
      packet.set([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17], 0);
      packet.set([10, 203, 0, 2, 10, 203, 0, 1], 12);
      assert.equal(tun.writeSync(packet), true, "link down");
      assert.equal(tun.stats.txDropped, 1);
      ns.enter(() => tun.setUp(true));
      assert.equal(tun.writeSync(packet), true);
      assert.equal(tun.stats.txPackets, 1);
      assert.equal(tun.stats.txBytes, 28);
    } finally {
      await tun.close();
    }
  },
});

Deno.test({
  name: "without CAP_NET_ADMIN opening fails with TUN_PERMISSION_DENIED",
  ignore: ignore || !hasSetpriv(),
  fn: async () => {
    await using ns = await Netns.create();
    const module = new URL("../../ffi/tun.ts", import.meta.url).href;
    const code = `import { TunDevice } from ${JSON.stringify(module)};
      try { TunDevice.open({ name: "evperm0" }); console.log("opened"); }
      catch (e) { console.log(e.code); }`;
    const out = await run("ip", [
      "netns",
      "exec",
      ns.name,
      "setpriv",
      "--bounding-set=-net_admin",
      "--inh-caps=-net_admin",
      "--",
      Deno.execPath(),
      "eval",
      "--quiet",
      code,
    ]);
    assert.equal(out.trim(), "TUN_PERMISSION_DENIED");
  },
});

function hasSetpriv(): boolean {
  try {
    return new Deno.Command("setpriv", { args: ["--version"], stdout: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}
