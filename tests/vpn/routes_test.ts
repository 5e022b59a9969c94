/** Tests of the route table: machines, liveness, static table, router, IPv6, our own address. */
import assert from "node:assert/strict";
import { parseIPv4, parseIPv6 } from "../../lib/net/ip.ts";
import { type RouteInput, RouteMiss, RouteTable } from "../../lib/vpn/routes.ts";

const SELF = "12D3KooWSelfSelfSelfSelfSelfSelfSelfSelfSelfSelf";
const B = "12D3KooWBbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const C = "12D3KooWCccccccccccccccccccccccccccccccccccccccc";
const R = "12D3KooWRrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr";

const machine = (peer: string, address = "") =>
  JSON.stringify({
    PeerID: peer,
    Hostname: "h",
    OS: "linux",
    Arch: "amd64",
    Address: address,
    Version: "",
  });
const ip = (text: string) => parseIPv4(text)!;

function table(extra: Partial<RouteInput> = {}): RouteTable {
  return RouteTable.build({
    selfPeerId: SELF,
    selfAddress: "10.1.0.1",
    machines: [
      ["10.1.0.1", machine(SELF)],
      ["10.1.0.2", machine(B)],
      ["10.1.0.3", machine(C)],
    ],
    isOwnerLive: () => true,
    ...extra,
  });
}

function v6Packet(src: string, dst: string): Uint8Array {
  const p = new Uint8Array(40);
  p[0] = 0x60;
  p.set(parseIPv6(src)!, 8);
  p.set(parseIPv6(dst)!, 24);
  return p;
}

Deno.test("machines entries route by their PeerID; unknown addresses miss", () => {
  const t = table();
  assert.equal(t.routeIPv4(ip("10.1.0.1"), ip("10.1.0.2")), B);
  assert.equal(t.routeIPv4(ip("10.1.0.1"), ip("10.1.0.3")), C);
  assert.equal(t.routeIPv4(ip("10.1.0.1"), ip("10.1.0.9")), RouteMiss.NO_ROUTE);
  assert.equal(t.size, 3);
});

Deno.test("packets to our own address, or to an entry we own, are not sent", () => {
  const t = table({ machines: [["10.1.0.7", machine(SELF)]] });
  assert.equal(t.routeIPv4(ip("10.1.0.2"), ip("10.1.0.1")), RouteMiss.SELF);
  assert.equal(t.routeIPv4(ip("10.1.0.1"), ip("10.1.0.7")), RouteMiss.SELF);
});

Deno.test("an entry whose owner has no fresh heartbeat is dropped, checked by the value's PeerID", () => {
  const asked: string[] = [];
  const t = table({ isOwnerLive: (p) => (asked.push(p), p !== C) });
  assert.equal(t.routeIPv4(ip("10.1.0.1"), ip("10.1.0.2")), B);
  assert.equal(t.routeIPv4(ip("10.1.0.1"), ip("10.1.0.3")), RouteMiss.OWNER_NOT_LIVE);
  assert.deepEqual(asked.sort(), [B, C].sort());
  assert.deepEqual(
    t.entries().map((e) => [e.address, e.status]),
    [["10.1.0.1", "self"], ["10.1.0.2", "ok"], ["10.1.0.3", "owner-not-live"]],
  );
});

Deno.test("non-canonical keys and values without a PeerID never route (as Go's lookup)", () => {
  const t = table({
    machines: [
      ["010.1.0.2", machine(B)],
      ["10.1.0.4", "not json"],
      ["10.1.0.5", JSON.stringify({ PeerID: 5 })],
      ["fd00:0::2", machine(B)],
      ["10.1.0.6", machine(C)],
    ],
  });
  assert.equal(t.routeIPv4(ip("10.1.0.1"), ip("10.1.0.2")), RouteMiss.NO_ROUTE);
  assert.equal(t.routeIPv4(ip("10.1.0.1"), ip("10.1.0.4")), RouteMiss.NO_ROUTE);
  assert.equal(t.routeIPv4(ip("10.1.0.1"), ip("10.1.0.5")), RouteMiss.NO_ROUTE);
  assert.equal(t.routeIPv6(v6Packet("fd00::1", "fd00::2"), 0), RouteMiss.NO_ROUTE);
  assert.equal(t.routeIPv4(ip("10.1.0.1"), ip("10.1.0.6")), C);
});

Deno.test("a static table replaces the ledger and routes without liveness checks", () => {
  const t = table({
    staticPeers: new Map([["10.1.0.9", R], ["10.1.0.3", B]]),
    isOwnerLive: () => false,
  });
  assert.equal(t.routeIPv4(ip("10.1.0.1"), ip("10.1.0.9")), R);
  assert.equal(t.routeIPv4(ip("10.1.0.1"), ip("10.1.0.3")), B);
  assert.equal(t.routeIPv4(ip("10.1.0.1"), ip("10.1.0.2")), RouteMiss.NO_ROUTE);
});

Deno.test("the router takes our packets to addresses without a machines entry", () => {
  const t = table({
    machines: [["10.1.0.2", machine(B)], ["10.1.0.254", machine(R)], ["10.1.0.3", machine(C)]],
    isOwnerLive: (p) => p !== C,
    router: "10.1.0.254",
  });
  // From us to an unknown address: the router's peer.
  assert.equal(t.routeIPv4(ip("10.1.0.1"), ip("192.168.1.10")), R);
  // From another source (forwarded traffic): Go does not redirect.
  assert.equal(t.routeIPv4(ip("10.1.0.8"), ip("192.168.1.10")), RouteMiss.NO_ROUTE);
  // A known address keeps its own route, even when its owner is not live.
  assert.equal(t.routeIPv4(ip("10.1.0.1"), ip("10.1.0.2")), B);
  assert.equal(t.routeIPv4(ip("10.1.0.1"), ip("10.1.0.3")), RouteMiss.OWNER_NOT_LIVE);
});

Deno.test("the router check uses the ledger even with a static table; the router resolves in it", () => {
  const t = table({
    machines: [["10.1.0.2", machine(B)]],
    staticPeers: new Map([["10.1.0.254", R]]),
    router: "10.1.0.254",
  });
  assert.equal(t.routeIPv4(ip("10.1.0.1"), ip("8.8.8.8")), R);
  // In machines but not in the static table: no redirect, and no static route either.
  assert.equal(t.routeIPv4(ip("10.1.0.1"), ip("10.1.0.2")), RouteMiss.NO_ROUTE);
});

Deno.test("IPv6 destinations route by Go's canonical text, including our own and the router", () => {
  const t = RouteTable.build({
    selfPeerId: SELF,
    selfAddress: "fd00::1",
    machines: [["fd00::2", machine(B)], ["fd00::ff", machine(R)], ["10.1.0.3", machine(C)]],
    isOwnerLive: () => true,
    router: "fd00::ff",
  });
  assert.equal(t.routeIPv6(v6Packet("fd00::1", "fd00:0:0::2"), 0), B);
  assert.equal(t.routeIPv6(v6Packet("fd00::2", "fd00::1"), 0), RouteMiss.SELF);
  assert.equal(t.routeIPv6(v6Packet("fd00::1", "2001:db8::1"), 0), R);
  assert.equal(t.routeIPv6(v6Packet("fd00::5", "2001:db8::1"), 0), RouteMiss.NO_ROUTE);
  // An IPv4-mapped destination prints dotted, so it finds the IPv4 entry.
  assert.equal(t.routeIPv6(v6Packet("fd00::1", "::ffff:10.1.0.3"), 0), C);
  // At an offset (behind a virtio header).
  const framed = new Uint8Array(50);
  framed.set(v6Packet("fd00::1", "fd00::2"), 10);
  assert.equal(t.routeIPv6(framed, 10), B);
});

Deno.test("an empty table misses everything", () => {
  const t = RouteTable.empty("10.1.0.1");
  assert.equal(t.routeIPv4(ip("10.1.0.1"), ip("10.1.0.2")), RouteMiss.NO_ROUTE);
  assert.equal(t.routeIPv4(ip("10.1.0.2"), ip("10.1.0.1")), RouteMiss.SELF);
});
