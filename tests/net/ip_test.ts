/** Tests of the IP module: Go-compatible address text, CIDR parsing, containment and hosts. */

import assert from "node:assert/strict";
import {
  canonicalIP,
  cidrContains,
  cidrHosts,
  cidrNetwork,
  expandedIPv6,
  formatCidr,
  formatIP,
  formatIPv4,
  formatIPv6,
  parseCidr,
  parseIP,
  parseIPv4,
  parseIPv6,
  readU32,
} from "../../lib/net/ip.ts";

// Produced by Go 1.26: fmt.Print(net.ParseIP(text).String()), null where ParseIP returns nil.
const GO_VECTORS: [string, string | null][] = [
  ["10.1.0.1", "10.1.0.1"],
  ["0.0.0.0", "0.0.0.0"],
  ["255.255.255.255", "255.255.255.255"],
  ["::", "::"],
  ["::1", "::1"],
  ["1::", "1::"],
  ["fd00::1", "fd00::1"],
  ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
  ["2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1"],
  ["2001:db8::1:0:0:0:1", "2001:db8:0:1::1"],
  ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
  ["::ffff:10.1.0.1", "10.1.0.1"],
  ["::ffff:0:0", "0.0.0.0"],
  ["::10.1.0.1", "::a01:1"],
  ["64:ff9b::192.0.2.33", "64:ff9b::c000:221"],
  ["fe80::1:2:3:4", "fe80::1:2:3:4"],
  ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
  ["1:0:0:0:2:0:0:3", "1::2:0:0:3"],
  ["0:0:1:0:0:0:0:0", "0:0:1::"],
  ["ABCD:EF01::", "abcd:ef01::"],
  ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
  ["::ffff:ffff:ffff", "255.255.255.255"],
  ["0:0:0:0:0:ffff:1.2.3.4", "1.2.3.4"],
  ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"],
  ["::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"],
  ["010.1.0.1", null],
  ["1.2.3", null],
  ["1::2::3", null],
  ["1:2:3:4:5:6:7:8:9", null],
  ["1:2:3:4:5:6:7::8", null],
  ["1.2.3.4::", null],
  ["::1.2.3.4.5", null],
  ["12345::", null],
  ["1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"],
  ["1:2:3:4:5:6:7:1.2.3.4", null],
  ["::ffff:1.2.3.256", null],
];

Deno.test("addresses print exactly as Go's net.IP.String()", () => {
  for (const [text, expected] of GO_VECTORS) {
    const bytes = parseIP(text);
    if (expected === null) {
      assert.equal(bytes, null, `${text} should not parse`);
      continue;
    }
    assert.ok(bytes, `${text} should parse`);
    assert.equal(formatIP(bytes), expected, `format of ${text}`);
    if (bytes.length === 16) assert.equal(formatIPv6(bytes), expected);
  }
});

Deno.test("IPv4 text converts to and from big-endian u32 keys", () => {
  assert.equal(parseIPv4("10.1.0.1"), 0x0a010001);
  assert.equal(parseIPv4("255.255.255.255"), 0xffffffff);
  assert.equal(formatIPv4(0xc0a80001), "192.168.0.1");
  assert.equal(parseIPv4("256.0.0.1"), null);
  assert.equal(parseIPv4("1.2.3.-4"), null);
  assert.equal(parseIPv4(" 1.2.3.4"), null);
});

Deno.test("CIDR text parses into address and prefix length", () => {
  assert.deepEqual(parseCidr("10.1.0.1/24"), {
    address: new Uint8Array([10, 1, 0, 1]),
    prefixLength: 24,
  });
  assert.equal(parseCidr("fd00::1/64")?.prefixLength, 64);
  assert.equal(parseCidr("fd00::1/64")?.address.length, 16);
  assert.equal(parseCidr("10.1.0.1/33"), null);
  assert.equal(parseCidr("10.1.0.1"), null);
  assert.equal(parseCidr("10.1.0.1/024"), null);
  assert.equal(parseCidr("fd00::1/129"), null);
});

Deno.test("a bare address is a one-address network only when asked for", () => {
  assert.equal(parseCidr("203.0.113.5"), null);
  assert.deepEqual(parseCidr("203.0.113.5", { bareAddress: true }), {
    address: new Uint8Array([203, 0, 113, 5]),
    prefixLength: 32,
  });
  assert.equal(parseCidr("fd00::5", { bareAddress: true })?.prefixLength, 128);
  assert.equal(parseCidr("nope", { bareAddress: true }), null);
  assert.equal(parseCidr("nope/8", { bareAddress: true }), null);
  assert.equal(parseCidr("fe80::1%eth0/64"), null, "zones are not addresses, as in Go");
  assert.equal(parseCidr(`${"1".repeat(60)}/8`), null);
});

Deno.test("CIDRs contain IPv4, IPv6 and IPv4-mapped addresses of their network", () => {
  const cidr = (text: string) => parseCidr(text, { bareAddress: true })!;
  const v4 = cidr("10.1.0.0/24");
  assert.ok(cidrContains(v4, "10.1.0.255"));
  assert.ok(!cidrContains(v4, "10.1.1.0"));
  assert.ok(cidrContains(v4, "::ffff:10.1.0.9"));
  assert.ok(cidrContains(v4, new Uint8Array([10, 1, 0, 3])));
  assert.ok(cidrContains(cidr("10.1.0.7/24"), "10.1.0.200"), "host bits of the CIDR are ignored");
  assert.ok(cidrContains(cidr("10.0.0.0/9"), "10.127.1.1"));
  assert.ok(!cidrContains(cidr("10.0.0.0/9"), "10.128.1.1"));
  assert.ok(cidrContains(cidr("0.0.0.0/0"), "8.8.8.8"));
  const v6 = cidr("fd00:1234::/32");
  assert.ok(cidrContains(v6, "fd00:1234:ffff::1"));
  assert.ok(!cidrContains(v6, "fd00:1235::1"));
  assert.ok(!cidrContains(v6, "10.1.0.1"));
  assert.ok(cidrContains(cidr("127.0.0.1"), "127.0.0.1"));
  assert.ok(!cidrContains(cidr("127.0.0.1"), "127.0.0.2"));
  assert.ok(!cidrContains(v4, "not an address"));
});

Deno.test("the network, hosts and text of a CIDR", () => {
  const c = parseCidr("10.1.0.9/24")!;
  assert.equal(formatCidr(c), "10.1.0.9/24");
  assert.equal(formatCidr(cidrNetwork(c)), "10.1.0.0/24");
  assert.deepEqual(c.address, new Uint8Array([10, 1, 0, 9]), "the network is a copy");
  assert.equal(formatCidr(cidrNetwork(parseCidr("10.255.255.255/9")!)), "10.128.0.0/9");
  assert.equal(formatCidr(cidrNetwork(parseCidr("fd00:1:2:3::9/50")!)), "fd00:1:2::/50");
  assert.equal(formatCidr(parseCidr("FD00:0:0::1/64")!), "fd00::1/64");
  const hosts = cidrHosts(c)!;
  assert.deepEqual([formatIPv4(hosts.first), formatIPv4(hosts.last)], ["10.1.0.1", "10.1.0.254"]);
  const wide = cidrHosts(parseCidr("10.0.0.0/8")!)!;
  assert.equal(wide.last - wide.first + 1, 2 ** 24 - 2);
  const all = cidrHosts(parseCidr("0.0.0.0/0")!)!;
  assert.deepEqual([all.first, all.last], [1, 0xfffffffe]);
  assert.deepEqual(cidrHosts(parseCidr("10.0.0.4/31")!), { first: 0x0a000004, last: 0x0a000005 });
  assert.deepEqual(cidrHosts(parseCidr("10.0.0.4/32")!), { first: 0x0a000004, last: 0x0a000004 });
  assert.equal(cidrHosts(parseCidr("fd00::/64")!), null);
});

Deno.test("canonical and expanded address text, and big-endian reads", () => {
  assert.equal(canonicalIP("fd00:0::1"), "fd00::1");
  assert.equal(canonicalIP("::ffff:10.1.0.1"), "10.1.0.1");
  assert.equal(canonicalIP("010.1.0.1"), null);
  assert.equal(expandedIPv6(parseIPv6("fd00::5")!), "fd00:0:0:0:0:0:0:5");
  assert.equal(expandedIPv6(parseIPv6("::ffff:1.2.3.4")!), "0:0:0:0:0:ffff:102:304");
  assert.equal(readU32(new Uint8Array([0, 255, 1, 2, 3]), 1), 0xff010203);
  assert.equal(parseIPv6(`${"1:".repeat(30)}1`), null);
  assert.equal(parseIPv4("1.2.3.4".padStart(40, "0")), null);
});
