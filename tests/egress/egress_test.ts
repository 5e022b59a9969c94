import assert from "node:assert/strict";
import {
  announceUser,
  createEgress,
  EGRESS_TUNNEL_PROTOCOL,
  egressComponentsOf,
  type EgressOptions,
  encodeTunnelRequest,
  GO_EGRESS_PROTOCOL,
  TunnelStatus,
} from "../../lib/egress/mod.ts";
import { startEgressOf } from "../../lib/commands/egress.ts";
import { resolveSettings } from "../../lib/config/settings.ts";
import { BUCKETS } from "../../lib/ledger/buckets.ts";
import { silentLogger } from "../../lib/util/logger.ts";
import { createNodeMetrics } from "../../lib/metrics/prometheus.ts";
import type { Mesh } from "../../lib/mesh/mesh.ts";
import { waitFor } from "../node/helpers.ts";
import { opensslSkipReason, selfSignedCertificate } from "../proxy/helpers.ts";
import { echoHandler, startTcpServer } from "../services/helpers.ts";
import { meshPair } from "../mesh/helpers.ts";
import { readStreamText, startHttpTarget } from "./helpers.ts";

const enc = (s: string) => new TextEncoder().encode(s);

/** A is an egress node with `options`; B is a user of the network. */
async function egressPair(options: Partial<EgressOptions> = {}) {
  const { a, b, stop } = await meshPair();
  // "public.test" resolves to loopback: the policy must look at the address, not the name.
  const resolve = (host: string) =>
    Promise.resolve(host === "public.test" ? ["127.0.0.1"] : Promise.reject(new Error("NXDOMAIN")));
  const egress = createEgress(egressComponentsOf(a, { resolve }), {
    announceIntervalMs: 500,
    allowPrivate: true,
    ...options,
  });
  await egress.start();
  const user = announceUser(b.ledger, b.peerId, 500);
  await waitFor(
    () => a.isUser(b.peerId) && b.ledger.getKey(BUCKETS.egress, a.peerId) === '"ok"', // Go's exact text
    "users entry on A and egress entry on B",
  );
  return {
    a,
    b,
    egress,
    stop: async () => {
      user.stop();
      await egress.stop();
      await stop();
    },
  };
}

async function goRequest(b: Mesh, a: Mesh, request: string): Promise<string> {
  const s = await b.node.dialProtocol(a.peerId, GO_EGRESS_PROTOCOL);
  await s.write(enc(request));
  const text = await readStreamText(s);
  // Go's proxy closes its stream once it has read the response.
  await s.close();
  return text;
}

Deno.test("Go's egress protocol: one HTTP request per stream is performed and its response comes back, body included", async () => {
  const { a, b, egress, stop } = await egressPair();
  const target = startHttpTarget();
  try {
    const got = await goRequest(
      b,
      a,
      `POST /form?x=1 HTTP/1.1\r\nHost: 127.0.0.1:${target.port}\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: 5\r\n\r\nhello`,
    );
    assert.match(got, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(got, /x-target: yes/i);
    assert.match(got, /\r\n\r\nhello \/form$/);
    assert.deepEqual(target.requests.map((r) => [r.method, r.path, r.body, r.host]), [[
      "POST",
      "/form?x=1",
      "hello",
      `127.0.0.1:${target.port}`,
    ]]);
    const absolute = await goRequest(
      b,
      a,
      `GET http://127.0.0.1:${target.port}/abs HTTP/1.1\r\nHost: 127.0.0.1:${target.port}\r\n\r\n`,
    );
    assert.match(absolute, /hello \/abs$/);
    assert.equal(egress.counters().httpRequests, 2);
    await waitFor(() => egress.counters().active === 0, "requests finished");
  } finally {
    await target.close();
    await stop();
  }
});

Deno.test({
  name:
    "Go's egress protocol: a Host port in the TLS ports (443, as Go) takes TLS to the destination",
  ignore: opensslSkipReason() !== undefined,
  async fn() {
    const tls = await selfSignedCertificate();
    const target = startHttpTarget(tls);
    const { a, b, egress, stop } = await egressPair({
      tlsPorts: [target.port],
      caCerts: [tls.cert],
    });
    const plain = startHttpTarget();
    try {
      const got = await goRequest(
        b,
        a,
        `GET /tls HTTP/1.1\r\nHost: 127.0.0.1:${target.port}\r\n\r\n`,
      );
      assert.match(got, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(got, /\r\n\r\nhello \/tls$/);
      assert.deepEqual(target.requests.map((r) => r.path), ["/tls"]);
      // Other ports stay plain HTTP.
      assert.match(
        await goRequest(b, a, `GET /p HTTP/1.1\r\nHost: 127.0.0.1:${plain.port}\r\n\r\n`),
        /hello \/p$/,
      );
      await waitFor(() => egress.counters().active === 0, "requests finished");
    } finally {
      await plain.close();
      await target.close();
      await stop();
    }
  },
});

Deno.test("Go's egress protocol: a 4 MiB response comes back byte for byte", async () => {
  const { a, b, egress, stop } = await egressPair();
  const body = new Uint8Array(4 << 20).map((_, i) => (i * 7 + (i >> 12)) & 0xff);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response(body),
  );
  try {
    const s = await b.node.dialProtocol(a.peerId, GO_EGRESS_PROTOCOL);
    await s.write(enc(`GET /big HTTP/1.1\r\nHost: 127.0.0.1:${server.addr.port}\r\n\r\n`));
    const chunks: Uint8Array[] = [];
    for await (const c of s) chunks.push(c.slice());
    await s.close();
    const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      all.set(c, at);
      at += c.length;
    }
    const head = new TextDecoder("latin1").decode(all.subarray(0, 1024));
    const headLength = head.indexOf("\r\n\r\n") + 4;
    assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(head, /content-length: 4194304\r\n/i);
    assert.equal(all.length - headLength, body.length);
    assert.ok(all.subarray(headLength).every((v, i) => v === body[i]), "the body is intact");
    await waitFor(() => egress.counters().active === 0, "request finished");
    assert.equal(egress.counters().bytesFromTargets, all.length);
  } finally {
    await server.shutdown();
    await stop();
  }
});

Deno.test("the tunnel protocol connects to a TCP destination: bytes both ways, half-close passed on", async () => {
  const { a, b, egress, stop } = await egressPair();
  const echo = startTcpServer(echoHandler);
  try {
    const s = await b.node.dialProtocol(a.peerId, EGRESS_TUNNEL_PROTOCOL);
    await s.write(encodeTunnelRequest({ host: "127.0.0.1", port: echo.port }));
    const payload = new Uint8Array(1 << 20).map((_, i) => i * 7);
    await s.write(payload);
    await s.close();
    const chunks: Uint8Array[] = [];
    for await (const c of s) chunks.push(c.slice());
    const got = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) (got.set(c, at), at += c.length);
    assert.equal(got[0], TunnelStatus.ok);
    assert.equal(got.length, 1 + payload.length);
    assert.ok(got.subarray(1).every((v, i) => v === payload[i]), "echo byte-exact");
    assert.equal(echo.accepted, 1);
    await waitFor(() => egress.counters().active === 0, "tunnel finished");
    assert.equal(egress.counters().bytesToTargets, payload.length);
    const metrics = createNodeMetrics({
      node: a.node,
      ledger: a.ledger,
      egress: () => egress.counters(),
    });
    const text = await metrics.text();
    assert.match(text, /edgevpn_egress_requests_total\{kind="tunnel"\} 1\n/);
    assert.match(
      text,
      new RegExp(`edgevpn_egress_bytes_total\\{direction="out"\\} ${payload.length}\\n`),
    );
  } finally {
    await echo.close();
    await stop();
  }
});

Deno.test("--egress-allow-private=false: private destinations are refused after resolution (403, tunnel status), unresolvable names too", async () => {
  const { a, b, egress, stop } = await egressPair({ allowPrivate: false });
  const target = startHttpTarget();
  try {
    for (const host of [`127.0.0.1:${target.port}`, `public.test:${target.port}`, "[::1]:80"]) {
      const got = await goRequest(b, a, `GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      assert.match(got, /^HTTP\/1\.1 403 Forbidden\r\n/, host);
      assert.match(got, /private addresses/);
    }
    const s = await b.node.dialProtocol(a.peerId, EGRESS_TUNNEL_PROTOCOL);
    await s.write(encodeTunnelRequest({ host: "public.test", port: target.port }));
    assert.equal((await readStreamText(s)).charCodeAt(0), TunnelStatus.forbidden);
    await s.close();
    const unknown = await b.node.dialProtocol(a.peerId, EGRESS_TUNNEL_PROTOCOL);
    await unknown.write(encodeTunnelRequest({ host: "nowhere.test", port: 80 }));
    assert.equal((await readStreamText(unknown)).charCodeAt(0), TunnelStatus.unresolved);
    await unknown.close();
    assert.equal(target.requests.length, 0, "nothing reached the destination");
    assert.equal(egress.counters().forbidden, 4);
  } finally {
    await target.close();
    await stop();
  }
});

Deno.test("bad requests: malformed heads and tunnel headers are answered and counted; a slow head times out with 408", async () => {
  const { a, b, egress, stop } = await egressPair({ requestTimeoutMs: 300 });
  try {
    assert.match(await goRequest(b, a, "GARBAGE\r\n\r\n"), /^HTTP\/1\.1 400 /);
    assert.match(
      await goRequest(b, a, "GET / HTTP/1.1\r\n\r\n"),
      /^HTTP\/1\.1 400 .*\r\n[^]*no Host/,
    );
    assert.match(
      await goRequest(b, a, "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"),
      /^HTTP\/1\.1 405 /,
    );
    assert.match(
      await goRequest(b, a, `GET / HTTP/1.1\r\nHost: x\r\nA: ${"b".repeat(40_000)}\r\n\r\n`),
      /^HTTP\/1\.1 431 /,
    );
    assert.match(await goRequest(b, a, "GET / HTTP/1.1\r\nHost: a"), /^HTTP\/1\.1 408 /);
    const s = await b.node.dialProtocol(a.peerId, EGRESS_TUNNEL_PROTOCOL);
    await s.write(Uint8Array.of(9, 9, 9, 9, 9, 9));
    assert.equal((await readStreamText(s)).charCodeAt(0), TunnelStatus.badRequest);
    await s.close();
    const c = egress.counters();
    assert.equal(c.malformed, 5);
    assert.equal(c.timedOut, 1);
    await waitFor(() => egress.counters().active === 0, "requests finished");
  } finally {
    await stop();
  }
});

Deno.test("peers without a users entry are reset on both protocols, as Go does", async () => {
  const { a, b, stop } = await meshPair();
  const egress = createEgress(egressComponentsOf(a), {
    announceIntervalMs: 500,
    allowPrivate: true,
  });
  await egress.start();
  const echo = startTcpServer(echoHandler);
  try {
    await waitFor(() => b.ledger.getKey(BUCKETS.egress, a.peerId) !== undefined, "egress entry");
    const requests: [string, Uint8Array][] = [
      [GO_EGRESS_PROTOCOL, enc("GET / HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n")],
      [EGRESS_TUNNEL_PROTOCOL, encodeTunnelRequest({ host: "127.0.0.1", port: echo.port })],
    ];
    for (const [protocol, request] of requests) {
      const s = await b.node.dialProtocol(a.peerId, protocol);
      // Reset at once: nothing comes back (the reset reads as an error or as an end).
      const got = await (async () => {
        await s.write(request);
        return await readStreamText(s);
      })().catch(() => "");
      assert.equal(got, "", protocol);
    }
    const c = egress.counters();
    assert.equal(c.httpRequests + c.tunnels, 0);
    assert.equal(echo.accepted, 0, "nothing reached the destination");
  } finally {
    await echo.close();
    await egress.stop();
    await stop();
  }
});

Deno.test("--egress-allow-private and EGRESSALLOWPRIVATE reach the egress node: false refuses a loopback destination, the default (Go's) serves it", async () => {
  const { a, b, stop } = await meshPair();
  const target = startHttpTarget();
  const user = announceUser(b.ledger, b.peerId, 500);
  try {
    await waitFor(() => a.isUser(b.peerId), "users entry on A");
    const request = `GET /x HTTP/1.1\r\nHost: 127.0.0.1:${target.port}\r\n\r\n`;
    const cases: [string, ReturnType<typeof resolveSettings>, RegExp][] = [
      [
        "--egress-allow-private=false",
        resolveSettings({ egressAllowPrivate: "false" }, {}),
        /^HTTP\/1\.1 403 /,
      ],
      [
        "EGRESSALLOWPRIVATE=false",
        resolveSettings({}, { EGRESSALLOWPRIVATE: "false" }),
        /^HTTP\/1\.1 403 /,
      ],
      ["the default", resolveSettings({}, {}), /^HTTP\/1\.1 200 [^]*hello \/x$/],
    ];
    for (const [what, settings, expected] of cases) {
      const egress = await startEgressOf(a, settings, silentLogger);
      try {
        assert.match(await goRequest(b, a, request), expected, what);
      } finally {
        await egress.stop();
      }
    }
    assert.equal(target.requests.length, 1, "only the default let a request through");
  } finally {
    user.stop();
    await target.close();
    await stop();
  }
});
