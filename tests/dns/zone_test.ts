import assert from "node:assert/strict";
import { hostnameLabel, MachineZone, parseZone, reverseName } from "../../lib/dns/zone.ts";

const machine = (peer: string, hostname: string) =>
  JSON.stringify({ PeerID: peer, Hostname: hostname });

Deno.test("hostnames become DNS labels: first part, lower case, other characters as one dash", () => {
  assert.equal(hostnameLabel("web"), "web");
  assert.equal(hostnameLabel("Web-Server.example.com"), "web-server");
  assert.equal(hostnameLabel("my_laptop (2)"), "my-laptop-2");
  assert.equal(hostnameLabel("--db--"), "db");
  assert.equal(hostnameLabel("café"), "caf");
  assert.equal(hostnameLabel("x".repeat(70)), "x".repeat(63));
  assert.equal(hostnameLabel(`${"x".repeat(62)}_y`), "x".repeat(62));
  assert.equal(hostnameLabel("___"), undefined);
  assert.equal(hostnameLabel(""), undefined);
});

Deno.test("zone names: a domain other than the root, lower case and absolute; empty is none", () => {
  assert.equal(parseZone("EdgeVPN"), "edgevpn.");
  assert.equal(parseZone("mesh.example.com."), "mesh.example.com.");
  assert.equal(parseZone(""), undefined);
  for (const bad of [".", "a..b", "a b"]) assert.throws(() => parseZone(bad), /expected a domain/);
});

Deno.test("machines answer by hostname and by peer ID; IPv4 and IPv6 addresses apart", () => {
  const zone = new MachineZone("edgevpn.");
  zone.rebuild(
    new Map([
      ["10.1.0.5", machine("12D3KooWAlpha", "Alpha")],
      ["fd00::5", machine("12D3KooWAlpha", "Alpha")],
      ["10.1.0.6", machine("12D3KooWBravo", "bravo.local")],
    ]),
    () => true,
  );
  const alpha = zone.lookup("ALPHA.edgevpn.");
  assert.equal(alpha.kind, "machine");
  if (alpha.kind !== "machine") return;
  assert.deepEqual(alpha.machine.ipv4, ["10.1.0.5"]);
  assert.deepEqual(alpha.machine.ipv6, ["fd00::5"]);
  assert.deepEqual(alpha.machine.names, ["alpha.edgevpn.", "12d3koowalpha.edgevpn."]);
  assert.equal(zone.lookup("12d3koowbravo.edgevpn.").kind, "machine");
  assert.equal(zone.lookup("bravo.edgevpn.").kind, "machine");
  assert.equal(zone.lookup("charlie.edgevpn.").kind, "none");
  assert.equal(zone.lookup("edgevpn.").kind, "apex");
  assert.equal(zone.lookup("alpha.example.").kind, "outside");
  assert.equal(zone.lookup("xedgevpn.").kind, "outside");
  assert.equal(zone.reverse("5.0.1.10.in-addr.arpa.")?.peerId, "12D3KooWAlpha");
  assert.equal(zone.reverse(reverseName("fd00::5"))?.peerId, "12D3KooWAlpha");
  assert.equal(zone.reverse("7.0.1.10.in-addr.arpa."), undefined);
});

Deno.test("a hostname two peers share names neither: each gets <label>-<end of its peer ID>", () => {
  const zone = new MachineZone("edgevpn.");
  zone.rebuild(
    new Map([
      ["10.1.0.5", machine("12D3KooWAAAAAAone111", "ubuntu")],
      ["10.1.0.6", machine("12D3KooWBBBBBBtwo222", "Ubuntu")],
      ["10.1.0.7", machine("12D3KooWCCCCCCthree3", "db")],
    ]),
    () => true,
  );
  assert.equal(zone.lookup("ubuntu.edgevpn.").kind, "none");
  const one = zone.lookup("ubuntu-one111.edgevpn.");
  const two = zone.lookup("ubuntu-two222.edgevpn.");
  assert.ok(one.kind === "machine" && one.machine.ipv4[0] === "10.1.0.5");
  assert.ok(two.kind === "machine" && two.machine.ipv4[0] === "10.1.0.6");
  assert.equal(zone.lookup("db.edgevpn.").kind, "machine");
});

Deno.test("a member cannot take a name another claims, only make it ambiguous", () => {
  const zone = new MachineZone("edgevpn.");
  // The second machine calls itself by the first's peer ID: that name answers for neither.
  zone.rebuild(
    new Map([
      ["10.1.0.5", machine("12D3KooWVictim", "victim")],
      ["10.1.0.6", machine("12D3KooWMallory", "12D3KooWVictim")],
    ]),
    () => true,
  );
  assert.equal(zone.lookup("12d3koowvictim.edgevpn.").kind, "none");
  assert.equal(zone.lookup("victim.edgevpn.").kind, "machine");
});

Deno.test("machines of peers that are not live, or whose entries are not machines, are left out", () => {
  const zone = new MachineZone("mesh.example.");
  zone.rebuild(
    new Map([
      ["10.1.0.5", machine("12D3KooWLive", "live")],
      ["10.1.0.6", machine("12D3KooWGone", "gone")],
      ["10.1.0.7", '"not an object"'],
      ["10.1.0.8", JSON.stringify({ Hostname: "nopeer" })],
      ["not-an-ip", machine("12D3KooWOdd", "odd")],
    ]),
    (peer) => peer !== "12D3KooWGone",
  );
  assert.equal(zone.lookup("live.mesh.example.").kind, "machine");
  assert.equal(zone.lookup("gone.mesh.example.").kind, "none");
  assert.equal(zone.lookup("nopeer.mesh.example.").kind, "none");
  assert.equal(zone.lookup("odd.mesh.example.").kind, "none");
  assert.deepEqual(zone.machines.map((m) => m.peerId), ["12D3KooWLive"]);
});
