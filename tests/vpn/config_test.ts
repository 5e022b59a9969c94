/** Tests of VPN option parsing and of the announced machines value. */
import assert from "node:assert/strict";
import { generateIdentity } from "../../lib/crypto/identity.ts";
import { UsageError } from "../../lib/util/errors.ts";
import { VERSION } from "../../lib/version.ts";
import {
  parseRouter,
  parseStaticPeertable,
  parseVpnAddress,
  VPN_DEFAULTS,
} from "../../lib/vpn/config.ts";
import { goArch, machineOf, needsAnnouncement } from "../../lib/vpn/machine.ts";

Deno.test("the address parses as IPv4 or IPv6 and keys as Go prints it", () => {
  const v4 = parseVpnAddress("10.1.0.7/24");
  assert.deepEqual([v4.ip, v4.version, v4.ipv4, v4.prefixLength, v4.cidr], [
    "10.1.0.7",
    4,
    0x0a010007,
    24,
    "10.1.0.7/24",
  ]);
  const v6 = parseVpnAddress("FD00:0:0::0001/64");
  assert.deepEqual([v6.ip, v6.version, v6.ipv4, v6.prefixLength], ["fd00::1", 6, -1, 64]);
  assert.equal(parseVpnAddress(VPN_DEFAULTS.address).ip, "10.1.0.1");
  for (const bad of ["10.1.0.7", "10.1.0.7/33", "10.1.0/24", "fd00::1/129", ""]) {
    assert.throws(
      () => parseVpnAddress(bad),
      (e) => e instanceof UsageError && e.code === "VPN_ADDRESS_INVALID",
      bad,
    );
  }
});

Deno.test("router addresses are canonicalised; junk is a usage error", () => {
  assert.equal(parseRouter(""), "");
  assert.equal(parseRouter("10.1.0.254"), "10.1.0.254");
  assert.equal(parseRouter("fd00:0::ff"), "fd00::ff");
  assert.throws(
    () => parseRouter("router"),
    (e) => (e as UsageError).code === "VPN_ROUTER_INVALID",
  );
  assert.throws(() => parseRouter("010.1.0.1"), UsageError, "no leading zeros, as Go");
});

Deno.test("static peer table entries follow Go's ip:peerid rule", async () => {
  const { peerId } = await generateIdentity();
  const table = parseStaticPeertable([
    `10.1.0.2:${peerId}`,
    `10.1.0.3:QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN`,
  ]);
  assert.equal(table.get("10.1.0.2"), peerId);
  assert.equal(table.size, 2);
  for (const bad of [`fd00::2:${peerId}`, `10.1.0.2`, `10.1.0.2:not-a-peer`, `host:${peerId}`]) {
    assert.throws(
      () => parseStaticPeertable([bad]),
      (e) => e instanceof UsageError && e.code === "VPN_STATIC_PEER_INVALID",
      bad,
    );
  }
});

Deno.test("the machines value has Go's fields in Go's order with GOOS/GOARCH names", () => {
  const m = machineOf({
    peerId: "12D3KooWX",
    hostname: "box",
    address: "10.1.0.2",
    arch: "x86_64",
    os: "linux",
  });
  assert.equal(
    JSON.stringify(m),
    `{"PeerID":"12D3KooWX","Hostname":"box","OS":"linux","Arch":"amd64","Address":"10.1.0.2","Version":"${VERSION}"}`,
  );
  assert.equal(goArch("aarch64"), "arm64");
  assert.equal(machineOf({ peerId: "p", hostname: "h", address: "a" }).OS, Deno.build.os);
});

Deno.test("our entry is rewritten only when missing or naming another peer (Go's rule)", () => {
  const mine = JSON.stringify({ PeerID: "12D3KooWA", Hostname: "old" });
  assert.equal(needsAnnouncement(undefined, "12D3KooWA"), true);
  assert.equal(needsAnnouncement(mine, "12D3KooWA"), false);
  assert.equal(needsAnnouncement(mine, "12D3KooWB"), true);
  assert.equal(needsAnnouncement("garbage", "12D3KooWA"), true);
});
