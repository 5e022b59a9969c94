import assert from "node:assert/strict";
import {
  announceUser,
  createServiceConnector,
  createServiceExposer,
  GO_SERVICE_PROTOCOL,
  SERVICE_PROTOCOL,
  serviceComponentsOf,
} from "../../lib/services/mod.ts";
import { createApiServer } from "../../lib/api/server.ts";
import { FakeNode } from "../api/helpers.ts";
import { meshPair } from "../mesh/helpers.ts";
import { waitFor } from "../node/helpers.ts";
import {
  echoHandler,
  exchange,
  fixedResponse,
  randomBytes,
  readAll,
  startTcpServer,
  type TestServer,
} from "./helpers.ts";

const ANNOUNCE_MS = 500;

Deno.test("a service exposed on one node answers through another node's local port, byte-exact, with half-close", async () => {
  const { a, b, stop } = await meshPair();
  const body = randomBytes(10 << 20);
  const servers: TestServer[] = [startTcpServer(echoHandler), startTcpServer(fixedResponse(body))];
  const exposer = createServiceExposer(serviceComponentsOf(a), {
    services: [{ name: "echo", address: servers[0].address }, {
      name: "blob",
      address: servers[1].address,
    }],
    announceIntervalMs: ANNOUNCE_MS,
  });
  const echo = createServiceConnector(serviceComponentsOf(b), {
    name: "echo",
    listen: "127.0.0.1:0",
    announceIntervalMs: ANNOUNCE_MS,
  });
  const blob = createServiceConnector(serviceComponentsOf(b), {
    name: "blob",
    listen: "127.0.0.1:0",
    announceIntervalMs: ANNOUNCE_MS,
  });
  try {
    await exposer.start();
    await echo.start();
    await blob.start();
    const request = randomBytes(3 << 20);
    const echoed = await exchange(echo.address.port, request);
    assert.equal(echoed.length, request.length);
    assert.ok(echoed.every((v, i) => v === request[i]), "echo byte-exact");
    const got = await exchange(blob.address.port, new TextEncoder().encode("GET"));
    assert.equal(got.length, body.length);
    assert.ok(got.every((v, i) => v === body[i]), "10 MB byte-exact");
    assert.equal(exposer.counters().served, 2);
    await waitFor(() => exposer.counters().active === 0 && echo.counters().active === 0, "idle");

    // The API of the connecting node lists both services, and the connector as a user.
    const api = createApiServer({ ledger: b.ledger, node: new FakeNode(b.peerId) }).app;
    const listed = await (await api.request("/api/services")).json();
    assert.deepEqual(
      listed.map((e: { Name: string; PeerID: string }) => `${e.Name}@${e.PeerID}`).sort(),
      [`blob@${a.peerId}`, `echo@${a.peerId}`],
    );
    const users = await (await api.request("/api/users")).json();
    assert.ok(users.some((u: { PeerID: string }) => u.PeerID === b.peerId), "b is a user");
    const summary = await (await api.request("/api/summary")).json();
    assert.equal(summary.Services, 2);
    assert.ok(summary.Users >= 1);
  } finally {
    await blob.stop();
    await echo.stop();
    await exposer.stop();
    for (const s of servers) await s.close();
    await stop();
  }
});

Deno.test("our connector reaches a node that speaks only Go's service protocol; unknown names and dead backends close the client", async () => {
  const { a, b, stop } = await meshPair();
  const server = startTcpServer(echoHandler);
  const exposer = createServiceExposer(serviceComponentsOf(a), {
    services: [{ name: "first", address: server.address }, {
      name: "dead",
      address: "127.0.0.1:9",
    }],
    announceIntervalMs: ANNOUNCE_MS,
  });
  const connectors = ["first", "dead", "nowhere"].map((name) =>
    createServiceConnector(serviceComponentsOf(b), {
      name,
      listen: "127.0.0.1:0",
      announceIntervalMs: ANNOUNCE_MS,
      timeoutMs: 3_000,
    })
  );
  try {
    await exposer.start();
    for (const c of connectors) await c.start();
    // Go's exposers speak only /edgevpn/service/0.1: remove ours to stand in for one.
    await a.node.unhandle(SERVICE_PROTOCOL);
    const hello = new TextEncoder().encode("hello");
    assert.deepEqual(await exchange(connectors[0].address.port, hello), hello);
    // Go's 0.1 carries no name: the first service answers it, so a second one needs ours.
    await exposer.stop();
    await exposer.start();
    assert.deepEqual(await exchange(connectors[1].address.port, hello), new Uint8Array());
    assert.equal(exposer.counters().backendFailed, 1);
    const t0 = Date.now();
    assert.deepEqual(await exchange(connectors[2].address.port, hello), new Uint8Array());
    assert.ok(Date.now() - t0 >= 2_500, "an unknown name waits for the timeout");
    assert.equal(connectors[2].counters().failed, 1);
    // The exposer keeps serving after a backend refused.
    assert.deepEqual(await exchange(connectors[0].address.port, hello), hello);
  } finally {
    for (const c of connectors) await c.stop();
    await exposer.stop();
    await server.close();
    await stop();
  }
});

Deno.test("a member that opens the named protocol and sends no request is reset after the request timeout and counted; the exposer keeps serving", async () => {
  const { a, b, stop } = await meshPair();
  const server = startTcpServer(echoHandler);
  const exposer = createServiceExposer(serviceComponentsOf(a), {
    services: [{ name: "echo", address: server.address }],
    announceIntervalMs: ANNOUNCE_MS,
    requestTimeoutMs: 300,
  });
  const user = announceUser(b.ledger, b.peerId, ANNOUNCE_MS);
  try {
    await exposer.start();
    await waitFor(() => a.isUser(b.peerId), "b's users entry at a");
    const quiet = await b.node.dialProtocol(a.peerId, SERVICE_PROTOCOL);
    // Half a request, then nothing.
    await quiet.write(Uint8Array.of(1));
    const started = Date.now();
    const got = await readAll(asConn(quiet)).catch(() => new Uint8Array());
    assert.equal(got.length, 0);
    assert.ok(Date.now() - started < 5_000, "reset well before any default timeout");
    await waitFor(() => exposer.counters().badRequest === 1, "the stalled request is counted");
    assert.equal(exposer.counters().active, 0);
    assert.equal(server.accepted, 0, "no backend connection for a request never completed");

    const connector = createServiceConnector(serviceComponentsOf(b), {
      name: "echo",
      listen: "127.0.0.1:0",
      announceIntervalMs: ANNOUNCE_MS,
    });
    await connector.start();
    try {
      const hello = new TextEncoder().encode("still serving");
      assert.deepEqual(await exchange(connector.address.port, hello), hello);
    } finally {
      await connector.stop();
    }
  } finally {
    user.stop();
    await exposer.stop();
    await server.close();
    await stop();
  }
});

Deno.test("streams from peers without a users entry are reset and counted, on both protocols", async () => {
  const { a, b, stop } = await meshPair();
  const server = startTcpServer(echoHandler);
  const exposer = createServiceExposer(serviceComponentsOf(a), {
    services: [{ name: "echo", address: server.address }],
    announceIntervalMs: ANNOUNCE_MS,
    userGraceMs: 300,
  });
  try {
    await exposer.start();
    await waitFor(() => b.ledger.getKey("services", "echo") !== undefined, "the services entry");
    for (const protocol of [SERVICE_PROTOCOL, GO_SERVICE_PROTOCOL]) {
      const s = await b.node.dialProtocol(a.peerId, protocol);
      await s.write(Uint8Array.of(1, 4, 101, 99, 104, 111)).catch(() => {});
      const got = await readAll(asConn(s)).catch(() => new Uint8Array());
      assert.equal(got.length, 0, `${protocol}: nothing answers a non-user`);
    }
    assert.equal(exposer.counters().refused, 2);
    assert.equal(server.accepted, 0);
  } finally {
    await exposer.stop();
    await server.close();
    await stop();
  }
});

Deno.test("a backend that ends mid-transfer ends the client's connection and leaves no pipe open", async () => {
  const { a, b, stop } = await meshPair();
  let release: () => void = () => {};
  const stalled = new Promise<void>((r) => release = r);
  const server = startTcpServer(async (conn) => {
    await conn.write(randomBytes(1 << 20));
    await stalled;
  });
  const exposer = createServiceExposer(serviceComponentsOf(a), {
    services: [{ name: "big", address: server.address }],
    announceIntervalMs: ANNOUNCE_MS,
  });
  const connector = createServiceConnector(serviceComponentsOf(b), {
    name: "big",
    listen: "127.0.0.1:0",
    announceIntervalMs: ANNOUNCE_MS,
  });
  try {
    await exposer.start();
    await connector.start();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: connector.address.port });
    const buffer = new Uint8Array(65536);
    let got = 0;
    while (got < 1 << 20) got += (await conn.read(buffer)) ?? 0;
    release();
    assert.equal(await conn.read(buffer), null, "the client sees the end");
    conn.close();
    await waitFor(
      () => exposer.counters().active === 0 && connector.counters().active === 0,
      "idle",
    );
  } finally {
    release();
    await connector.stop();
    await exposer.stop();
    await server.close();
    await stop();
  }
});

/** A stream as a readable connection, for readAll. */
function asConn(s: AsyncIterable<Uint8Array>): Deno.Conn {
  const it = s[Symbol.asyncIterator]();
  let held: Uint8Array | undefined;
  return {
    read: async (buffer: Uint8Array) => {
      if (!held || held.length === 0) {
        const next = await it.next();
        if (next.done) return null;
        held = next.value;
      }
      const n = Math.min(buffer.length, held.length);
      buffer.set(held.subarray(0, n));
      held = held.subarray(n);
      return n;
    },
  } as unknown as Deno.Conn;
}
