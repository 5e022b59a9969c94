import assert from "node:assert/strict";
import { generateIdentity } from "../../lib/crypto/identity.ts";
import { encodeBlock } from "../../lib/ledger/block.ts";
import { formatRfc3339Seconds } from "../../lib/util/gotime.ts";
import { MeteredNode, startTestApi, waitFor } from "./helpers.ts";

const VECTOR_PEER = "12D3KooWMrvbf8SX1B6nj64mA2yJYiR1HBRcvX54KxocQ75g7knK";

Deno.test("GET /api/summary on a fresh node is Go's §16.1 vector", async () => {
  const id = await generateIdentity();
  const api = await startTestApi({ identity: id, ledger: { mode: "enforce" } });
  try {
    const res = await api.request("/api/summary");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/json");
    assert.equal(
      res.text,
      `{"Files":0,"Machines":0,"Users":0,"Services":0,"BlockChain":0,"OnChainNodes":0,"Peers":1,"NodeID":"${id.peerId}"}\n`,
    );
  } finally {
    await api.close();
  }
});

Deno.test('GET /api/ledger/egress has Go\'s §16.1 shape: peer ID → JSON text of "ok"', async () => {
  const api = await startTestApi();
  try {
    await api.ledger.add("egress", { [VECTOR_PEER]: "ok" });
    const res = await api.request("/api/ledger/egress");
    assert.equal(res.status, 200);
    assert.equal(res.text, `{"${VECTOR_PEER}":"\\"ok\\""}\n`);
  } finally {
    await api.close();
  }
});

Deno.test("summary counts buckets, the last index, topic peers and the peer store (self added once)", async () => {
  const api = await startTestApi({ peerId: "self" });
  try {
    await api.ledger.add("machines", { "10.1.0.1": { PeerID: "a" }, "10.1.0.2": { PeerID: "b" } });
    await api.ledger.add("users", { a: { PeerID: "a", Timestamp: "t" } });
    await api.ledger.add("services", { web: { PeerID: "a", Name: "web" } });
    await api.ledger.add("files", { f: { PeerID: "a", Name: "f" } });
    api.node.topic = ["a", "b"];
    api.node.peerstore = ["self", "a", "b", "c"];
    const s = (await api.request("/api/summary")).json();
    assert.deepEqual(s, {
      Files: 1,
      Machines: 2,
      Users: 1,
      Services: 1,
      BlockChain: 4,
      OnChainNodes: 2,
      Peers: 4,
      NodeID: "self",
    });
  } finally {
    await api.close();
  }
});

Deno.test("machines report Online from heartbeats, OnChain from the topic, Connected from connections", async () => {
  const id = await generateIdentity();
  const now = Date.now();
  const api = await startTestApi({ identity: id, ledger: { mode: "observe", now: () => now } });
  try {
    await api.ledger.add("machines", {
      "10.1.0.2": {
        PeerID: "peerB",
        Hostname: "b",
        OS: "linux",
        Arch: "arm64",
        Address: "10.1.0.2",
        Version: "v1",
      },
      "10.1.0.1": {
        PeerID: "peerA",
        Hostname: "a",
        OS: "linux",
        Arch: "amd64",
        Address: "10.1.0.1",
        Version: "v0.35.4",
      },
      "10.1.0.3": "not a machine",
    });
    await api.ledger.add("healthcheck", {
      peerA: formatRfc3339Seconds(now - 60_000),
      peerB: formatRfc3339Seconds(now - 21 * 60_000),
    });
    api.node.topic = ["peerB"];
    api.node.connected = ["peerA", "peerB"];
    const res = await api.request("/api/machines");
    assert.equal(
      res.text,
      '[{"PeerID":"peerA","Hostname":"a","OS":"linux","Arch":"amd64","Address":"10.1.0.1","Version":"v0.35.4","Connected":true,"OnChain":false,"Online":true},' +
        '{"PeerID":"peerB","Hostname":"b","OS":"linux","Arch":"arm64","Address":"10.1.0.2","Version":"v1","Connected":true,"OnChain":true,"Online":false},' +
        '{"PeerID":"","Hostname":"","OS":"","Arch":"","Address":"","Version":"","Connected":false,"OnChain":false,"Online":false}]\n',
    );
  } finally {
    await api.close();
  }
});

Deno.test("nodes are heartbeats of the last 10 minutes plus topic peers; the peer store lists every peer offline", async () => {
  const now = Date.now();
  const api = await startTestApi({ peerId: "self", ledger: { now: () => now } });
  try {
    await api.ledger.add("healthcheck", {
      self: formatRfc3339Seconds(now),
      old: formatRfc3339Seconds(now - 11 * 60_000),
      fresh: formatRfc3339Seconds(now - 9 * 60_000),
    });
    api.node.topic = ["topicOnly", "fresh"];
    api.node.peerstore = ["zeta", "alpha"];
    assert.equal(
      (await api.request("/api/nodes")).text,
      '[{"ID":"fresh","Online":true},{"ID":"self","Online":true},{"ID":"topicOnly","Online":true}]\n',
    );
    assert.equal(
      (await api.request("/api/peerstore")).text,
      '[{"ID":"alpha","Online":false},{"ID":"self","Online":false},{"ID":"zeta","Online":false}]\n',
    );
  } finally {
    await api.close();
  }
});

Deno.test("users, services and files list their values in Go's struct shapes; empty lists are []", async () => {
  const api = await startTestApi();
  try {
    for (const path of ["/api/users", "/api/services", "/api/files", "/api/machines", "/api/dns"]) {
      assert.equal((await api.request(path)).text, "[]\n", path);
    }
    await api.ledger.add("users", {
      b: { PeerID: "b", Timestamp: "2026-01-01 00:00:00 +0000 UTC" },
    });
    await api.ledger.add("services", { web: { peerid: "a", name: "web", Extra: 1 } });
    await api.ledger.add("files", { f: { PeerID: "a", Name: "f" } });
    assert.equal(
      (await api.request("/api/users")).text,
      '[{"PeerID":"b","Timestamp":"2026-01-01 00:00:00 +0000 UTC"}]\n',
    );
    assert.equal((await api.request("/api/services")).text, '[{"PeerID":"a","Name":"web"}]\n');
    assert.equal((await api.request("/api/files")).text, '[{"PeerID":"a","Name":"f"}]\n');
  } finally {
    await api.close();
  }
});

for (const mode of ["off", "enforce"] as const) {
  Deno.test(`${mode}: GET /api/blockchain is the last block byte for byte as Go encodes it`, async () => {
    const id = await generateIdentity();
    const api = await startTestApi({ identity: id, ledger: { mode } });
    try {
      assert.equal(
        (await api.request("/api/blockchain")).text,
        encodeBlock(api.ledger.lastBlock()) + "\n",
      );
      await api.ledger.add("machines", { "10.1.0.1": { PeerID: id.peerId, Address: "<&>" } });
      const res = await api.request("/api/blockchain");
      assert.equal(res.text, encodeBlock(api.ledger.lastBlock()) + "\n");
      const entry = res.json().Storage.machines["10.1.0.1"];
      if (mode === "off") assert.equal(typeof entry, "string", "legacy entries are JSON strings");
      else assert.equal(entry.Owner, id.peerId, "signed entries are objects");
      assert.ok(res.text.includes("\\u003c"), "HTML characters escaped as Go does");
    } finally {
      await api.close();
    }
  });

  Deno.test(`${mode}: ledger reads give null for an unknown bucket and "" for a missing key`, async () => {
    const id = await generateIdentity();
    const api = await startTestApi({ identity: id, ledger: { mode } });
    try {
      assert.equal((await api.request("/api/ledger")).text, "{}\n");
      await api.ledger.add("b", { k2: { x: 1 }, k1: "v" });
      await api.ledger.add("a", { k: 1 });
      assert.equal(
        (await api.request("/api/ledger")).text,
        '{"a":{"k":"1"},"b":{"k1":"\\"v\\"","k2":"{\\"x\\":1}"}}\n',
      );
      assert.equal(
        (await api.request("/api/ledger/b")).text,
        '{"k1":"\\"v\\"","k2":"{\\"x\\":1}"}\n',
      );
      assert.equal((await api.request("/api/ledger/nope")).text, "null\n");
      assert.equal((await api.request("/api/ledger/b/k1")).text, '"\\"v\\""\n');
      assert.equal((await api.request("/api/ledger/b/missing")).text, '""\n');
      assert.equal((await api.request("/api/ledger/nope/missing")).text, '""\n');
    } finally {
      await api.close();
    }
  });

  Deno.test(`${mode}: a PUT's reply comes once the value is in the ledger, and a DELETE's once it is gone`, async () => {
    const api = await startTestApi({ identity: await generateIdentity(), ledger: { mode } });
    try {
      // No waiting: a crash right after the reply must not lose an acknowledged write.
      assert.equal((await api.request("/api/ledger/acked/k/v", { method: "PUT" })).status, 200);
      assert.equal(api.ledger.getKey("acked", "k"), '"v"');
      assert.equal((await api.request("/api/ledger/acked/k", { method: "DELETE" })).status, 200);
      assert.equal(api.ledger.getKey("acked", "k"), undefined);
    } finally {
      await api.close();
    }
  });

  Deno.test(`${mode}: PUT stores the path value as a JSON string, then GET reads it back`, async () => {
    const id = await generateIdentity();
    const api = await startTestApi({ identity: id, ledger: { mode } });
    try {
      const cases: Array<[string, string, string, string]> = [
        // bucket, key, value as sent in the path, value decoded
        ["b", "k", "hello%20world", "hello world"],
        ["b", "a%2Fb", "eyJ4IjoxfQ==", "eyJ4IjoxfQ=="],
        ["sp%C3%A9cial", "100%25", "%E2%9C%93%22q%22", '✓"q"'],
      ];
      for (const [bucket, key, value] of cases) {
        const res = await api.request(`/api/ledger/${bucket}/${key}/${value}`, { method: "PUT" });
        assert.equal(res.status, 200);
        assert.equal(res.text, '{"State":"Announcing"}\n');
      }
      for (const [bucket, key, , decoded] of cases) {
        await waitFor(
          async () => (await api.request(`/api/ledger/${bucket}/${key}`)).json() !== "",
          `${bucket}/${key} to be written`,
        );
        const got = (await api.request(`/api/ledger/${bucket}/${key}`)).json();
        assert.equal(got, JSON.stringify(decoded), "stored text is the JSON string of the value");
        assert.equal(
          api.ledger.currentData().get(decodeURIComponent(bucket))?.get(decodeURIComponent(key)),
          JSON.stringify(decoded),
        );
      }
      if (mode === "enforce") {
        const entry = api.ledger.lastBlock().storage.get("b")!.get("k")!;
        assert.equal(entry.owner, id.peerId, "API writes are signed by the node");
      }
    } finally {
      await api.close();
    }
  });

  Deno.test(`${mode}: DELETE of a key and of a bucket announces and removes them`, async () => {
    const id = await generateIdentity();
    const api = await startTestApi({ identity: id, ledger: { mode } });
    try {
      await api.ledger.add("b", { k1: "1", k2: "2" });
      await api.ledger.add("c", { k: "1" });
      const del = await api.request("/api/ledger/b/k1", { method: "DELETE" });
      assert.equal(del.status, 200);
      assert.equal(del.text, '{"State":"Announcing"}\n');
      await waitFor(() => api.ledger.currentData().get("b")?.has("k1") === false, "k1 deleted");
      assert.equal((await api.request("/api/ledger/b/k1")).text, '""\n');
      assert.equal((await api.request("/api/ledger/b")).text, '{"k2":"\\"2\\""}\n');
      const delBucket = await api.request("/api/ledger/c", { method: "DELETE" });
      assert.equal(delBucket.text, '{"State":"Announcing"}\n');
      await waitFor(() => !api.ledger.currentData().has("c"), "bucket c deleted");
      assert.equal((await api.request("/api/ledger/c")).text, "null\n");
      const missing = await api.request("/api/ledger/none/k", { method: "DELETE" });
      assert.equal(
        missing.text,
        '{"State":"Announcing"}\n',
        "deleting nothing still announces (Go)",
      );
    } finally {
      await api.close();
    }
  });
}

Deno.test("metrics routes exist only when the node view has metrics, in Go's Stats shape", async () => {
  const plain = await startTestApi();
  try {
    assert.equal((await plain.request("/api/metrics")).status, 404);
    assert.equal((await plain.request("/api/metrics/protocol")).status, 404);
  } finally {
    await plain.close();
  }
  const node = new MeteredNode("self");
  node.peers.set("peerA", { TotalIn: 1, TotalOut: 2, RateIn: 3, RateOut: 4 });
  const api = await startTestApi({ node });
  try {
    assert.equal(
      (await api.request("/api/metrics")).text,
      '{"TotalIn":1234,"TotalOut":5678,"RateIn":1.5,"RateOut":0.25}\n',
    );
    assert.equal(
      (await api.request("/api/metrics/protocol")).text,
      '{"/edgevpn/0.1":{"TotalIn":10,"TotalOut":20,"RateIn":0,"RateOut":1e-7}}\n',
    );
    assert.equal(
      (await api.request("/api/metrics/protocol/%2Fedgevpn%2F0.1")).text,
      '{"TotalIn":10,"TotalOut":20,"RateIn":0,"RateOut":1e-7}\n',
    );
    assert.equal(
      (await api.request("/api/metrics/protocol/unknown")).text,
      '{"TotalIn":0,"TotalOut":0,"RateIn":0,"RateOut":0}\n',
    );
    assert.equal(
      (await api.request("/api/metrics/peer")).text,
      '{"peerA":{"TotalIn":1,"TotalOut":2,"RateIn":3,"RateOut":4}}\n',
    );
    assert.equal(
      (await api.request("/api/metrics/peer/peerA")).text,
      '{"TotalIn":1,"TotalOut":2,"RateIn":3,"RateOut":4}\n',
    );
    const counters = (await api.request("/api/counters")).json();
    assert.deepEqual(counters.Node, { gzip_invalid: 2 });
    assert.equal(counters.Ledger.messagesReceived, 0);
  } finally {
    await api.close();
  }
});

Deno.test("the peer gate routes follow the gate and refuse unknown states", async () => {
  let enabled = false;
  const api = await startTestApi({
    components: { peerGate: { enabled: () => enabled, setEnabled: (v) => void (enabled = v) } },
  });
  try {
    assert.equal((await api.request("/api/peergate")).text, "false\n");
    assert.equal((await api.request("/api/peergate/enable", { method: "PUT" })).text, "true\n");
    assert.equal(enabled, true);
    assert.equal((await api.request("/api/peergate/disable", { method: "PUT" })).text, "false\n");
    const bad = await api.request("/api/peergate/maybe", { method: "PUT" });
    assert.equal(bad.status, 400);
    assert.match(bad.json().error, /enable/);
  } finally {
    await api.close();
  }
});

Deno.test("?pretty indents as echo does", async () => {
  const api = await startTestApi({ peerId: "self" });
  try {
    await api.ledger.add("b", { k: "v" });
    assert.equal(
      (await api.request("/api/ledger?pretty")).text,
      '{\n  "b": {\n    "k": "\\"v\\""\n  }\n}\n',
    );
    assert.equal((await api.request("/api/users?pretty")).text, "[]\n");
  } finally {
    await api.close();
  }
});

Deno.test("a known path with another method is 405 with Allow; HEAD answers like GET without a body", async () => {
  const api = await startTestApi();
  try {
    const res = await api.request("/api/summary", { method: "POST" });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get("allow"), "GET, HEAD");
    assert.equal(typeof res.json().error, "string");
    const put = await api.request("/api/ledger/b/k", { method: "PUT" });
    assert.equal(put.status, 405);
    assert.equal(put.headers.get("allow"), "GET, DELETE, HEAD");
    const head = await api.request("/api/summary", { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.text, "");
  } finally {
    await api.close();
  }
});

Deno.test("extra routes and middleware slot in: middleware runs before every route", async () => {
  const seen: string[] = [];
  const api = await startTestApi({
    server: {
      middleware: [async (c, next) => {
        seen.push(new URL(c.req.url).pathname);
        if (c.req.header("authorization") !== "Bearer t") {
          return c.json({ error: "unauthorized" }, 401);
        }
        await next();
        return undefined;
      }],
      routes: [{ method: "GET", path: "/", handler: (c) => c.redirect("/app", 301) }],
    },
  });
  try {
    assert.equal((await api.request("/api/summary")).status, 401);
    const ok = await api.request("/api/summary", { headers: { authorization: "Bearer t" } });
    assert.equal(ok.status, 200);
    const root = await api.request("/", {
      headers: { authorization: "Bearer t" },
      redirect: "manual",
    });
    assert.equal(root.status, 301);
    assert.equal(root.headers.get("location"), "/app");
    assert.deepEqual(seen, ["/api/summary", "/api/summary", "/"]);
  } finally {
    await api.close();
  }
});
