import assert from "node:assert/strict";
import type { ApiNodeView } from "../../lib/api/components.ts";
import { FakeNode, rawHttp, startTestApi, type TestApi } from "./helpers.ts";

const LONG = "k".repeat(1025);
const LONG_UTF8 = encodeURIComponent("é".repeat(513));
const MiB = 1 << 20;
const json = { "content-type": "application/json" };

/** [what, method, path, init, expected status] */
const CASES: Array<[string, string, string, RequestInit | undefined, number]> = [
  ["unknown route", "GET", "/api/nope", undefined, 404],
  ["unknown top-level path", "GET", "/etc/passwd", undefined, 404],
  ["trailing slash", "GET", "/api/summary/", undefined, 404],
  ["too many segments", "GET", "/api/ledger/a/b/c/d", undefined, 404],
  ["empty bucket segment", "GET", "/api/ledger//k", undefined, 404],
  ["wrong method", "POST", "/api/summary", undefined, 405],
  ["PUT without value", "PUT", "/api/ledger/b/k", undefined, 405],
  ["malformed escape", "GET", "/api/ledger/%ZZ", undefined, 400],
  ["truncated escape", "GET", "/api/ledger/b/%E2%9C", undefined, 400],
  ["invalid UTF-8", "GET", "/api/ledger/%FF", undefined, 400],
  ["overlong UTF-8", "GET", "/api/ledger/%C0%AF", undefined, 400],
  ["encoded surrogate", "PUT", "/api/ledger/b/k/%ED%A0%80", undefined, 400],
  ["bad escape in unknown route", "GET", "/api/%ZZ/x", undefined, 400],
  ["bucket too long", "GET", `/api/ledger/${LONG}`, undefined, 400],
  ["key too long (bytes, not chars)", "GET", `/api/ledger/b/${LONG_UTF8}`, undefined, 400],
  ["PUT bucket too long", "PUT", `/api/ledger/${LONG}/k/v`, undefined, 400],
  ["PUT key too long", "PUT", `/api/ledger/b/${LONG}/v`, undefined, 400],
  ["DELETE bucket too long", "DELETE", `/api/ledger/${LONG}`, undefined, 400],
  ["DELETE key too long", "DELETE", `/api/ledger/b/${LONG}`, undefined, 400],
  ["DNS: empty body", "POST", "/api/dns", { headers: json }, 400],
  ["DNS: not JSON", "POST", "/api/dns", { headers: json, body: "{nope" }, 400],
  ["DNS: array", "POST", "/api/dns", { headers: json, body: "[]" }, 400],
  ["DNS: Regex not a string", "POST", "/api/dns", { headers: json, body: '{"Regex":1}' }, 400],
  ["DNS: empty Regex", "POST", "/api/dns", { headers: json, body: '{"Records":{"A":"1"}}' }, 400],
  ["DNS: Regex too long", "POST", "/api/dns", {
    headers: json,
    body: JSON.stringify({ Regex: LONG, Records: {} }),
  }, 400],
  ["DNS: Records an array", "POST", "/api/dns", {
    headers: json,
    body: '{"Regex":"a","Records":["A"]}',
  }, 400],
  ["DNS: record data a number", "POST", "/api/dns", {
    headers: json,
    body: '{"Regex":"a","Records":{"A":1}}',
  }, 400],
  ["DNS: unknown type", "POST", "/api/dns", {
    headers: json,
    body: '{"Regex":"a","Records":{"BOGUS":"1"}}',
  }, 400],
  ["DNS: A record data not an IPv4 address", "POST", "/api/dns", {
    headers: json,
    body: '{"Regex":"a","Records":{"A":"10.1.0.300"}}',
  }, 400],
  ["DNS: MX record without a preference", "POST", "/api/dns", {
    headers: json,
    body: '{"Regex":"a","Records":{"MX":"mail.example.com."}}',
  }, 400],
  ["DNS: unquoted TXT quote", "POST", "/api/dns", {
    headers: json,
    body: '{"Regex":"a","Records":{"TXT":"\\"open"}}',
  }, 400],
  ["DNS: deep nesting", "POST", "/api/dns", { headers: json, body: "[".repeat(100_000) }, 400],
  ["DNS: trailing data", "POST", "/api/dns", {
    headers: json,
    body: '{"Regex":"a","Records":{}} {}',
  }, 400],
  ["DNS: text/plain", "POST", "/api/dns", {
    headers: { "content-type": "text/plain" },
    body: '{"Regex":"a"}',
  }, 415],
  ["DNS: body over 1 MiB", "POST", "/api/dns", {
    headers: json,
    body: new Uint8Array(MiB + 1),
  }, 413],
  ["body over 1 MiB on another route", "PUT", "/api/ledger/b/k/v", {
    body: new Uint8Array(MiB + 1),
  }, 413],
  ["peergate absent", "GET", "/api/peergate", undefined, 404],
];

async function assertStillServing(api: TestApi): Promise<void> {
  const res = await api.request("/api/summary");
  assert.equal(res.status, 200, "the server still answers");
}

Deno.test("bad requests get a 4xx JSON error and leave the server serving", async () => {
  const api = await startTestApi();
  try {
    for (const [what, method, path, init, status] of CASES) {
      const res = await api.request(path, { method, ...init });
      assert.equal(res.status, status, `${what}: ${res.text}`);
      assert.equal(res.headers.get("content-type"), "application/json", what);
      const body = res.json();
      assert.deepEqual(Object.keys(body), ["error", "message"], what);
      assert.equal(body.message, body.error, what);
      assert.equal(typeof body.error, "string", what);
      assert.ok(!/\bat .*\.ts:\d+/.test(body.error), `${what}: no stack trace`);
      await assertStillServing(api);
    }
    assert.equal(api.ledger.index(), 0, "no bad request wrote anything");
    assert.equal(
      api.logs.filter((r) => r.level === "error").length,
      0,
      "bad input is not an error",
    );
  } finally {
    await api.close();
  }
});

Deno.test("a streamed (chunked) body over the limit is cut off with 413", async () => {
  const api = await startTestApi({ server: { maxBodyBytes: 1024 } });
  try {
    const { port } = api.server.address as { port: number };
    const chunk = "x".repeat(600);
    const size = chunk.length.toString(16);
    const res = await rawHttp(
      { hostname: "127.0.0.1", port },
      "POST /api/dns HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
        `${size}\r\n${chunk}\r\n${size}\r\n${chunk}\r\n0\r\n\r\n`,
    );
    assert.equal(res.status, 413);
    assert.match(res.body, /"error":"request body too large/);
    await assertStillServing(api);
  } finally {
    await api.close();
  }
});

Deno.test("malformed HTTP from a raw socket never reaches a 500 and the server keeps serving", async () => {
  const api = await startTestApi();
  try {
    const { port } = api.server.address as { port: number };
    const at = { hostname: "127.0.0.1", port };
    const requests: Array<string | Uint8Array> = [
      "GET /api/ledger/%FF HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET http://x/api/ledger/%ZZ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /api/../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      `GET /api/ledger/${"a".repeat(200_000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      "BREW /api/summary HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "POST /api/dns HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\nConnection: close\r\n\r\n",
      Uint8Array.from([
        ...new TextEncoder().encode("GET /api/ledger/"),
        0xff,
        0xfe,
        ...new TextEncoder().encode(" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
      ]),
      "garbage\r\n\r\n",
    ];
    for (const request of requests) {
      const res = await rawHttp(at, request);
      const what = typeof request === "string" ? request.slice(0, 40) : "raw bytes";
      assert.ok(
        res.status === 0 || (res.status >= 400 && res.status < 500),
        `${what}: ${res.head}`,
      );
      await assertStillServing(api);
    }
    assert.equal(api.logs.filter((r) => r.level === "error").length, 0);
  } finally {
    await api.close();
  }
});

Deno.test("an unexpected exception is logged and answered 500 without details", async () => {
  class BrokenNode extends FakeNode implements ApiNodeView {
    override topicPeers = (): string[] => {
      throw new Error("gossip router exploded at /secret/path.ts:12");
    };
  }
  const api = await startTestApi({ node: new BrokenNode("self") });
  try {
    const res = await api.request("/api/summary");
    assert.equal(res.status, 500);
    assert.equal(res.text, '{"error":"internal error","message":"internal error"}\n');
    const logged = api.logs.filter((r) => r.level === "error");
    assert.equal(logged.length, 1);
    assert.equal(logged[0].logger, "api");
    assert.match(String(logged[0].fields?.error), /exploded/);
    assert.equal((await api.request("/api/ledger")).status, 200, "other routes still work");
  } finally {
    await api.close();
  }
});

Deno.test("writes after the ledger stopped are 503, not 500", async () => {
  const api = await startTestApi();
  try {
    await api.ledger.stop();
    const res = await api.request("/api/ledger/b/k/v", { method: "PUT" });
    assert.equal(res.status, 503);
    assert.equal(typeof res.json().error, "string");
  } finally {
    await api.close();
  }
});
