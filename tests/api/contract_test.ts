/**
 * Every endpoint of Go's API (§11) on a real node started as the commands start it: status,
 * JSON shape and Go field names; metrics fed by real traffic between two loopback nodes.
 */
import assert from "node:assert/strict";
import { readApiToken } from "../../lib/api/auth.ts";
import { startNodeApi } from "../../lib/commands/api_server.ts";
import { resolveSettings } from "../../lib/config/settings.ts";
import { generateNetworkConfig } from "../../lib/config/token.ts";
import type { Mesh } from "../../lib/mesh/mesh.ts";
import { silentLogger } from "../../lib/util/logger.ts";
import { startLoopbackMesh } from "../mesh/helpers.ts";
import { fetchText, tempDir, waitFor } from "./helpers.ts";

const STATS = ["TotalIn", "TotalOut", "RateIn", "RateOut"];

function assertKeys(value: unknown, keys: string[], what: string): void {
  assert.ok(value !== null && typeof value === "object", `${what}: an object`);
  assert.deepEqual(Object.keys(value as object), keys, what);
}

function assertStats(value: unknown, what: string): void {
  assertKeys(value, STATS, what);
  for (const k of STATS) assert.equal(typeof (value as Record<string, unknown>)[k], "number");
}

Deno.test("contract: every Go endpoint answers with Go's status, shape and field names", async () => {
  const tmp = await tempDir();
  const network = generateNetworkConfig(360);
  const meshes: Mesh[] = [];
  const printed: string[] = [];
  let stopApi: (() => Promise<void>) | undefined;
  try {
    const a = await startLoopbackMesh(network);
    meshes.push(a);
    const b = await startLoopbackMesh(network, { bootstrap: a.node.multiaddrs() });
    meshes.push(b);
    await waitFor(() => a.node.topicPeers().includes(b.peerId), "b on a's topic", 15_000);
    const api = await startNodeApi(a, {
      listen: "127.0.0.1:0",
      settings: { ...resolveSettings({}, {}), stateDir: tmp.dir },
      home: undefined,
      logger: silentLogger,
      out: (t) => printed.push(t),
    });
    stopApi = () => api.stop();
    const base = `http://127.0.0.1:${(api.address as { port: number }).port}`;
    assert.match(
      printed.join(""),
      new RegExp(
        `^Dashboard \\(one-time login link\\): ${base}/login\\?code=[A-Za-z0-9_-]{43}\\n$`,
      ),
    );
    const token = (await readApiToken(tmp.dir))!;
    const get = async (path: string) => {
      const res = await fetchText(base + path);
      assert.equal(res.status, 200, `GET ${path}: ${res.text}`);
      assert.equal(res.headers.get("content-type"), "application/json");
      return res.json();
    };
    const write = async (method: string, path: string, body?: string) => {
      const res = await fetchText(base + path, {
        method,
        body,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      });
      assert.equal(res.status, 200, `${method} ${path}: ${res.text}`);
      assert.deepEqual(res.json(), { State: "Announcing" });
    };

    await b.ledger.add("machines", {
      "10.1.0.2": {
        PeerID: b.peerId,
        Hostname: "b",
        OS: "linux",
        Arch: "amd64",
        Address: "10.1.0.2",
        Version: "t",
      },
    });
    await b.ledger.add("services", { web: { PeerID: b.peerId, Name: "web" } });
    await b.ledger.add("files", { notes: { PeerID: b.peerId, Name: "notes" } });
    await b.ledger.add("users", {
      [b.peerId]: { PeerID: b.peerId, Timestamp: "2026-01-01T00:00:00Z" },
    });
    await waitFor(
      () => a.ledger.currentData().get("users")?.size === 1,
      "b's entries on a",
      15_000,
    );

    const summary = await get("/api/summary");
    assertKeys(summary, [
      "Files",
      "Machines",
      "Users",
      "Services",
      "BlockChain",
      "OnChainNodes",
      "Peers",
      "NodeID",
    ], "summary");
    assert.equal(summary.NodeID, a.peerId);
    assert.equal(summary.Machines, 1);
    assert.ok(summary.OnChainNodes >= 1 && summary.Peers >= 2);

    const machines = await get("/api/machines");
    assert.equal(machines.length, 1);
    assertKeys(machines[0], [
      "PeerID",
      "Hostname",
      "OS",
      "Arch",
      "Address",
      "Version",
      "Connected",
      "OnChain",
      "Online",
    ], "machine");
    assert.equal(machines[0].OnChain, true);

    const nodes = await get("/api/nodes");
    for (const n of nodes) assertKeys(n, ["ID", "Online"], "node");
    assert.ok(nodes.some((n: { ID: string }) => n.ID === b.peerId));
    const peerstore = await get("/api/peerstore");
    for (const p of peerstore) assertKeys(p, ["ID", "Online"], "peerstore entry");
    assert.deepEqual(
      peerstore.map((p: { ID: string }) => p.ID).sort(),
      [a.peerId, b.peerId].sort(),
    );

    assertKeys((await get("/api/users"))[0], ["PeerID", "Timestamp"], "user");
    assert.deepEqual(await get("/api/services"), [{ PeerID: b.peerId, Name: "web" }]);
    assert.deepEqual(await get("/api/files"), [{ PeerID: b.peerId, Name: "notes" }]);

    await write(
      "POST",
      "/api/dns",
      JSON.stringify({ Regex: "web.mesh.", Records: { A: "10.1.0.2" } }),
    );
    await waitFor(async () => (await get("/api/dns")).length === 1, "the DNS entry");
    assert.deepEqual(await get("/api/dns"), [{ Regex: "web.mesh.", Records: { A: "10.1.0.2" } }]);

    assertKeys(
      await get("/api/blockchain"),
      ["Index", "Timestamp", "Storage", "Hash", "PrevHash"],
      "block",
    );
    await write("PUT", "/api/ledger/tests/greeting/hello");
    await waitFor(
      async () => (await get("/api/ledger/tests/greeting")) === '"hello"',
      "the PUT key",
    );
    assert.deepEqual(await get("/api/ledger/tests"), { greeting: '"hello"' });
    assert.equal((await get("/api/ledger")).tests.greeting, '"hello"');
    assert.equal(await get("/api/ledger/nothing"), null);
    assert.equal(await get("/api/ledger/tests/nothing"), "");
    await waitFor(
      () => b.ledger.currentData().get("tests")?.get("greeting") === '"hello"',
      "the key on b",
    );
    await write("DELETE", "/api/ledger/tests/greeting");
    await waitFor(async () => (await get("/api/ledger/tests/greeting")) === "", "the deleted key");
    await write("DELETE", "/api/ledger/files");
    await waitFor(async () => (await get("/api/files")).length === 0, "the deleted bucket");

    const total = await get("/api/metrics");
    assertStats(total, "metrics");
    assert.ok(total.TotalIn > 0 && total.TotalOut > 0, JSON.stringify(total));
    const byProtocol = await get("/api/metrics/protocol");
    const gossip = Object.keys(byProtocol).find((p) => p.startsWith("/meshsub/"));
    assert.ok(gossip, `gossip among ${Object.keys(byProtocol)}`);
    for (const [p, s] of Object.entries(byProtocol)) assertStats(s, p);
    const one = await get(`/api/metrics/protocol/${encodeURIComponent(gossip)}`);
    assertStats(one, "one protocol");
    assert.ok(one.TotalIn > 0);
    const byPeer = await get("/api/metrics/peer");
    assert.ok(byPeer[b.peerId].TotalIn > 0);
    assertStats(await get(`/api/metrics/peer/${b.peerId}`), "one peer");
    assert.deepEqual(await get("/api/metrics/peer/12D3KooWNobody"), {
      TotalIn: 0,
      TotalOut: 0,
      RateIn: 0,
      RateOut: 0,
    });

    const missing = await fetchText(`${base}/api/nothing`);
    assert.equal(missing.status, 404);
    assert.equal(typeof missing.json().message, "string");
    const wrongMethod = await fetchText(`${base}/api/summary`, {
      method: "PUT",
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(wrongMethod.status, 405);
  } finally {
    await stopApi?.();
    for (const m of meshes.reverse()) await m.stop();
    await tmp.remove();
  }
});
