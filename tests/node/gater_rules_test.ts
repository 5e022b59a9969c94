import assert from "node:assert/strict";
import { GaterRules } from "../../lib/node/gater.ts";
import { InputError } from "../../lib/util/errors.ts";
import { multiaddr } from "@multiformats/multiaddr";

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

Deno.test("bad blacklist or blocked ranges are refused with CIDR_INVALID", () => {
  const invalid = (e: unknown) => e instanceof InputError && e.code === "CIDR_INVALID";
  assert.throws(() => new GaterRules(["10.0.0.0/33"]), invalid);
  assert.throws(() => new GaterRules(["fd00::/129"]), invalid);
  assert.throws(() => new GaterRules().setBlockedCidrs(["nope/8"]), invalid);
  assert.throws(() => new GaterRules().setBlockedCidrs(["10.1.0.0/024"]), invalid);
});
