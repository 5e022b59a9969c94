import assert from "node:assert/strict";
import { ApiListenError } from "../../lib/api/errors.ts";
import {
  DEFAULT_API_LISTEN,
  DEFAULT_UNIX_SOCKET_MODE,
  formatApiAddress,
  listenFailure,
  parseApiListen,
  parseUnixSocketMode,
  serveApi,
} from "../../lib/api/listen.ts";
import { createApiServer } from "../../lib/api/server.ts";
import { createLedger } from "../../lib/ledger/ledger.ts";
import { UsageError } from "../../lib/util/errors.ts";
import { FakeNode, rawHttp, tempDir } from "./helpers.ts";

const ok = () => new Response("ok");

Deno.test("listen addresses parse as Go writes them", () => {
  assert.deepEqual(parseApiListen(DEFAULT_API_LISTEN), {
    transport: "tcp",
    hostname: "127.0.0.1",
    port: 8080,
  });
  assert.deepEqual(parseApiListen(":8080"), { transport: "tcp", hostname: "", port: 8080 });
  assert.deepEqual(parseApiListen("[::1]:0"), { transport: "tcp", hostname: "::1", port: 0 });
  assert.deepEqual(parseApiListen("localhost:65535"), {
    transport: "tcp",
    hostname: "localhost",
    port: 65535,
  });
  assert.deepEqual(parseApiListen("unix:///run/edgevpn.sock"), {
    transport: "unix",
    path: "/run/edgevpn.sock",
  });
  assert.deepEqual(parseApiListen("unix://api.sock"), { transport: "unix", path: "api.sock" });
  for (
    const bad of ["", "8080", "host:", "host:http", "host:65536", "::1:80", "unix://", "a b:1"]
  ) {
    assert.throws(
      () => parseApiListen(bad),
      (e: unknown) => e instanceof UsageError && e.code === "API_LISTEN_INVALID",
      bad,
    );
  }
  assert.equal(formatApiAddress({ transport: "tcp", hostname: "::1", port: 80 }), "[::1]:80");
  assert.equal(formatApiAddress({ transport: "unix", path: "/a.sock" }), "unix:///a.sock");
});

Deno.test("APILISTENUNIXMODE parses as octal like Go; junk is undefined", () => {
  assert.equal(parseUnixSocketMode("0600"), 0o600);
  assert.equal(parseUnixSocketMode("600"), 0o600);
  assert.equal(parseUnixSocketMode(" 0o640 "), 0o640);
  assert.equal(parseUnixSocketMode("4777"), 0o777, "permission bits only");
  for (const bad of ["", "rw", "0x1ff", "0689", "-600"]) {
    assert.equal(parseUnixSocketMode(bad), undefined, bad);
  }
  assert.equal(DEFAULT_UNIX_SOCKET_MODE, 0o660);
});

Deno.test("bind failures map to typed errors with stable codes", () => {
  const code = (e: unknown) => listenFailure(e, "127.0.0.1:80").code;
  assert.equal(code(new Deno.errors.AddrInUse("os error 98")), "API_ADDRESS_IN_USE");
  assert.equal(code(new Deno.errors.PermissionDenied("os error 13")), "API_PERMISSION_DENIED");
  assert.equal(code(new Deno.errors.NotCapable("Requires net access")), "API_PERMISSION_DENIED");
  assert.equal(code(new Deno.errors.AddrNotAvailable("os error 99")), "API_ADDRESS_UNAVAILABLE");
  assert.equal(code(new Error("lookup failed")), "API_LISTEN_FAILED");
  const e = listenFailure(new Deno.errors.AddrInUse("x"), "127.0.0.1:80");
  assert.ok(e instanceof ApiListenError);
  assert.match(e.message, /127\.0\.0\.1:80: address already in use/);
});

Deno.test("a TCP port in use is API_ADDRESS_IN_USE", async () => {
  const holder = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    await assert.rejects(
      serveApi(ok, { listen: `127.0.0.1:${holder.addr.port}` }),
      (e: unknown) => e instanceof ApiListenError && e.code === "API_ADDRESS_IN_USE",
    );
  } finally {
    holder.close();
  }
});

Deno.test(":port listens on every interface (reachable over IPv4 loopback)", async () => {
  const listener = await serveApi(ok, { listen: ":0" });
  try {
    assert.equal(listener.address.transport, "tcp");
    const { port, hostname } = listener.address as { port: number; hostname: string };
    assert.ok(hostname === "::" || hostname === "0.0.0.0", hostname);
    const res = await rawHttp(
      { hostname: "127.0.0.1", port },
      "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert.equal(res.status, 200);
  } finally {
    await listener.close();
  }
});

Deno.test("the API serves over a unix socket (fetch and raw HTTP), mode 0660, removed on stop", async () => {
  const tmp = await tempDir();
  const ledger = await createLedger();
  const path = `${tmp.dir}/api.sock`;
  const api = createApiServer({ ledger, node: new FakeNode("self") }, { listen: `unix://${path}` });
  try {
    await api.start();
    assert.deepEqual(api.address, { transport: "unix", path });
    const info = await Deno.lstat(path);
    assert.ok(info.isSocket);
    assert.equal(info.mode! & 0o777, 0o660);
    const client = Deno.createHttpClient({ proxy: { transport: "unix", path } });
    try {
      const res = await fetch("http://localhost/api/summary", { client });
      assert.equal(res.status, 200);
      assert.equal((await res.json()).NodeID, "self");
    } finally {
      client.close();
    }
    const raw = await rawHttp(
      { transport: "unix", path },
      "GET /api/ledger/none HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert.equal(raw.status, 200);
    assert.equal(raw.body, "null\n");
    await api.stop();
    await assert.rejects(Deno.lstat(path), Deno.errors.NotFound);
  } finally {
    await api.stop();
    await ledger.stop();
    await tmp.remove();
  }
});

Deno.test("the unix socket mode is configurable", async () => {
  const tmp = await tempDir();
  const path = `${tmp.dir}/api.sock`;
  const listener = await serveApi(ok, { listen: `unix://${path}`, unixSocketMode: 0o600 });
  try {
    assert.equal((await Deno.lstat(path)).mode! & 0o777, 0o600);
  } finally {
    await listener.close();
    await tmp.remove();
  }
});

Deno.test("an existing non-socket file is refused and left alone", async () => {
  const tmp = await tempDir();
  const path = `${tmp.dir}/api.sock`;
  await Deno.writeTextFile(path, "precious");
  try {
    await assert.rejects(
      serveApi(ok, { listen: `unix://${path}` }),
      (e: unknown) => e instanceof ApiListenError && e.code === "API_SOCKET_NOT_SOCKET",
    );
    assert.equal(await Deno.readTextFile(path), "precious");
  } finally {
    await tmp.remove();
  }
});

Deno.test("a live socket is refused as already in use and keeps working", async () => {
  const tmp = await tempDir();
  const path = `${tmp.dir}/api.sock`;
  const first = await serveApi(() => new Response("first"), { listen: `unix://${path}` });
  try {
    await assert.rejects(
      serveApi(ok, { listen: `unix://${path}` }),
      (e: unknown) =>
        e instanceof ApiListenError && e.code === "API_SOCKET_IN_USE" &&
        /already in use/.test(e.message),
    );
    const res = await rawHttp(
      { transport: "unix", path },
      "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert.equal(res.body, "first");
  } finally {
    await first.close();
    await tmp.remove();
  }
});

Deno.test("a stale socket (nothing accepting) is removed and replaced", async () => {
  const tmp = await tempDir();
  const path = `${tmp.dir}/api.sock`;
  // A second name for a bound socket survives its listener: a socket file nobody accepts on.
  const dead = Deno.listen({ transport: "unix", path: `${tmp.dir}/dead.sock` });
  await Deno.link(`${tmp.dir}/dead.sock`, path);
  dead.close();
  await assert.rejects(Deno.connect({ transport: "unix", path }), Deno.errors.ConnectionRefused);
  const listener = await serveApi(() => new Response("fresh"), { listen: `unix://${path}` });
  try {
    const res = await rawHttp(
      { transport: "unix", path },
      "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert.equal(res.body, "fresh");
  } finally {
    await listener.close();
    await tmp.remove();
  }
});

Deno.test("a socket in a missing directory fails with a typed error", async () => {
  const tmp = await tempDir();
  try {
    await assert.rejects(
      serveApi(ok, { listen: `unix://${tmp.dir}/missing/api.sock` }),
      (e: unknown) => e instanceof ApiListenError && e.code === "API_LISTEN_FAILED",
    );
  } finally {
    await tmp.remove();
  }
});

Deno.test("start and stop are idempotent; stop before start is a no-op; a failed start can be retried", async () => {
  const ledger = await createLedger();
  const holder = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = holder.addr.port;
  const api = createApiServer({ ledger, node: new FakeNode("self") }, {
    listen: `127.0.0.1:${port}`,
  });
  try {
    await api.stop();
    await assert.rejects(api.start(), ApiListenError);
    assert.equal(api.address, undefined);
    holder.close();
    await Promise.all([api.start(), api.start()]);
    assert.deepEqual(api.address, { transport: "tcp", hostname: "127.0.0.1", port });
    await api.stop();
    await api.stop();
    assert.equal(api.address, undefined);
  } finally {
    try {
      holder.close();
    } catch {
      // already closed
    }
    await api.stop();
    await ledger.stop();
  }
});
