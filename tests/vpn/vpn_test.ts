/**
 * The VPN service end to end in one process: real meshes on loopback, in-memory interfaces.
 * Covers the data planes, fallback to `/edgevpn/0.1`, announcements and refused input.
 */
import assert from "node:assert/strict";
import { generateNetworkConfig } from "../../lib/config/token.ts";
import type { Mesh } from "../../lib/mesh/mesh.ts";
import type { NodeStream } from "../../lib/node/stream.ts";
import { FAST_GSO_PROTOCOL, FAST_PROTOCOL, LEGACY_PROTOCOL } from "../../lib/vpn/frame.ts";
import { MACHINES_BUCKET } from "../../lib/vpn/machine.ts";
import { IpStreamSplitter } from "../../lib/vpn/packet.ts";
import { waitFor } from "../node/helpers.ts";
import {
  checksumsValid,
  startMesh,
  startVpnNode,
  tcp4SuperFrame,
  udp4,
  type VpnNodeUnderTest,
  waitForRoute,
  withVnetHeader,
} from "./helpers.ts";

async function pair(
  a: Parameters<typeof startVpnNode>[1],
  b: Parameters<typeof startVpnNode>[1],
): Promise<[VpnNodeUnderTest, VpnNodeUnderTest]> {
  const network = generateNetworkConfig();
  const na = await startVpnNode(network, { address: "10.1.0.1/24", ...a });
  try {
    const nb = await startVpnNode(network, {
      address: "10.1.0.2/24",
      bootstrap: na.mesh.node.multiaddrs(),
      ...b,
    });
    await waitForRoute(na.vpn, "10.1.0.2");
    await waitForRoute(nb.vpn, "10.1.0.1");
    return [na, nb];
  } catch (e) {
    await na.stop();
    throw e;
  }
}

async function announceMachine(mesh: Mesh, address: string): Promise<void> {
  await mesh.ledger.add(MACHINES_BUCKET, {
    [address]: {
      PeerID: mesh.peerId,
      Hostname: "go",
      OS: "linux",
      Arch: "amd64",
      Address: address,
      Version: "v0.35.4",
    },
  });
}

Deno.test("the machines entry is announced in Go's form and taken back when overwritten", async () => {
  const network = generateNetworkConfig();
  const n = await startVpnNode(network, { address: "10.1.0.5/24", mode: "off", hostname: "box" });
  try {
    await waitFor(
      () => n.mesh.ledger.getKey(MACHINES_BUCKET, "10.1.0.5") !== undefined,
      "announcement",
    );
    const value = n.mesh.ledger.getKey(MACHINES_BUCKET, "10.1.0.5")!;
    assert.equal(
      value,
      JSON.stringify({
        PeerID: n.mesh.peerId,
        Hostname: "box",
        OS: Deno.build.os,
        Arch: Deno.build.arch === "x86_64" ? "amd64" : "arm64",
        Address: "10.1.0.5",
        Version: JSON.parse(value).Version,
      }),
    );
    await n.mesh.ledger.add(MACHINES_BUCKET, { "10.1.0.5": { PeerID: "12D3KooWSomeoneElse" } });
    await waitFor(
      () => n.mesh.ledger.getKey(MACHINES_BUCKET, "10.1.0.5")?.includes(n.mesh.peerId) === true,
      "re-announcement",
    );
  } finally {
    await n.stop();
  }
});

Deno.test("offload on both sides: super-packets cross whole on fast-gso, plain packets both ways", async () => {
  const [a, b] = await pair({}, {});
  try {
    const frame = tcp4SuperFrame("10.1.0.1", "10.1.0.2", 20_000, 1160);
    a.tun.inject(frame);
    await b.tun.waitWritten(1);
    assert.deepEqual(b.tun.written[0], frame);
    b.tun.inject(withVnetHeader(udp4("10.1.0.2", "10.1.0.1", 500)));
    await a.tun.waitWritten(1);
    assert.deepEqual(a.tun.written[0], withVnetHeader(udp4("10.1.0.2", "10.1.0.1", 500)));
    const ca = a.vpn.counters().vpn;
    assert.equal(ca.sent.fastGso.packets, 1);
    assert.equal(ca.sent.fastGso.bytes, frame.length - 10);
    assert.equal(ca.received.fastGso.packets, 1);
    assert.equal(ca.sent.legacy.packets + ca.sent.fast.packets, 0);
    assert.deepEqual(a.vpn.links().map((l) => [l.peerId, l.state, l.protocol]), [
      [b.mesh.peerId, "open", "fast-gso"],
    ]);
  } finally {
    await a.stop();
    await b.stop();
  }
});

Deno.test("offload on one side: super-packets are segmented with valid checksums for the other", async () => {
  const [a, b] = await pair({}, { tunOffload: false });
  try {
    assert.equal(a.vpn.offload, true);
    assert.equal(b.vpn.offload, false);
    const frame = tcp4SuperFrame("10.1.0.1", "10.1.0.2", 5_000, 1000);
    a.tun.inject(frame);
    await b.tun.waitWritten(5);
    assert.equal(b.tun.written.length, 5);
    for (const [i, segment] of b.tun.written.entries()) {
      assert.equal(segment.length, 40 + 1000);
      assert.ok(checksumsValid(segment), `segment ${i} checksums`);
      assert.equal(new DataView(segment.buffer).getUint32(24), 1000 + i * 1000, "sequence number");
    }
    assert.equal(a.vpn.counters().vpn.sent.fast.packets, 5);
    assert.equal(a.vpn.links()[0].protocol, "fast");
    // The other way, a plain interface sends to an offload one: fast-gso with zero headers,
    // written whole.
    b.tun.inject(udp4("10.1.0.2", "10.1.0.1", 300));
    await a.tun.waitWritten(1);
    assert.deepEqual(a.tun.written[0], withVnetHeader(udp4("10.1.0.2", "10.1.0.1", 300)));
    assert.equal(b.vpn.links()[0].protocol, "fast-gso");
  } finally {
    await a.stop();
    await b.stop();
  }
});

Deno.test("frames from the interface that cannot be sent are dropped and counted", async () => {
  const [a, b] = await pair({ tunOffload: false }, { tunOffload: false });
  try {
    const good = udp4("10.1.0.1", "10.1.0.2", 100);
    const truncated = good.slice(0, 60);
    const padded = new Uint8Array(good.length + 8);
    padded.set(good);
    a.tun.inject(
      new Uint8Array([0x45, 0, 0]),
      new Uint8Array(40).fill(0x25),
      truncated,
      padded,
      udp4("10.1.0.1", "10.9.9.9", 10),
      udp4("10.1.0.2", "10.1.0.1", 10),
      good,
    );
    await b.tun.waitWritten(1);
    const d = a.vpn.counters().vpn.dropped;
    assert.deepEqual([d.malformed, d.noRoute, d.self], [4, 1, 1]);
    assert.deepEqual(b.tun.written, [good]);
  } finally {
    await a.stop();
    await b.stop();
  }
});

Deno.test("the legacy data plane sends one packet per /edgevpn/0.1 stream", async () => {
  const [a, b] = await pair({ tunOffload: false, dataPlane: "legacy" }, {
    tunOffload: false,
    dataPlane: "legacy",
  });
  try {
    const packets = Array.from({ length: 20 }, (_, i) => udp4("10.1.0.1", "10.1.0.2", 200 + i, i));
    a.tun.inject(...packets);
    await b.tun.waitWritten(20);
    assert.deepEqual(
      [...b.tun.written].sort((x, y) => x.length - y.length),
      packets,
    );
    // A stream counts as sent once finished both ways, just after the packet arrives.
    await waitFor(() => a.vpn.counters().vpn.sent.legacy.packets === 20, "20 legacy packets sent");
    const ca = a.vpn.counters().vpn;
    assert.equal(ca.sent.fast.packets + ca.sent.fastGso.packets, 0);
    assert.equal(b.vpn.counters().vpn.received.legacy.packets, 20);
    assert.equal(a.vpn.links()[0].protocol, "legacy");
  } finally {
    await a.stop();
    await b.stop();
  }
});

Deno.test("a peer that speaks only /edgevpn/0.1 (a Go node) is sent packets with it", async () => {
  const network = generateNetworkConfig();
  const a = await startVpnNode(network, { address: "10.1.0.1/24" });
  const goNode = await startMesh(network, a.mesh.node.multiaddrs());
  const received: Uint8Array[] = [];
  try {
    // What Go's handler does: every chunk of the stream goes to the TUN; split here to check.
    await goNode.node.handle(LEGACY_PROTOCOL, async (stream) => {
      const splitter = new IpStreamSplitter();
      for await (const chunk of stream) {
        splitter.push(chunk, (p) => received.push(new Uint8Array(p)));
      }
      await stream.close();
    }, { membersOnly: false });
    await announceMachine(goNode, "10.1.0.9");
    await waitForRoute(a.vpn, "10.1.0.9");
    const frame = tcp4SuperFrame("10.1.0.1", "10.1.0.9", 3_000, 1000);
    a.tun.inject(withVnetHeader(udp4("10.1.0.1", "10.1.0.9", 64)), frame);
    await waitFor(
      () => received.length === 4,
      () => `4 packets at the Go node, got ${received.length}`,
    );
    const segments = received.filter((p) => p[9] === 6);
    assert.equal(segments.length, 3);
    assert.ok(segments.every(checksumsValid), "segments complete with checksums");
    await waitFor(() => a.vpn.counters().vpn.sent.legacy.packets === 4, "4 legacy packets sent");
    const c = a.vpn.counters().vpn;
    assert.equal(c.links.fallbacks, 1);
    assert.deepEqual(a.vpn.links().map((l) => l.protocol), ["legacy"]);
  } finally {
    await a.stop();
    await goNode.stop();
  }
});

Deno.test("streams from peers without a machines entry are reset and counted", async () => {
  const network = generateNetworkConfig();
  const a = await startVpnNode(network, { address: "10.1.0.1/24", tunOffload: false });
  const outsider = await startMesh(network, a.mesh.node.multiaddrs());
  try {
    await waitFor(() => outsider.node.connectedPeers().includes(a.mesh.peerId), "connection");
    const packet = udp4("10.1.0.77", "10.1.0.1", 50);
    for (const protocol of [FAST_PROTOCOL, LEGACY_PROTOCOL]) {
      const s = await outsider.node.dialProtocol(a.mesh.peerId, protocol).catch(() => undefined);
      const frame = protocol === FAST_PROTOCOL
        ? Uint8Array.of(0, packet.length, ...packet)
        : packet;
      await s?.write(frame).catch(() => {});
      await s?.close().catch(() => {});
      await s?.closed;
    }
    await waitFor(() => a.vpn.counters().vpn.inbound.nonMember >= 2, "two refusals");
    assert.equal(a.tun.written.length, 0);
    // FAST_GSO is not served at all by an interface without offload.
    await assert.rejects(outsider.node.dialProtocol(a.mesh.peerId, FAST_GSO_PROTOCOL));
  } finally {
    await a.stop();
    await outsider.stop();
  }
});

Deno.test("a member sending impossible frames is reset; forwarding from others goes on", async () => {
  const [a, b] = await pair({ tunOffload: false }, { tunOffload: false });
  const rogue = await startMesh(a.network, a.mesh.node.multiaddrs());
  try {
    await announceMachine(rogue, "10.1.0.66");
    await waitFor(() => a.mesh.hasMachine(rogue.peerId), "the rogue's machines entry at a");
    const s = await rogue.node.dialProtocol(a.mesh.peerId, FAST_PROTOCOL);
    const good = udp4("10.1.0.66", "10.1.0.1", 40);
    await s.write(Uint8Array.of(0, good.length, ...good, 0, 5, 1, 2, 3, 4, 5));
    await s.closed;
    await waitFor(() => a.vpn.counters().vpn.inbound.badFrame === 1, "the bad frame to be counted");
    assert.deepEqual(a.tun.written, [good]);
    b.tun.inject(udp4("10.1.0.2", "10.1.0.1", 77));
    await a.tun.waitWritten(2);
  } finally {
    await rogue.stop();
    await a.stop();
    await b.stop();
  }
});

Deno.test("a peer that stops reading fills only its own bounded queue", async () => {
  const queueBytes = 256 * 1024;
  const [a, b] = await pair({ tunOffload: false, queueBytes }, { tunOffload: false });
  const sink = await startMesh(a.network, a.mesh.node.multiaddrs());
  const held: NodeStream[] = [];
  try {
    // Accepts the fast stream and never reads from it.
    await sink.node.handle(FAST_PROTOCOL, (stream) => {
      held.push(stream);
      return stream.closed;
    }, { membersOnly: false });
    await announceMachine(sink, "10.1.0.50");
    await waitForRoute(a.vpn, "10.1.0.50");
    // Send to the stalled peer until its queue overflows: first the peer's read buffer and the
    // yamux window it granted fill up (up to ~17 MiB), then our bounded queue.
    const big = udp4("10.1.0.1", "10.1.0.50", 1100);
    let round = 0;
    for (; round < 400 && a.vpn.counters().vpn.dropped.queueFull === 0; round++) {
      a.tun.inject(...Array.from({ length: 200 }, () => big));
      a.tun.inject(udp4("10.1.0.1", "10.1.0.2", 20, round));
      await new Promise((r) => setTimeout(r, 5));
      const queued = a.vpn.links().find((l) => l.peerId === sink.peerId)?.queuedBytes ?? 0;
      assert.ok(queued <= queueBytes, `queue ${queued} within its bound`);
    }
    for (let i = 0; i < 20; i++, round++) {
      a.tun.inject(...Array.from({ length: 200 }, () => big));
      a.tun.inject(udp4("10.1.0.1", "10.1.0.2", 20, round));
      await new Promise((r) => setTimeout(r, 5));
    }
    await b.tun.waitWritten(round);
    const c = a.vpn.counters().vpn;
    assert.ok(c.dropped.queueFull > 0, "packets to the stalled peer are tail-dropped");
    const stalled = a.vpn.links().find((l) => l.peerId === sink.peerId)!;
    assert.ok(stalled.queuedBytes <= queueBytes, `queue ${stalled.queuedBytes} within its bound`);
    assert.equal(b.tun.written.length, round, "every packet for the reading peer arrived");
  } finally {
    for (const s of held) s.reset();
    await a.stop();
    await b.stop();
    await sink.stop();
  }
});

Deno.test("stop() closes the interface and every stream, and a stopped VPN cannot restart", async () => {
  const [a, b] = await pair({ tunOffload: false }, { tunOffload: false });
  try {
    a.tun.inject(udp4("10.1.0.1", "10.1.0.2", 10));
    await b.tun.waitWritten(1);
    await a.vpn.stop();
    assert.equal(a.tun.closed, true);
    assert.deepEqual(a.vpn.links(), []);
    await assert.rejects(a.vpn.start(), /VPN_STATE|Cannot start/);
  } finally {
    await a.stop();
    await b.stop();
  }
});

/** `u16be length ‖ header ‖ packet`: one fast frame. */
function fastFrame(packet: Uint8Array, header: Uint8Array = new Uint8Array()): Uint8Array {
  const out = new Uint8Array(2 + header.length + packet.length);
  out[0] = packet.length >> 8;
  out[1] = packet.length & 0xff;
  out.set(header, 2);
  out.set(packet, 2 + header.length);
  return out;
}

Deno.test("a member's packets with another member's, our own or an unknown source are dropped and counted, on every protocol", async () => {
  const [a, b] = await pair({}, {});
  const rogue = await startMesh(a.network, a.mesh.node.multiaddrs());
  try {
    await announceMachine(rogue, "10.1.0.66");
    await waitFor(() => a.mesh.hasMachine(rogue.peerId), "the rogue's machines entry at a");
    const own = udp4("10.1.0.66", "10.1.0.1", 40, 1);
    const forged = [
      udp4("10.1.0.2", "10.1.0.1", 40, 2), // b's address
      udp4("10.1.0.1", "10.1.0.1", 40, 3), // a's own
      udp4("10.1.0.99", "10.1.0.1", 40, 4), // nobody's; a has no router
    ];
    for (const header of [new Uint8Array(), new Uint8Array(10)]) {
      const protocol = header.length > 0 ? FAST_GSO_PROTOCOL : FAST_PROTOCOL;
      const s = await rogue.node.dialProtocol(a.mesh.peerId, protocol);
      for (const p of [...forged, own]) await s.write(fastFrame(p, header));
      await s.close();
    }
    for (const p of [...forged, own]) {
      const s = await rogue.node.dialProtocol(a.mesh.peerId, LEGACY_PROTOCOL);
      await s.write(p);
      await s.close();
    }
    await waitFor(() => a.tun.written.length === 3, "the rogue's own packets on all 3 protocols");
    await waitFor(() => {
      const c = a.vpn.counters().vpn.inbound;
      return c.spoofedSource === 6 && c.unknownSource === 3;
    }, "6 spoofed and 3 unknown sources counted");
    assert.deepEqual(a.tun.written, [own, own, own].map(withVnetHeader));
    // b's real packets still arrive.
    b.tun.inject(withVnetHeader(udp4("10.1.0.2", "10.1.0.1", 77)));
    await a.tun.waitWritten(4);
  } finally {
    await rogue.stop();
    await a.stop();
    await b.stop();
  }
});

Deno.test("a fast-gso frame with gso_size 1 is dropped and counted; the stream goes on", async () => {
  const [a, b] = await pair({}, {});
  try {
    const bad = tcp4SuperFrame("10.1.0.2", "10.1.0.1", 60_000, 1000);
    bad[4] = 1; // gso_size 1: 60 000 segments
    bad[5] = 0;
    const s = await b.mesh.node.dialProtocol(a.mesh.peerId, FAST_GSO_PROTOCOL);
    const good = tcp4SuperFrame("10.1.0.2", "10.1.0.1", 3000, 1000);
    for (const f of [bad, good]) {
      await s.write(fastFrame(f.subarray(10), f.subarray(0, 10)));
    }
    await a.tun.waitWritten(1);
    await s.close();
    assert.equal(a.vpn.counters().vpn.inbound.badOffload, 1);
    assert.deepEqual(a.tun.written, [good]);
  } finally {
    await a.stop();
    await b.stop();
  }
});

Deno.test("a read loop that dies is reported through failure, not left as a silent node", async () => {
  const network = generateNetworkConfig();
  const n = await startVpnNode(network, { address: "10.1.0.5/24" });
  try {
    let stoppedByItself: unknown;
    n.vpn.failure.then((e) => stoppedByItself = e);
    n.tun.failReads(new Error("Cannot read from mem0: read failed (EBADFD)"));
    const error = await n.vpn.failure;
    assert.equal(error.code, "VPN_FORWARDING_STOPPED");
    assert.match(error.message, /^VPN forwarding stopped: Cannot read from mem0: .*EBADFD/);
    assert.equal(stoppedByItself, error);
  } finally {
    await n.stop();
  }
});
