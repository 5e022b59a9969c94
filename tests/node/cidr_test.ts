import assert from "node:assert/strict";
import { cidrContains, parseCidr, parseIp } from "../../lib/node/cidr.ts";
import { GaterRules } from "../../lib/node/gater.ts";
import { InputError } from "../../lib/util/errors.ts";
import { multiaddr } from "@multiformats/multiaddr";

Deno.test("CIDRs match IPv4, IPv6 and IPv4-mapped addresses", () => {
  const v4 = parseCidr("10.1.0.0/24");
  assert.ok(cidrContains(v4, "10.1.0.255"));
  assert.ok(!cidrContains(v4, "10.1.1.0"));
  assert.ok(cidrContains(v4, "::ffff:10.1.0.9"));
  assert.ok(cidrContains(parseCidr("10.0.0.0/9"), "10.127.1.1"));
  assert.ok(!cidrContains(parseCidr("10.0.0.0/9"), "10.128.1.1"));
  assert.ok(cidrContains(parseCidr("0.0.0.0/0"), "8.8.8.8"));
  const v6 = parseCidr("fd00:1234::/32");
  assert.ok(cidrContains(v6, "fd00:1234:ffff::1"));
  assert.ok(!cidrContains(v6, "fd00:1235::1"));
  assert.ok(!cidrContains(v6, "10.1.0.1"));
  assert.ok(cidrContains(parseCidr("127.0.0.1"), "127.0.0.1"));
  assert.ok(!cidrContains(parseCidr("127.0.0.1"), "127.0.0.2"));
});

Deno.test("IP parsing accepts the usual forms and rejects the rest", () => {
  assert.deepEqual(parseIp("::1"), Uint8Array.from([...new Array(15).fill(0), 1]));
  assert.deepEqual(parseIp("fe80::1%eth0")?.length, 16);
  assert.deepEqual(parseIp("::ffff:1.2.3.4")?.subarray(12), Uint8Array.from([1, 2, 3, 4]));
  for (const bad of ["1.2.3", "1.2.3.256", "1::2::3", "g::1", "1:2:3:4:5:6:7:8:9", ""]) {
    assert.equal(parseIp(bad), undefined, bad);
  }
  assert.throws(() => parseCidr("10.0.0.0/33"), InputError);
  assert.throws(() => parseCidr("nope/8"), InputError);
});

Deno.test("gater rules tell blacklisted peers, blacklisted ranges and blocked ranges apart", () => {
  const peer = "12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf";
  const rules = new GaterRules(["192.168.7.0/24", "203.0.113.5", peer, " "]);
  rules.setBlockedCidrs(["10.1.0.0/24"]);
  assert.equal(rules.peerRefusal(peer), "blacklistedPeer");
  assert.equal(rules.addressRefusal("192.168.7.9"), "blacklistedAddress");
  assert.equal(rules.addressRefusal("203.0.113.5"), "blacklistedAddress");
  assert.equal(rules.addressRefusal("10.1.0.5"), "blockedAddress");
  assert.equal(rules.addressRefusal("10.1.1.5"), undefined);
  assert.equal(rules.multiaddrRefusal(multiaddr("/ip4/10.1.0.2/tcp/1")), "blockedAddress");
  assert.equal(
    rules.multiaddrRefusal(multiaddr(`/ip4/1.1.1.1/tcp/1/p2p/${peer}`)),
    "blacklistedPeer",
  );
  assert.equal(rules.multiaddrRefusal(multiaddr("/ip4/1.1.1.1/tcp/1")), undefined);
  assert.deepEqual(rules.blockedCidrs, ["10.1.0.0/24"]);
});
