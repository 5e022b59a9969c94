/** Fuzzing of the VPN's parsers of peer bytes: fast frames, `/edgevpn/0.1` streams, virtio headers. */
import assert from "node:assert/strict";
import { FrameDecoder } from "../../lib/vpn/frame.ts";
import {
  forEachPacket,
  MAX_GSO_SEGMENTS,
  parseVirtioNetHdr,
  sanitizeOffloadFrame,
  VirtioNetGsoType,
  VirtioNetHdrFlag,
} from "../../lib/vpn/gso.ts";
import { IpStreamSplitter } from "../../lib/vpn/packet.ts";
import { newSender, SourceTable } from "../../lib/vpn/sources.ts";
import { chunked, concat, fc, fuzz, mutated } from "./harness.ts";

/** A packet whose length fields are right: IPv4 (any IHL) or IPv6, small or up to 64 KiB. */
const ipPacket: fc.Arbitrary<Uint8Array> = fc.tuple(
  fc.boolean(),
  fc.integer({ min: 5, max: 15 }),
  fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0, max: 300 }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 65_535 - 60 }) },
  ),
  fc.uint8Array({ minLength: 40, maxLength: 40 }),
).map(([v6, ihl, payload, head]) => {
  const headerLength = v6 ? 40 : ihl * 4;
  const p = new Uint8Array(headerLength + payload);
  p.set(head.subarray(0, Math.min(40, headerLength)));
  for (let i = headerLength; i < p.length; i++) p[i] = (i * 31) & 0xff;
  if (v6) {
    p[0] = 0x60 | (p[0] & 0x0f);
    p[4] = payload >> 8;
    p[5] = payload & 0xff;
  } else {
    p[0] = 0x40 | ihl;
    p[2] = p.length >> 8;
    p[3] = p.length & 0xff;
  }
  return p;
});

/** One fast frame: `u16 length ‖ header ‖ packet`. */
function frameOf(packet: Uint8Array, header: Uint8Array): Uint8Array {
  return concat([Uint8Array.of(packet.length >> 8, packet.length & 0xff), header, packet]);
}

const fastStream = fc.tuple(
  fc.constantFrom(0 as const, 10 as const),
  fc.array(fc.tuple(ipPacket, fc.uint8Array({ minLength: 10, maxLength: 10 })), {
    maxLength: 6,
  }),
  fc.boolean(),
).chain(([headerLength, items, corrupt]) => {
  const frames = items.map(([p, h]) => headerLength === 10 ? concat([h, p]) : p);
  const stream = concat(items.map(([p, h]) => frameOf(p, h.subarray(0, headerLength))));
  const bytes = corrupt ? mutated(fc.constant(stream)) : fc.constant(stream);
  return chunked(bytes).map((chunks) => ({ headerLength, frames, corrupt, chunks }));
});

fuzz({
  name: "VPN fast frames, random chunk boundaries",
  arbitrary: fastStream,
  run({ headerLength, frames, corrupt, chunks }) {
    const decoder = new FrameDecoder(headerLength);
    const out: Uint8Array[] = [];
    for (const chunk of chunks) decoder.push(chunk, (f) => out.push(f.slice()));
    if (!corrupt) {
      // However the stream is cut, well-formed frames come out whole and in order.
      assert.deepEqual(out, frames);
      assert.equal(decoder.pendingBytes, 0);
    }
  },
});

fuzz({
  name: "VPN /edgevpn/0.1 packet streams, random chunk boundaries",
  arbitrary: fc.tuple(fc.array(ipPacket, { maxLength: 4 }), fc.boolean()).chain((
    [packets, corrupt],
  ) => {
    const stream = concat(packets);
    return chunked(corrupt ? mutated(fc.constant(stream)) : fc.constant(stream)).map((
      chunks,
    ) => ({ packets, corrupt, chunks }));
  }),
  run({ packets, corrupt, chunks }) {
    const splitter = new IpStreamSplitter();
    const out: Uint8Array[] = [];
    for (const chunk of chunks) splitter.push(chunk, (p) => out.push(p.slice()));
    if (!corrupt) {
      assert.deepEqual(out, packets);
      assert.equal(splitter.pendingBytes, 0);
    }
  },
});

/** A TCP super-packet behind a virtio header with every field drawn, plausible or not. */
const offloadFrame: fc.Arbitrary<Uint8Array> = fc.record({
  v6: fc.boolean(),
  flags: fc.oneof(fc.constant(VirtioNetHdrFlag.NEEDS_CSUM), fc.integer({ min: 0, max: 255 })),
  gsoType: fc.oneof(
    fc.constantFrom(0, 1, 4, 0x81, 0x84, 3, 5),
    fc.integer({ min: 0, max: 255 }),
  ),
  hdrLen: fc.integer({ min: 0, max: 0xffff }),
  gsoSize: fc.oneof(
    fc.integer({ min: 0, max: 100 }),
    fc.integer({ min: 500, max: 1500 }),
    fc.integer({ min: 0, max: 0xffff }),
  ),
  csumStart: fc.oneof(fc.constantFrom(20, 24, 40, 48), fc.integer({ min: 0, max: 0xffff })),
  csumOffset: fc.oneof(fc.constantFrom(6, 16), fc.integer({ min: 0, max: 0xffff })),
  protocol: fc.oneof(fc.constantFrom(6, 17), fc.integer({ min: 0, max: 255 })),
  dataOffset: fc.oneof(fc.constant(8), fc.integer({ min: 0, max: 15 })),
  fragment: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.integer({ min: 0, max: 0xff })),
  payload: fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0, max: 4_000 }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 65_535 - 100 }) },
  ),
  extra: fc.uint8Array({ maxLength: 24 }),
  // Half the frames are what a kernel would send but for gso_size and the TCP header length.
  plausible: fc.boolean(),
}).map((f) => {
  const ipLen = f.v6 ? 40 : 20;
  if (f.plausible) {
    Object.assign(f, {
      flags: VirtioNetHdrFlag.NEEDS_CSUM,
      gsoType: f.payload === 0 ? 0 : f.v6 ? VirtioNetGsoType.TCPV6 : VirtioNetGsoType.TCPV4,
      csumStart: ipLen,
      csumOffset: 16,
      protocol: 6,
      fragment: 0,
      dataOffset: Math.max(5, f.dataOffset),
    });
  }
  const packet = new Uint8Array(ipLen + 32 + f.payload);
  packet.set(f.extra.subarray(0, Math.min(f.extra.length, packet.length)));
  if (f.plausible) packet.fill(0, 0, ipLen);
  if (f.v6) {
    packet[0] = 0x60;
    packet[4] = (packet.length - 40) >> 8;
    packet[5] = (packet.length - 40) & 0xff;
    packet[6] = f.protocol;
  } else {
    packet[0] = 0x45;
    packet[2] = packet.length >> 8;
    packet[3] = packet.length & 0xff;
    packet[7] = f.fragment;
    packet[9] = f.protocol;
  }
  packet[ipLen + 12] = f.dataOffset << 4;
  const frame = new Uint8Array(10 + packet.length);
  const le = (at: number, v: number) => (frame[at] = v & 0xff, frame[at + 1] = v >> 8);
  frame[0] = f.flags;
  frame[1] = f.gsoType;
  le(2, f.hdrLen);
  le(4, f.gsoSize);
  le(6, f.csumStart);
  le(8, f.csumOffset);
  frame.set(packet, 10);
  return frame;
});

const scratch = new Uint8Array(0xffff);

fuzz({
  name: "virtio headers and GSO segmentation",
  arbitrary: fc.oneof(
    { weight: 4, arbitrary: offloadFrame },
    { weight: 1, arbitrary: mutated(offloadFrame) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
  ),
  run(frame) {
    const sanitized = frame.slice();
    const problem = sanitizeOffloadFrame(sanitized);
    // The segmenter and the checker agree: a frame the checker passes segments without error,
    // into a bounded number of packets that fit the scratch buffer.
    let segments = 0;
    try {
      segments = forEachPacket(sanitized, scratch, (p) => {
        assert.ok(p.length >= 20 && p.length <= 0xffff);
      });
    } catch (e) {
      if (problem === undefined) throw new Error(`accepted by the checker, refused: ${e}`);
      throw e;
    }
    assert.ok(segments <= MAX_GSO_SEGMENTS);
    if (problem === undefined) {
      const hdr = parseVirtioNetHdr(sanitized)!;
      assert.equal(hdr.flags & ~VirtioNetHdrFlag.NEEDS_CSUM, 0, "flags rebuilt");
      if ((hdr.gsoType & ~VirtioNetGsoType.ECN) !== VirtioNetGsoType.NONE) {
        assert.ok(hdr.hdrLen <= sanitized.length - 10, "hdr_len within the packet");
      }
    }
  },
});

const table = SourceTable.build({
  selfPeerId: "self",
  machines: [
    ["10.1.0.1", '{"PeerID":"self"}'],
    ["10.1.0.2", '{"PeerID":"B"}'],
    ["fd00::2", '{"PeerID":"B"}'],
  ],
  router: "10.1.0.2",
});

fuzz({
  name: "source address checks on any IP header",
  arbitrary: fc.tuple(
    fc.uint8Array({ minLength: 40, maxLength: 60 }),
    fc.constantFrom("B", "self", "X"),
  ),
  run([packet, peer]) {
    packet[0] = (packet[0] & 0x0f) | (packet[0] & 0x10 ? 0x40 : 0x60);
    const verdict = table.check(packet, 0, newSender(peer));
    assert.ok(verdict === 0 || verdict === 1 || verdict === 2);
  },
});
