/** Tests of IP header parsing and IP stream splitting. */

import assert from "node:assert/strict";
import { InputError } from "../../lib/util/errors.ts";
import { formatIP, parseIP, parseIPv4, parseIPv6 } from "../../lib/net/ip.ts";
import {
  destinationKey,
  ipPacketLength,
  IpProtocol,
  IpStreamSplitter,
  ipv4Destination,
  ipv4Source,
  ipVersion,
  parseIpHeader,
  parseIPv4Header,
  parseIPv6Header,
  sourceKey,
} from "../../lib/vpn/packet.ts";

function ipv4Packet(src: string, dst: string, payloadLength: number, options: {
  protocol?: number;
  ihl?: number;
  padding?: number;
} = {}): Uint8Array {
  const ihl = options.ihl ?? 5;
  const total = ihl * 4 + payloadLength;
  const p = new Uint8Array(total + (options.padding ?? 0));
  p[0] = 0x40 | ihl;
  p[2] = total >> 8;
  p[3] = total & 0xff;
  p[8] = 64;
  p[9] = options.protocol ?? IpProtocol.UDP;
  p.set(parseIP(src)!, 12);
  p.set(parseIP(dst)!, 16);
  for (let i = ihl * 4; i < total; i++) p[i] = i & 0xff;
  return p;
}

function ipv6Packet(src: string, dst: string, payloadLength: number): Uint8Array {
  const p = new Uint8Array(40 + payloadLength);
  p[0] = 0x60;
  p[4] = payloadLength >> 8;
  p[5] = payloadLength & 0xff;
  p[6] = IpProtocol.ICMPV6;
  p[7] = 255;
  p.set(parseIPv6(src)!, 8);
  p.set(parseIPv6(dst)!, 24);
  for (let i = 40; i < p.length; i++) p[i] = i & 0xff;
  return p;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

Deno.test("a valid IPv4 packet yields its header fields and u32 addresses", () => {
  const p = ipv4Packet("10.1.0.1", "10.1.0.2", 64, { protocol: IpProtocol.ICMP });
  assert.equal(ipVersion(p), 4);
  assert.equal(ipPacketLength(p), 84);
  const h = parseIPv4Header(p);
  assert.deepEqual(h, {
    version: 4,
    headerLength: 20,
    totalLength: 84,
    protocol: IpProtocol.ICMP,
    ttl: 64,
    src: 0x0a010001,
    dst: 0x0a010002,
  });
  assert.equal(ipv4Destination(p), parseIPv4("10.1.0.2"));
  assert.equal(ipv4Source(p), parseIPv4("10.1.0.1"));
  assert.equal(destinationKey(p), "10.1.0.2");
  assert.equal(sourceKey(p), "10.1.0.1");
  assert.deepEqual(parseIpHeader(p), h);
});

Deno.test("IPv4 options and trailing padding are accepted", () => {
  const p = ipv4Packet("10.1.0.1", "10.1.0.2", 8, { ihl: 6, padding: 6 });
  const h = parseIPv4Header(p);
  assert.equal(h?.headerLength, 24);
  assert.equal(h?.totalLength, 32);
  assert.equal(p.length, 38);
});

Deno.test("malformed or truncated IPv4 packets yield null", () => {
  const p = ipv4Packet("10.1.0.1", "10.1.0.2", 64);
  assert.equal(parseIPv4Header(p.subarray(0, 83)), null, "truncated payload");
  assert.equal(parseIPv4Header(p.subarray(0, 19)), null, "truncated header");
  const badIhl = p.slice();
  badIhl[0] = 0x44;
  assert.equal(parseIPv4Header(badIhl), null, "IHL 4");
  assert.equal(ipPacketLength(badIhl), -1);
  const shortTotal = p.slice();
  shortTotal[2] = 0;
  shortTotal[3] = 19;
  assert.equal(parseIPv4Header(shortTotal), null, "total length below header");
  const longIhl = ipv4Packet("10.1.0.1", "10.1.0.2", 0, { ihl: 15 });
  longIhl[3] = 40;
  assert.equal(parseIPv4Header(longIhl), null, "IHL beyond total length");
  const v6 = p.slice();
  v6[0] = 0x65;
  assert.equal(parseIPv4Header(v6), null, "wrong version");
  assert.equal(parseIpHeader(new Uint8Array([0x15, 0, 0, 20])), null, "version 1");
  assert.equal(destinationKey(p.subarray(0, 50)), null);
  assert.equal(ipVersion(new Uint8Array()), 0);
});

Deno.test("a valid IPv6 packet yields its header fields and Go address keys", () => {
  const p = ipv6Packet("fd00::1", "fd00:0:0:0:0:0:0:2", 24);
  assert.equal(ipVersion(p), 6);
  assert.equal(ipPacketLength(p), 64);
  const h = parseIPv6Header(p);
  assert.ok(h);
  assert.equal(h.payloadLength, 24);
  assert.equal(h.totalLength, 64);
  assert.equal(h.nextHeader, IpProtocol.ICMPV6);
  assert.equal(h.hopLimit, 255);
  assert.equal(formatIP(h.src), "fd00::1");
  assert.equal(destinationKey(p), "fd00::2");
  assert.equal(sourceKey(p), "fd00::1");
  const mapped = ipv6Packet("fd00::1", "::ffff:10.1.0.9", 0);
  assert.equal(destinationKey(mapped), "10.1.0.9", "Go prints IPv4-mapped destinations dotted");
});

Deno.test("truncated IPv6 packets yield null", () => {
  const p = ipv6Packet("fd00::1", "fd00::2", 24);
  assert.equal(parseIPv6Header(p.subarray(0, 63)), null);
  assert.equal(parseIPv6Header(p.subarray(0, 39)), null);
  assert.equal(destinationKey(p.subarray(0, 63)), null);
  assert.equal(ipPacketLength(p.subarray(0, 5)), 0, "length field not yet present");
});

Deno.test("the stream splitter recovers every packet whatever the chunk boundaries", () => {
  const packets = [
    ipv4Packet("10.1.0.1", "10.1.0.2", 0),
    ipv6Packet("fd00::1", "fd00::2", 1200),
    ipv4Packet("10.1.0.1", "10.1.0.3", 1400, { ihl: 7 }),
    ipv6Packet("fd00::1", "fd00::3", 0),
    ipv4Packet("10.1.0.1", "10.1.0.4", 3),
  ];
  const stream = concat(packets);
  const chunkings = [[stream.length], [1], [2], [3], [5], [7], [41], [1500], [4, 1, 60, 2, 999]];
  for (const sizes of chunkings) {
    const splitter = new IpStreamSplitter();
    const seen: Uint8Array[] = [];
    for (let at = 0, k = 0; at < stream.length; k++) {
      const size = sizes[k % sizes.length];
      splitter.push(stream.subarray(at, at + size), (p) => seen.push(p.slice()));
      at += size;
    }
    assert.deepEqual(seen, packets, `chunk sizes ${sizes}`);
    assert.equal(splitter.pendingBytes, 0);
  }
});

Deno.test("the stream splitter hands out whole packets without copying", () => {
  const a = ipv4Packet("10.1.0.1", "10.1.0.2", 10);
  const b = ipv4Packet("10.1.0.1", "10.1.0.2", 20);
  const stream = concat([a, b]);
  const views: Uint8Array[] = [];
  new IpStreamSplitter().push(stream, (p) => views.push(p));
  assert.equal(views.length, 2);
  assert.equal(views[0].buffer, stream.buffer);
  assert.equal(views[1].byteOffset, a.length);
});

Deno.test("the stream splitter holds back a partial packet until it completes", () => {
  const p = ipv6Packet("fd00::1", "fd00::2", 100);
  const splitter = new IpStreamSplitter();
  let count = 0;
  splitter.push(p.subarray(0, 3), () => count++);
  assert.equal(splitter.pendingBytes, 3);
  splitter.push(p.subarray(3, 50), () => count++);
  assert.equal(splitter.pendingBytes, 50);
  assert.equal(count, 0);
  splitter.push(p.subarray(50), () => count++);
  assert.equal(count, 1);
  assert.equal(splitter.pendingBytes, 0);
});

Deno.test("the stream splitter rejects garbage and oversized packets", () => {
  const splitter = new IpStreamSplitter({ maxPacketLength: 1500 });
  assert.throws(
    () => splitter.push(new Uint8Array([0x00, 1, 2, 3, 4, 5]), () => {}),
    (e: unknown) => e instanceof InputError && e.code === "IP_STREAM_INVALID",
  );
  assert.throws(
    () => splitter.push(ipv4Packet("10.1.0.1", "10.1.0.2", 1500), () => {}),
    (e: unknown) => e instanceof InputError && e.code === "IP_STREAM_INVALID",
  );
  assert.equal(splitter.pendingBytes, 0);
  const ok: Uint8Array[] = [];
  splitter.push(ipv4Packet("10.1.0.1", "10.1.0.2", 4), (p) => ok.push(p));
  assert.equal(ok.length, 1, "usable again after the error");
});
