/** Tests of virtio_net_hdr coding, TCP super-packet segmentation and checksum completion. */

import assert from "node:assert/strict";
import { InputError } from "../../lib/util/errors.ts";
import {
  completeChecksum,
  forEachPacket,
  internetChecksum,
  MAX_GSO_SEGMENTS,
  MIN_GSO_SIZE,
  parseVirtioNetHdr,
  pseudoHeaderSum,
  sanitizeOffloadFrame,
  VIRTIO_NET_HDR_LENGTH,
  VirtioNetGsoType,
  VirtioNetHdrFlag,
  writePlainVirtioNetHdr,
  writeVirtioNetHdr,
} from "../../lib/vpn/gso.ts";
import { parseIP } from "../../lib/net/ip.ts";

const FIN = 0x01, PSH = 0x08, ACK = 0x10, CWR = 0x80;

// A checksum written independently of gso.ts (32-bit words through DataView, folded at the
// end), so that segmentation is not checked against itself.
function referenceChecksum(parts: Uint8Array[]): number {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length + (p.length & 1), 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length + (p.length & 1);
  }
  const padded = new Uint8Array(all.length + 4);
  padded.set(all);
  const view = new DataView(padded.buffer);
  let sum = 0n;
  for (let i = 0; i < all.length; i += 4) sum += BigInt(view.getUint32(i));
  while (sum > 0xffffn) sum = (sum & 0xffffn) + (sum >> 16n);
  return Number(~sum & 0xffffn);
}

function pseudoHeader(packet: Uint8Array, protocol: number, length: number): Uint8Array {
  const v6 = packet[0] >> 4 === 6;
  const addresses = v6 ? packet.subarray(8, 40) : packet.subarray(12, 20);
  const out = new Uint8Array(addresses.length + 4);
  out.set(addresses);
  new DataView(out.buffer).setUint16(addresses.length, protocol);
  new DataView(out.buffer).setUint16(addresses.length + 2, length);
  return out;
}

/** Checks the IP header checksum (IPv4) and the TCP checksum of one plain packet. */
function assertChecksumsValid(packet: Uint8Array, label: string): void {
  const v6 = packet[0] >> 4 === 6;
  const ipLen = v6 ? 40 : (packet[0] & 0x0f) * 4;
  if (!v6) assert.equal(referenceChecksum([packet.subarray(0, ipLen)]), 0, `${label}: IP checksum`);
  const transport = packet.subarray(ipLen);
  const protocol = v6 ? packet[6] : packet[9];
  assert.equal(
    referenceChecksum([pseudoHeader(packet, protocol, transport.length), transport]),
    0,
    `${label}: transport checksum`,
  );
}

interface SuperPacket {
  frame: Uint8Array;
  payload: Uint8Array;
  seq: number;
  ipId: number;
}

/** Builds a vnet_hdr frame holding a TCP super-packet as the kernel hands it to a TUN reader. */
function tcpSuperPacket(options: {
  v6: boolean;
  payloadLength: number;
  mss: number;
  flags: number;
  ecn?: boolean;
}): SuperPacket {
  const { v6, payloadLength, mss } = options;
  const ipLen = v6 ? 40 : 20;
  const tcpLen = 32; // with the timestamp option, as Linux sends
  const packet = new Uint8Array(ipLen + tcpLen + payloadLength);
  const view = new DataView(packet.buffer);
  const seq = 0xfffff000; // wraps around 2^32 within the super-packet
  const ipId = 0xfffe; // wraps around 2^16
  if (v6) {
    packet[0] = 0x60;
    view.setUint16(4, tcpLen + payloadLength);
    packet[6] = 6;
    packet[7] = 64;
    packet.set(parseIP("fd00::1")!, 8);
    packet.set(parseIP("fd00::2")!, 24);
  } else {
    packet[0] = 0x45;
    view.setUint16(2, packet.length);
    view.setUint16(4, ipId);
    packet[6] = 0x40; // DF
    packet[8] = 64;
    packet[9] = 6;
    packet.set(parseIP("10.1.0.1")!, 12);
    packet.set(parseIP("10.1.0.2")!, 16);
    view.setUint16(10, internetChecksum(packet.subarray(0, 20)));
  }
  view.setUint16(ipLen, 40000);
  view.setUint16(ipLen + 2, 5201);
  view.setUint32(ipLen + 4, seq);
  view.setUint32(ipLen + 8, 0x01020304);
  packet[ipLen + 12] = (tcpLen / 4) << 4;
  packet[ipLen + 13] = options.flags;
  view.setUint16(ipLen + 14, 64240);
  packet.set([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], ipLen + 20);
  const payload = packet.subarray(ipLen + tcpLen);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + 3) & 0xff;
  // The kernel leaves the pseudo-header sum (folded, not inverted) in the checksum field.
  const transportLength = tcpLen + payloadLength;
  const partial = 0xffff ^
    internetChecksum(new Uint8Array(), pseudoHeaderSum(packet, 6, transportLength));
  view.setUint16(ipLen + 16, partial);
  const frame = new Uint8Array(VIRTIO_NET_HDR_LENGTH + packet.length);
  writeVirtioNetHdr(frame, {
    flags: VirtioNetHdrFlag.NEEDS_CSUM,
    gsoType: (v6 ? VirtioNetGsoType.TCPV6 : VirtioNetGsoType.TCPV4) |
      (options.ecn ? VirtioNetGsoType.ECN : 0),
    hdrLen: ipLen + tcpLen,
    gsoSize: mss,
    csumStart: ipLen,
    csumOffset: 16,
  });
  frame.set(packet, VIRTIO_NET_HDR_LENGTH);
  return { frame, payload: payload.slice(), seq, ipId };
}

function segments(frame: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const scratch = new Uint8Array(65535);
  const count = forEachPacket(frame, scratch, (p) => out.push(p.slice()));
  assert.equal(count, out.length);
  return out;
}

Deno.test("virtio_net_hdr fields round-trip in little-endian order", () => {
  const frame = new Uint8Array(12);
  const hdr = {
    flags: 1,
    gsoType: VirtioNetGsoType.TCPV6,
    hdrLen: 0x1234,
    gsoSize: 1380,
    csumStart: 40,
    csumOffset: 16,
  };
  writeVirtioNetHdr(frame, hdr);
  assert.deepEqual([...frame.subarray(0, 6)], [1, 4, 0x34, 0x12, 0x64, 0x05]);
  assert.deepEqual(parseVirtioNetHdr(frame), hdr);
  writePlainVirtioNetHdr(frame);
  assert.deepEqual(parseVirtioNetHdr(frame), {
    flags: 0,
    gsoType: 0,
    hdrLen: 0,
    gsoSize: 0,
    csumStart: 0,
    csumOffset: 0,
  });
  assert.equal(parseVirtioNetHdr(frame.subarray(0, 9)), null);
});

for (const v6 of [false, true]) {
  Deno.test(`a TCPv${v6 ? 6 : 4} super-packet splits into MSS-sized segments with valid checksums`, () => {
    const mss = 1000;
    const superPacket = tcpSuperPacket({
      v6,
      payloadLength: 3500,
      mss,
      flags: ACK | PSH | FIN | CWR,
      ecn: true,
    });
    const original = superPacket.frame.slice();
    const parts = segments(superPacket.frame);
    assert.deepEqual(superPacket.frame, original, "the input frame is left untouched");
    assert.equal(parts.length, 4);
    const ipLen = v6 ? 40 : 20;
    const hdrLen = ipLen + 32;
    const joined: number[] = [];
    parts.forEach((p, i) => {
      const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
      const payloadLength = i < 3 ? mss : 500;
      assert.equal(p.length, hdrLen + payloadLength, `segment ${i} length`);
      if (v6) {
        assert.equal(view.getUint16(4), p.length - 40, `segment ${i} payload length`);
      } else {
        assert.equal(view.getUint16(2), p.length, `segment ${i} total length`);
        assert.equal(view.getUint16(4), (superPacket.ipId + i) & 0xffff, `segment ${i} IP ID`);
      }
      assert.equal(
        view.getUint32(ipLen + 4),
        (superPacket.seq + i * mss) >>> 0,
        `segment ${i} sequence number`,
      );
      const flags = p[ipLen + 13];
      assert.equal((flags & (FIN | PSH)) !== 0, i === 3, `segment ${i} FIN/PSH`);
      assert.equal((flags & CWR) !== 0, i === 0, `segment ${i} CWR`);
      assert.equal(flags & ACK, ACK);
      assertChecksumsValid(p, `segment ${i}`);
      joined.push(...p.subarray(hdrLen));
    });
    assert.deepEqual(new Uint8Array(joined), superPacket.payload);
  });
}

Deno.test("a super-packet of exactly one MSS yields one segment", () => {
  const superPacket = tcpSuperPacket({ v6: false, payloadLength: 1448, mss: 1448, flags: ACK });
  const parts = segments(superPacket.frame);
  assert.equal(parts.length, 1);
  assertChecksumsValid(parts[0], "single segment");
});

Deno.test("segmentation takes the TCP header length from the packet, not hdr_len", () => {
  const superPacket = tcpSuperPacket({ v6: true, payloadLength: 3000, mss: 1500, flags: ACK });
  // The kernel may report the whole first packet as hdr_len on the forwarding path.
  superPacket.frame[2] = 0xdc;
  superPacket.frame[3] = 0x05;
  const parts = segments(superPacket.frame);
  assert.equal(parts.length, 2);
  parts.forEach((p, i) => assertChecksumsValid(p, `segment ${i}`));
});

Deno.test("a packet with a partial checksum is completed in place (TCP and UDP)", () => {
  const superPacket = tcpSuperPacket({ v6: false, payloadLength: 700, mss: 1400, flags: ACK });
  const frame = superPacket.frame;
  frame[1] = VirtioNetGsoType.NONE;
  const out = segments(frame);
  assert.equal(out.length, 1);
  assertChecksumsValid(out[0], "TCP");
  assertChecksumsValid(frame.subarray(VIRTIO_NET_HDR_LENGTH), "TCP in place");

  // UDP over IPv6 whose checksum computes to 0 must carry 0xffff.
  const udp = new Uint8Array(40 + 8 + 2);
  udp[0] = 0x60;
  udp[5] = 10;
  udp[6] = 17;
  udp.set(parseIP("fd00::1")!, 8);
  udp.set(parseIP("fd00::2")!, 24);
  udp[45] = 10;
  const partial = 0xffff ^ internetChecksum(new Uint8Array(), pseudoHeaderSum(udp, 17, 10));
  udp[46] = partial >> 8;
  udp[47] = partial & 0xff;
  // Choose the last two payload bytes so that the full sum is 0xffff (checksum 0).
  const rest = internetChecksum(udp.subarray(40));
  udp[48] = rest >> 8;
  udp[49] = rest & 0xff;
  assert.ok(completeChecksum(udp, 40, 6));
  assert.equal((udp[46] << 8) | udp[47], 0xffff);
  assertChecksumsValid(udp, "UDP");
  assert.equal(completeChecksum(udp, 40, 9), false, "offset outside the packet");
});

Deno.test("a plain frame without flags is handed out unchanged", () => {
  const frame = new Uint8Array(VIRTIO_NET_HDR_LENGTH + 20);
  frame[VIRTIO_NET_HDR_LENGTH] = 0x45;
  const before = frame.slice();
  const out = segments(frame);
  assert.deepEqual(out, [before.subarray(VIRTIO_NET_HDR_LENGTH)]);
});

Deno.test("inconsistent or unsupported offload frames are rejected with stable codes", () => {
  const isCode = (code: string) => (e: unknown) => e instanceof InputError && e.code === code;
  const scratch = new Uint8Array(65535);
  const mismatched = tcpSuperPacket({ v6: false, payloadLength: 3000, mss: 1000, flags: ACK });
  mismatched.frame[1] = VirtioNetGsoType.TCPV6;
  assert.throws(() => forEachPacket(mismatched.frame, scratch, () => {}), isCode("GSO_INVALID"));

  const badStart = tcpSuperPacket({ v6: false, payloadLength: 3000, mss: 1000, flags: ACK });
  badStart.frame[6] = 200;
  assert.throws(() => forEachPacket(badStart.frame, scratch, () => {}), isCode("GSO_INVALID"));

  const udp = tcpSuperPacket({ v6: false, payloadLength: 3000, mss: 1000, flags: ACK });
  udp.frame[1] = VirtioNetGsoType.UDP_L4;
  assert.throws(() => forEachPacket(udp.frame, scratch, () => {}), isCode("GSO_UNSUPPORTED"));

  const small = tcpSuperPacket({ v6: false, payloadLength: 3000, mss: 1000, flags: ACK });
  assert.throws(
    () => forEachPacket(small.frame, new Uint8Array(500), () => {}),
    isCode("GSO_INVALID"),
  );
  assert.throws(() => forEachPacket(new Uint8Array(5), scratch, () => {}), isCode("GSO_INVALID"));
});

Deno.test("the Internet checksum matches a reference at every alignment and length", () => {
  const data = new Uint8Array(4096 + 8);
  let seed = 12345;
  for (let i = 0; i < data.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    data[i] = seed >>> 24;
  }
  for (const offset of [0, 1, 2, 3, 4, 6]) {
    for (const length of [0, 1, 2, 63, 64, 65, 66, 67, 1499, 1500, 4096]) {
      const bytes = data.subarray(offset, offset + length);
      assert.equal(
        internetChecksum(bytes),
        referenceChecksum([bytes]),
        `offset ${offset} length ${length}`,
      );
    }
  }
  assert.equal(internetChecksum(new Uint8Array(100)), 0xffff, "all zeros");
  assert.equal(internetChecksum(new Uint8Array(100).fill(0xff)), 0, "all ones");
});

Deno.test("a frame with gso_size 1 is refused, not cut into 65 000 segments", () => {
  const isInvalid = (e: unknown) => e instanceof InputError && e.code === "GSO_INVALID";
  const scratch = new Uint8Array(65535);
  for (const gsoSize of [1, MIN_GSO_SIZE - 1]) {
    const big = tcpSuperPacket({ v6: false, payloadLength: 65_000, mss: gsoSize, flags: ACK });
    let handed = 0;
    assert.throws(() => forEachPacket(big.frame, scratch, () => handed++), isInvalid);
    assert.equal(handed, 0);
    assert.match(sanitizeOffloadFrame(big.frame) ?? "", /gso_size below 48/);
  }
  const smallest = tcpSuperPacket({
    v6: false,
    payloadLength: 65_000,
    mss: MIN_GSO_SIZE,
    flags: ACK,
  });
  assert.equal(sanitizeOffloadFrame(smallest.frame), undefined);
  assert.equal(forEachPacket(smallest.frame, scratch, () => {}), Math.ceil(65_000 / MIN_GSO_SIZE));
  assert.ok(Math.ceil(65_000 / MIN_GSO_SIZE) <= MAX_GSO_SEGMENTS);
});

Deno.test("a peer's virtio header is rebuilt: DATA_VALID dropped, hdr_len from the TCP header", () => {
  for (const v6 of [false, true]) {
    const { frame } = tcpSuperPacket({ v6, payloadLength: 3000, mss: 1000, flags: ACK, ecn: true });
    const packet = frame.slice(VIRTIO_NET_HDR_LENGTH);
    frame[0] |= VirtioNetHdrFlag.DATA_VALID | 0x80;
    frame[2] = 0xff; // hdr_len 0xffff: far beyond the packet
    frame[3] = 0xff;
    assert.equal(sanitizeOffloadFrame(frame), undefined);
    assert.deepEqual(parseVirtioNetHdr(frame), {
      flags: VirtioNetHdrFlag.NEEDS_CSUM,
      gsoType: (v6 ? VirtioNetGsoType.TCPV6 : VirtioNetGsoType.TCPV4) | VirtioNetGsoType.ECN,
      hdrLen: (v6 ? 40 : 20) + 32,
      gsoSize: 1000,
      csumStart: v6 ? 40 : 20,
      csumOffset: 16,
    });
    assert.deepEqual(frame.subarray(VIRTIO_NET_HDR_LENGTH), packet, "the packet is untouched");
  }
  // A plain packet: gso fields and unused checksum fields are zeroed, as the kernel writes them.
  const plain = new Uint8Array(VIRTIO_NET_HDR_LENGTH + 28);
  plain.set([VirtioNetHdrFlag.DATA_VALID, 0, 9, 9, 9, 9, 9, 9, 9, 9]);
  plain.set([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17], VIRTIO_NET_HDR_LENGTH);
  assert.equal(sanitizeOffloadFrame(plain), undefined);
  assert.deepEqual([...plain.subarray(0, VIRTIO_NET_HDR_LENGTH)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
});

Deno.test("virtio headers that do not match their packet are refused", () => {
  const tcp = (v6 = false) => tcpSuperPacket({ v6, payloadLength: 3000, mss: 1000, flags: ACK });
  const refused = (edit: (frame: Uint8Array) => void, v6 = false): string => {
    const { frame } = tcp(v6);
    edit(frame);
    return sanitizeOffloadFrame(frame) ?? "accepted";
  };
  const H = VIRTIO_NET_HDR_LENGTH;
  assert.match(refused((f) => f[1] = VirtioNetGsoType.UDP_L4), /gso_type/);
  assert.match(refused((f) => f[1] = 0x42), /gso_type/);
  assert.match(refused((f) => f[1] = VirtioNetGsoType.TCPV6), /IP version/);
  assert.match(refused((f) => f[0] = 0), /without a partial checksum/);
  assert.match(refused((f) => f[6] = 24), /TCP checksum/); // csum_start past the IP header
  assert.match(refused((f) => f[8] = 6), /TCP checksum/); // the UDP checksum offset
  assert.match(refused((f) => f[H + 9] = 17), /TCP checksum/); // not TCP
  assert.match(refused((f) => f[H + 7] = 1), /TCP checksum/); // an IPv4 fragment
  assert.match(refused((f) => f[H + 20 + 12] = 0x40), /TCP header/); // data offset 16 bytes
  assert.match(refused((f) => f[H + 6] = 43, true), /TCP checksum/); // a routing header, absent
  assert.match(refused((f) => (f[1] = 0, f[8] = 20)), /partial checksum/);
  assert.match(refused((f) => (f[1] = 0, f[6] = 0xff, f[7] = 0xff)), /partial checksum/);
  assert.equal(refused((f) => f[1] = 0), "accepted");
  assert.match(sanitizeOffloadFrame(new Uint8Array(25)) ?? "", /shorter/);
});

Deno.test("IPv6 extension headers before TCP are walked to csum_start", () => {
  const { frame } = tcpSuperPacket({ v6: true, payloadLength: 2000, mss: 1000, flags: ACK });
  const H = VIRTIO_NET_HDR_LENGTH;
  // Insert an 8-byte destination-options header between the IPv6 header and TCP.
  const withOptions = new Uint8Array(frame.length + 8);
  withOptions.set(frame.subarray(0, H + 40));
  withOptions.set([6, 0, 1, 4, 0, 0, 0, 0], H + 40);
  withOptions.set(frame.subarray(H + 40), H + 48);
  withOptions[H + 6] = 60;
  new DataView(withOptions.buffer).setUint16(H + 4, withOptions.length - H - 40);
  withOptions[6] = 48; // csum_start
  assert.equal(sanitizeOffloadFrame(withOptions), undefined);
  assert.equal(parseVirtioNetHdr(withOptions)!.hdrLen, 48 + 32);
  withOptions[6] = 40;
  assert.match(sanitizeOffloadFrame(withOptions) ?? "", /TCP checksum/);
});
