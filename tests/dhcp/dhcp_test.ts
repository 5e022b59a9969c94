import assert from "node:assert/strict";
import { generateNetworkConfig } from "../../lib/config/token.ts";
import { leaseFileName } from "../../lib/crypto/derive.ts";
import { dhcpDecision, nextFreeIP, nextIP, obtainAddress } from "../../lib/dhcp/dhcp.ts";
import { createMesh, type Mesh } from "../../lib/mesh/mesh.ts";
import { leader } from "../../lib/util/leader.ts";
import { formatIPv4 } from "../../lib/net/ip.ts";

Deno.test("nextIP follows Go's utils.NextIP vectors", () => {
  assert.equal(nextIP("10.1.1.0", ["1.1.0.1"]), "1.1.0.2");
  assert.equal(nextIP("10.1.1.0", []), "10.1.1.0");
  assert.equal(nextIP("10.1.0.1", ["10.1.0.1", "10.1.0.9", "10.1.0.3"]), "10.1.0.10");
});

Deno.test("nextIP takes a machines bucket far larger than a call's argument limit", () => {
  // Math.max(...used) threw RangeError beyond ~130 000 entries.
  const used = Array.from({ length: 300_000 }, (_, i) => formatIPv4(0x0a000000 + i));
  assert.equal(nextIP("10.1.0.1", used), formatIPv4(0x0a000000 + 300_000));
  assert.equal(nextFreeIP("10.200.0.1", used), "10.200.0.1");
});

Deno.test("nextFreeIP stays on free host addresses of the base's /24", () => {
  assert.equal(nextFreeIP("10.1.0.1", []), "10.1.0.1");
  assert.equal(nextFreeIP("10.1.0.1", ["10.1.0.1"]), "10.1.0.2");
  assert.equal(nextFreeIP("10.1.0.1", ["10.1.0.1", "10.1.0.254"]), "10.1.0.2");
  assert.equal(nextFreeIP("10.1.0.1", ["10.9.9.9"]), "10.1.0.1");
  const all = Array.from({ length: 254 }, (_, i) => `10.1.0.${i + 1}`);
  assert.throws(() => nextFreeIP("10.1.0.1", all), /No free address/);
});

Deno.test("one DHCP round decides like Go: alone waits, the leader claims, then allocates", () => {
  const peers = ["peerA", "peerB", "peerC"];
  const should = leader(peers)!;
  const other = peers.find((p) => p !== should)!;
  const base = { alive: peers, machines: new Map<string, string>(), base: "10.1.0.1" };
  assert.deepEqual(
    dhcpDecision({ ...base, self: should, alive: [should], lead: undefined }).action,
    "wait",
  );
  assert.equal(dhcpDecision({ ...base, self: other, lead: undefined }).action, "wait");
  assert.equal(dhcpDecision({ ...base, self: should, lead: undefined }).action, "lead");
  assert.deepEqual(dhcpDecision({ ...base, self: should, lead: should }), {
    action: "allocate",
    address: "10.1.0.1",
  });
  const taken = new Map([["10.1.0.1", should]]);
  const next = leader(peers.filter((p) => p !== should))!;
  assert.equal(dhcpDecision({ ...base, machines: taken, self: next, lead: should }).action, "lead");
  assert.deepEqual(dhcpDecision({ ...base, machines: taken, self: next, lead: next }), {
    action: "allocate",
    address: "10.1.0.2",
  });
});

Deno.test("three nodes get distinct addresses through the ledger and keep them across restarts", async () => {
  const network = generateNetworkConfig();
  const dirs = await Promise.all([0, 1, 2].map(() => Deno.makeTempDir()));
  const meshes: Mesh[] = [];
  const start = async (i: number, bootstrap: string[]) => {
    const mesh = await createMesh({
      node: {
        network,
        privkeyCache: true,
        privkeyCacheDir: dirs[i],
        listenMaddrs: ["/ip4/127.0.0.1/tcp/0"],
        bootstrapPeers: bootstrap,
        mdns: false,
        dht: false,
      },
      ledger: { mode: "enforce", ownershipTtlMs: 60_000, syncIntervalMs: 500 },
      alive: { intervalMs: 500, scrubIntervalMs: 600_000, maxIntervalMs: 900_000 },
    });
    await mesh.start();
    return mesh;
  };
  const claim = async (mesh: Mesh, dir: string) => {
    const ip = await obtainAddress(mesh.ledger, mesh.peerId, {
      base: "10.1.0.1",
      leaseDir: `${dir}/leases`,
      leaseName: leaseFileName(network),
      pollMs: 200,
      // Three ledger sync intervals: the ledger keeps one of two concurrent leaders.
      settleMs: 1_500,
      // A failure, not a hang, if the nodes never agree.
      signal: AbortSignal.timeout(30_000),
    });
    // What the VPN does once it has an address: announce the machine.
    await mesh.ledger.add("machines", { [ip]: { PeerID: mesh.peerId, Address: ip } });
    return ip;
  };
  try {
    meshes.push(await start(0, []));
    for (const i of [1, 2]) meshes.push(await start(i, meshes[0].node.multiaddrs()));
    const ips = await Promise.all(meshes.map((m, i) => claim(m, dirs[i])));
    assert.equal(new Set(ips).size, 3, `distinct addresses: ${ips}`);
    // (Concurrent leaders skip addresses, so the three are not always .1–.3.)
    for (const ip of ips) assert.match(ip, /^10\.1\.0\.([1-9]|1[0-9])$/);
    // A restarted node reuses its lease at once.
    await meshes[1].stop();
    meshes[1] = await start(1, meshes[0].node.multiaddrs());
    assert.equal(await claim(meshes[1], dirs[1]), ips[1]);
  } finally {
    await Promise.allSettled(meshes.map((m) => m.stop()));
    for (const d of dirs) await Deno.remove(d, { recursive: true });
  }
});

Deno.test("two nodes that both hold the leadership never pick the same address", () => {
  const alive = ["12D3KooWA", "12D3KooWB", "12D3KooWC", "12D3KooWD"];
  const machines = new Map<string, string>();
  const picks = alive.map((self) =>
    dhcpDecision({ self, alive, machines, lead: self, base: "10.1.0.1" })
  );
  const addresses = picks.map((d) => d.action === "allocate" ? d.address : d.action);
  assert.equal(new Set(addresses).size, alive.length, `distinct: ${addresses}`);
  // The elected leader picks as Go does.
  const elected = alive.indexOf(leader(alive)!);
  assert.equal(addresses[elected], "10.1.0.1");
});
