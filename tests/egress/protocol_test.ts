import assert from "node:assert/strict";
import { isNonPublicAddress } from "../../lib/egress/address_policy.ts";
import {
  encodeTunnelRequest,
  parseTunnelRequest,
  parseTunnelStatus,
  TunnelStatus,
} from "../../lib/egress/protocol.ts";
import { InputError } from "../../lib/util/errors.ts";

Deno.test("a tunnel request round-trips, and is incomplete until its last byte", () => {
  for (
    const target of [{ host: "example.com", port: 443 }, { host: "::1", port: 1 }, {
      host: "x".repeat(255),
      port: 65535,
    }]
  ) {
    const bytes = encodeTunnelRequest(target);
    for (let n = 0; n < bytes.length; n++) {
      assert.equal(parseTunnelRequest(bytes.subarray(0, n)), undefined, `prefix ${n}`);
    }
    const tail = Uint8Array.of(...bytes, 7, 8);
    assert.deepEqual(parseTunnelRequest(tail), { ...target, length: bytes.length });
  }
});

Deno.test("malformed tunnel requests are refused with a typed error", () => {
  const bad = [
    [2, 1, 0, 80, 1, 120], // version
    [1, 2, 0, 80, 1, 120], // kind
    [1, 1, 0, 0, 1, 120], // port 0
    [1, 1, 0, 80, 0], // empty host
    [1, 1, 0, 80, 3, 97, 32, 98], // a space
    [1, 1, 0, 80, 2, 0xc3, 0x28], // not UTF-8
  ];
  for (const bytes of bad) {
    assert.throws(() => parseTunnelRequest(Uint8Array.from(bytes)), InputError, `${bytes}`);
  }
  assert.throws(() => encodeTunnelRequest({ host: "", port: 80 }), InputError);
  assert.throws(() => encodeTunnelRequest({ host: "a", port: 70000 }), InputError);
  assert.throws(() => encodeTunnelRequest({ host: "a/b", port: 80 }), InputError);
  assert.equal(parseTunnelStatus(0), TunnelStatus.ok);
  assert.throws(() => parseTunnelStatus(8), InputError);
});

Deno.test("private, loopback, link-local and reserved addresses are not public; IPv6 forms of them neither", () => {
  for (
    const a of [
      "127.0.0.1",
      "10.1.0.5",
      "172.31.255.255",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "224.0.0.1",
      "255.255.255.255",
      "::1",
      "::",
      "fe80::1",
      "fd00::1",
      "ff02::1",
      "::ffff:127.0.0.1",
      "::ffff:10.0.0.1",
      "64:ff9b::a00:1",
      "2002:7f00:1::",
      "not an address",
    ]
  ) assert.ok(isNonPublicAddress(a), a);
  for (const a of ["93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8"]) {
    assert.ok(!isNonPublicAddress(a), a);
  }
});
