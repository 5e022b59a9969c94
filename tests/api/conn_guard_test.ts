import assert from "node:assert/strict";
import { DEFAULT_CONN_LIMITS } from "../../lib/api/conn_guard.ts";
import { HttpFramer } from "../../lib/api/http_framer.ts";
import { serveApi } from "../../lib/api/listen.ts";
import { rawHttp, waitFor } from "./helpers.ts";

const te = new TextEncoder();
const LIMITS = { maxRequestLineBytes: 64, maxHeadBytes: 256, maxBodyBytes: 100 };

Deno.test("framer: pipelined requests with bodies, split anywhere, are counted one by one", () => {
  const text =
    "\r\nPOST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\n" +
    "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-T: 1\r\n\r\n";
  const bytes = te.encode(text);
  for (const step of [1, 3, 7, bytes.length]) {
    const f = new HttpFramer(LIMITS);
    for (let at = 0; at < bytes.length; at += step) {
      assert.equal(f.feed(bytes.subarray(at, at + step)), undefined, `step ${step}`);
    }
    assert.equal(f.requests, 3, `step ${step}`);
    assert.equal(f.state, "idle");
  }
  const f = new HttpFramer(LIMITS);
  f.feed(te.encode("GET / HTTP/1.1\r\nHost"));
  assert.equal(f.state, "head");
  f.feed(te.encode(": x\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 9\r\n\r\n1234"));
  assert.equal(f.state, "body");
  assert.equal(f.requests, 1);
});

Deno.test("framer: oversize lines, heads and bodies and malformed heads are refused with their status", () => {
  const refusal = (text: string) => new HttpFramer(LIMITS).feed(te.encode(text))?.status;
  assert.equal(refusal(`GET /${"a".repeat(80)} HTTP/1.1\r\n`), 414);
  assert.equal(refusal(`GET /${"a".repeat(80)}`), 414, "refused before the line ends");
  assert.equal(refusal(`GET / HTTP/1.1\r\nX: ${"b".repeat(300)}\r\n\r\n`), 431);
  assert.equal(refusal("POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n"), 413);
  assert.equal(refusal("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), 400);
  assert.equal(refusal("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), 400);
  assert.equal(refusal("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), 411);
  assert.equal(refusal("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n"), 413);
  assert.equal(refusal("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), 400);
  assert.equal(refusal("PRI * HTTP/2.0\r\n\r\n"), 505);
  assert.equal(refusal("garbage\r\n\r\n"), 400);
  assert.equal(refusal("GET / HTTP/1.1\r\n\r\n"), undefined);
});

/** Opens `count` connections that each send half a request head and then nothing. */
async function halfSent(port: number, count: number): Promise<Deno.Conn[]> {
  const conns: Deno.Conn[] = [];
  for (let i = 0; i < count; i++) {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    await c.write(te.encode("GET /api/summary HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
    conns.push(c);
  }
  return conns;
}

/** Resolves with the milliseconds until the server closes `conn` (what it sent is dropped). */
async function closedAfter(conn: Deno.Conn, t0: number): Promise<number> {
  const buf = new Uint8Array(4096);
  try {
    while ((await conn.read(buf)) !== null) { /* drain */ }
  } catch {
    // reset
  }
  conn.close();
  return Date.now() - t0;
}

Deno.test("300 half-sent requests are closed after the header timeout while others are served", async () => {
  const listener = await serveApi(() => new Response("ok"), {
    listen: "127.0.0.1:0",
    limits: { headerTimeoutMs: 1000, maxConnections: 400 },
  });
  try {
    const port = (listener.address as { port: number }).port;
    const t0 = Date.now();
    const conns = await halfSent(port, 300);
    const closing = conns.map((c) => closedAfter(c, t0));
    const ok = await rawHttp(
      { hostname: "127.0.0.1", port },
      "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert.equal(ok.status, 200, "a complete request is answered meanwhile");
    const times = await Promise.all(closing);
    assert.ok(
      Math.max(...times) < 5000,
      `last half-sent request closed after ${Math.max(...times)} ms`,
    );
    assert.ok(Math.min(...times) >= 900, `first closed after ${Math.min(...times)} ms`);
    assert.equal(listener.connections.counters.timedOut, 300);
    assert.equal(listener.connections.open, 0);
  } finally {
    await listener.close();
  }
});

Deno.test("a connection over the cap is closed at once; an idle keep-alive one after the idle timeout", async () => {
  const listener = await serveApi(() => new Response("ok"), {
    listen: "127.0.0.1:0",
    limits: { maxConnections: 2, idleTimeoutMs: 600, headerTimeoutMs: 60_000 },
  });
  try {
    const port = (listener.address as { port: number }).port;
    const t0 = Date.now();
    const held = await halfSent(port, 2);
    const extra = await Deno.connect({ hostname: "127.0.0.1", port });
    assert.ok((await closedAfter(extra, t0)) < 1000, "the third connection is closed at once");
    for (const c of held) c.close();
    await waitFor(() => listener.connections.open === 0, "the closed connections released");
    const idle = await Deno.connect({ hostname: "127.0.0.1", port });
    await idle.write(te.encode("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    const t1 = Date.now();
    const idleMs = await closedAfter(idle, t1);
    assert.ok(idleMs >= 500 && idleMs < 3000, `idle connection closed after ${idleMs} ms`);
    assert.equal(listener.connections.counters.overLimit, 1);
  } finally {
    await listener.close();
  }
});

Deno.test("default limits: a 9 KiB path gets 414, a 2 MiB declared body 413, as JSON", async () => {
  assert.ok(DEFAULT_CONN_LIMITS.headerTimeoutMs <= 10_000);
  const listener = await serveApi(() => new Response("ok"), { listen: "127.0.0.1:0" });
  try {
    const at = { hostname: "127.0.0.1", port: (listener.address as { port: number }).port };
    const long = await rawHttp(at, `GET /${"p".repeat(9 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.equal(long.status, 414);
    assert.match(JSON.parse(long.body).error, /request line longer than 8192 bytes/);
    const big = await rawHttp(
      at,
      `POST /api/dns HTTP/1.1\r\nHost: x\r\nContent-Length: ${2 << 20}\r\n\r\n`,
    );
    assert.equal(big.status, 413);
    assert.match(JSON.parse(big.body).error, /too large/);
  } finally {
    await listener.close();
  }
});
