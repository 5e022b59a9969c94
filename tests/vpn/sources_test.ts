import assert from "node:assert/strict";
import { newSender, SourceTable, SourceVerdict } from "../../lib/vpn/sources.ts";
import { formatIPv6, parseIP } from "../../lib/net/ip.ts";

const machine = (peer: string) => JSON.stringify({ PeerID: peer, Address: "" });

/** A minimal IP header from `src` (v4 or v6 text). */
function from(src: string): Uint8Array {
  const bytes = parseIP(src)!;
  if (bytes.length === 4) {
    const p = new Uint8Array(20);
    p[0] = 0x45;
    p.set(bytes, 12);
    return p;
  }
  const p = new Uint8Array(40);
  p[0] = 0x60;
  p.set(bytes, 8);
  return p;
}

Deno.test("a source is accepted only from the peer its machines entry names", () => {
  const table = SourceTable.build({
    selfPeerId: "self",
    machines: [
      ["10.1.0.1", machine("self")],
      ["10.1.0.2", machine("B")],
      ["10.1.0.3", machine("C")],
      ["10.1.0.4", machine("C")],
      ["fd00::2", machine("B")],
      ["10.1.0.09", machine("B")], // not canonical: Go never routes it, so it owns nothing
      ["10.1.0.10", "not json"],
    ],
  });
  const b = newSender("B");
  const c = newSender("C");
  const stranger = newSender("X");
  const check = (src: string, sender = b) => table.check(from(src), 0, sender);
  assert.equal(check("10.1.0.2"), SourceVerdict.OK);
  assert.equal(check("fd00::2"), SourceVerdict.OK);
  assert.equal(check("::ffff:10.1.0.2"), SourceVerdict.OK, "IPv4-mapped is the IPv4 address");
  assert.equal(check("10.1.0.3"), SourceVerdict.NOT_OWNED);
  assert.equal(check("10.1.0.1"), SourceVerdict.NOT_OWNED, "our own address");
  assert.equal(check("10.1.0.3", c), SourceVerdict.OK);
  assert.equal(check("10.1.0.4", c), SourceVerdict.OK, "a peer may own several addresses");
  assert.equal(check("10.1.0.2", stranger), SourceVerdict.NOT_OWNED);
  assert.equal(check("10.1.0.9"), SourceVerdict.UNKNOWN);
  assert.equal(check("10.1.0.10"), SourceVerdict.UNKNOWN);
  assert.equal(check("192.168.1.1"), SourceVerdict.UNKNOWN, "no router: outside sources refused");
  assert.equal(check("fd00::3"), SourceVerdict.UNKNOWN);
  assert.equal(table.size, 5);
});

Deno.test("unknown sources are accepted from the peer our router address resolves to only", () => {
  const machines: [string, string][] = [["10.1.0.2", machine("B")], ["10.1.0.254", machine("R")]];
  const table = SourceTable.build({ selfPeerId: "self", machines, router: "10.1.0.254" });
  const r = newSender("R");
  assert.equal(table.check(from("192.168.1.7"), 0, r), SourceVerdict.OK);
  assert.equal(table.check(from("2001:db8::7"), 0, r), SourceVerdict.OK);
  assert.equal(table.check(from("10.1.0.2"), 0, r), SourceVerdict.NOT_OWNED, "never a member's");
  assert.equal(table.check(from("192.168.1.7"), 0, newSender("B")), SourceVerdict.UNKNOWN);
  // We are the router ourselves: nobody may send unknown sources to us.
  const routerSelf = SourceTable.build({
    selfPeerId: "R",
    machines,
    router: "10.1.0.254",
  });
  assert.equal(routerSelf.check(from("192.168.1.7"), 0, r), SourceVerdict.UNKNOWN);
});

Deno.test("with a static peer table, it alone says who owns which address", () => {
  const table = SourceTable.build({
    selfPeerId: "self",
    machines: [["10.1.0.2", machine("Z")]],
    staticPeers: new Map([["10.1.0.2", "B"], ["10.1.0.9", "R"]]),
    router: "10.1.0.9",
  });
  assert.equal(table.check(from("10.1.0.2"), 0, newSender("B")), SourceVerdict.OK);
  assert.equal(table.check(from("10.1.0.2"), 0, newSender("Z")), SourceVerdict.NOT_OWNED);
  assert.equal(table.check(from("8.8.8.8"), 0, newSender("R")), SourceVerdict.OK);
});

Deno.test("many IPv6 and IPv4 owners: every address resolves to its own peer", () => {
  const machines: [string, string][] = [];
  for (let i = 0; i < 20_000; i++) {
    const v6 = new Uint8Array(16);
    crypto.getRandomValues(v6);
    machines.push([formatIPv6(v6), machine(`P${i}`)]);
    machines.push([`10.${(i >> 8) & 0xff}.${i & 0xff}.${(i * 7) & 0xff}`, machine(`P${i}`)]);
  }
  const table = SourceTable.build({ selfPeerId: "self", machines });
  for (let i = 0; i < machines.length; i++) {
    const [address, value] = machines[i];
    const owner = newSender(JSON.parse(value).PeerID);
    const other = newSender(`P${(i + 2) % 20_000 === 0 ? 1 : (i + 2) >> 1}`);
    const packet = from(address);
    assert.equal(table.check(packet, 0, owner), SourceVerdict.OK, address);
    if (other.peer !== owner.peer) {
      assert.equal(table.check(packet, 0, other), SourceVerdict.NOT_OWNED, address);
    }
  }
});

Deno.test("a sender's index follows the table it is checked against", () => {
  const one = SourceTable.build({ selfPeerId: "s", machines: [["10.1.0.2", machine("B")]] });
  const two = SourceTable.build({
    selfPeerId: "s",
    machines: [["10.1.0.5", machine("A")], ["10.1.0.2", machine("C")]],
  });
  const b = newSender("B");
  assert.equal(one.check(from("10.1.0.2"), 0, b), SourceVerdict.OK);
  assert.equal(two.check(from("10.1.0.2"), 0, b), SourceVerdict.NOT_OWNED, "taken over by C");
  assert.equal(one.check(from("10.1.0.2"), 0, b), SourceVerdict.OK);
});
