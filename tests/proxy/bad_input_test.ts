/**
 * The proxy facing bad clients and refusals: malformed targets and handshakes, private
 * destinations refused by an egress node with --egress-allow-private=false (403, SOCKS5
 * "not allowed"), clients that never finish (408 / closed), Go-only egress nodes.
 */
import assert from "node:assert/strict";
import { EGRESS_TUNNEL_PROTOCOL } from "../../lib/egress/mod.ts";
import { writeAll } from "../../lib/services/pipe.ts";
import { startHttpTarget } from "../egress/helpers.ts";
import { readAll } from "../services/helpers.ts";
import { curl, curlSkipReason, startProxySetup } from "./helpers.ts";

const skip = curlSkipReason();
if (skip) console.log(`proxy bad-input tests skipped: ${skip}`);

/** Sends `bytes` to the proxy, half-closes unless told, and returns everything it answered. */
async function rawExchange(port: number, bytes: Uint8Array, halfClose = true): Promise<Uint8Array> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const reading = readAll(conn);
    await writeAll(conn, bytes);
    if (halfClose) await conn.closeWrite();
    return await reading;
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test({
  name: "malformed requests and targets get 4xx with a reason; SOCKS5 errors get their reply codes",
  ignore: skip !== undefined,
  async fn() {
    const setup = await startProxySetup(1);
    try {
      const cases: [string, RegExp][] = [
        ["GET /local HTTP/1.1\r\nHost: x\r\n\r\n", /^HTTP\/1\.1 400 [^]*expected an absolute http/],
        ["GET https://a/ HTTP/1.1\r\n\r\n", /^HTTP\/1\.1 400 [^]*CONNECT/],
        ["CONNECT nohost HTTP/1.1\r\n\r\n", /^HTTP\/1\.1 400 [^]*malformed target/],
        ["CONNECT a b:443 HTTP/1.1\r\n\r\n", /^HTTP\/1\.1 400 /],
        ["CONNECT [::1:443 HTTP/1.1\r\n\r\n", /^HTTP\/1\.1 400 [^]*malformed target/],
        ["CONNECT a:99999 HTTP/1.1\r\n\r\n", /^HTTP\/1\.1 400 [^]*malformed target/],
        ["GET http://a:0/ HTTP/1.1\r\n\r\n", /^HTTP\/1\.1 400 /],
        ["GET http:///x HTTP/1.1\r\n\r\n", /^HTTP\/1\.1 400 [^]*expected an absolute/],
        [`GET http://a/${"x".repeat(9000)} HTTP/1.1\r\n\r\n`, /^HTTP\/1\.1 414 /],
        [`GET http://a/ HTTP/1.1\r\nA: ${"b".repeat(40_000)}\r\n\r\n`, /^HTTP\/1\.1 431 /],
        ["GET http://a/ HTTP/2.0\r\n\r\n", /^HTTP\/1\.1 505 /],
        ["\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", /^HTTP\/1\.1 400 /],
      ];
      for (const [request, expected] of cases) {
        assert.match(
          str(await rawExchange(setup.port, text(request))),
          expected,
          request.slice(0, 40),
        );
      }
      const socks = async (
        bytes: number[],
      ) => [...await rawExchange(setup.port, Uint8Array.from(bytes))];
      assert.deepEqual(await socks([5, 1, 2]), [5, 0xff], "no acceptable method");
      assert.deepEqual(await socks([5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80]), [
        5,
        0,
        5,
        7,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        0,
      ], "BIND");
      assert.deepEqual(await socks([5, 1, 0, 5, 1, 0, 9, 1, 2]), [
        5,
        0,
        5,
        8,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        0,
      ], "address type");
      assert.deepEqual(await socks([5, 1, 0, 5, 1, 0, 3, 0, 0, 80]), [
        5,
        0,
        5,
        4,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        0,
      ], "empty name");
      assert.deepEqual(await socks([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 0]), [
        5,
        0,
        5,
        4,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        0,
      ], "port 0");
      assert.deepEqual(await socks([5, 0]), [], "no methods: closed");
      assert.deepEqual(
        await socks([4, 1, 0, 80, 127, 0, 0, 1, 0]),
        [0, 0x5b, 0, 0, 0, 0, 0, 0],
        "SOCKS4 rejected",
      );
      const c = setup.proxy.counters();
      assert.equal(c.malformed, cases.length + 7);
      assert.equal(setup.egresses[0].counters().tunnels, 0, "nothing reached the egress node");
    } finally {
      await setup.stop();
    }
  },
});

Deno.test({
  name:
    "--egress-allow-private=false on the egress node: private destinations get 403 and SOCKS5 'not allowed', nothing reaches them",
  ignore: skip !== undefined,
  async fn() {
    const setup = await startProxySetup(1, { allowPrivate: false });
    const target = startHttpTarget();
    try {
      for (
        const url of [
          `http://127.0.0.1:${target.port}/`,
          `http://localhost:${target.port}/`,
          "http://[::1]/",
          "http://10.1.0.9/",
        ]
      ) {
        const r = await curl(["-i", "-x", setup.url, url]);
        assert.match(r.stdout, /^HTTP\/1\.1 403 Forbidden/, url);
        assert.match(r.stdout, /does not connect to private addresses/);
      }
      const connect = await curl(["-x", setup.url, "-p", `http://localhost:${target.port}/`]);
      assert.match(connect.stderr, /403/);
      const s = await curl([
        "--socks5-hostname",
        `127.0.0.1:${setup.port}`,
        `http://localhost:${target.port}/`,
      ]);
      assert.match(s.stderr, /SOCKS5 connection .*\(2\)/, "reply 2: not allowed by ruleset");
      assert.equal(target.requests.length, 0);
      assert.equal(setup.egresses[0].counters().forbidden, 6);
      assert.equal(setup.proxy.counters().targetFailures, 6);
    } finally {
      await target.close();
      await setup.stop();
    }
  },
});

Deno.test({
  name:
    "a client that never finishes its request is answered 408 (HTTP) or closed (SOCKS5) after the handshake timeout",
  ignore: skip !== undefined,
  async fn() {
    const setup = await startProxySetup(1, { proxy: { handshakeTimeoutMs: 300 } });
    try {
      const t0 = performance.now();
      const http = str(
        await rawExchange(setup.port, text("GET http://a/ HTTP/1.1\r\nHost: a\r\n"), false),
      );
      assert.match(http, /^HTTP\/1\.1 408 /);
      const socks = await rawExchange(setup.port, Uint8Array.of(5, 1, 0, 5, 1), false);
      assert.deepEqual([...socks], [5, 0]);
      const silent = await rawExchange(setup.port, new Uint8Array(0), false);
      assert.equal(silent.length, 0);
      assert.ok(performance.now() - t0 < 10_000);
      assert.equal(setup.proxy.counters().timedOut, 3);
    } finally {
      await setup.stop();
    }
  },
});

Deno.test({
  name:
    "Go-only egress nodes: plain HTTP goes through Go's protocol, CONNECT and SOCKS5 get a clear refusal",
  ignore: skip !== undefined,
  async fn() {
    const setup = await startProxySetup(1);
    const target = startHttpTarget();
    try {
      // What a Go egress node offers: /edgevpn/egress/0.1 only.
      await setup.egressMeshes[0].node.unhandle(EGRESS_TUNNEL_PROTOCOL);
      const r = await curl(["-x", setup.url, "-d", "x=1", `http://127.0.0.1:${target.port}/go`]);
      assert.equal(r.stdout, "hello /go", r.stderr);
      const get = await curl(["-x", setup.url, `http://127.0.0.1:${target.port}/go-get`]);
      assert.equal(get.stdout, "hello /go-get", get.stderr);
      assert.equal(target.requests[0].body, "x=1");
      assert.equal(setup.egresses[0].counters().httpRequests, 2);
      const connect = await curl(["-x", setup.url, "-p", `http://127.0.0.1:${target.port}/`]);
      assert.match(connect.stderr, /502/);
      const raw = str(
        await rawExchange(setup.port, text(`CONNECT 127.0.0.1:${target.port} HTTP/1.1\r\n\r\n`)),
      );
      assert.match(raw, /^HTTP\/1\.1 502 Bad Gateway[^]*Go EdgeVPN nodes, which carry plain HTTP/);
      const s = await curl([
        "--socks5",
        `127.0.0.1:${setup.port}`,
        `http://127.0.0.1:${target.port}/`,
      ]);
      assert.match(s.stderr, /SOCKS5 connection .*\(1\)/);
      const c = setup.proxy.counters();
      assert.deepEqual(c.via, { tunnel: 0, go: 2 });
      assert.equal(c.goOnly, 3);
    } finally {
      await target.close();
      await setup.stop();
    }
  },
});
