import assert from "node:assert/strict";
import {
  errorResponse,
  forwardedHead,
  HeadReader,
  HttpHeadError,
  parseAuthority,
  parseRequestHead,
} from "../../lib/egress/http_head.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("a head split at every byte boundary parses the same, and the bytes after it are kept", () => {
  const text =
    "\r\nPOST http://a.example/x?y HTTP/1.1\r\nHost: a.example\r\nContent-Length: 4\r\n\r\nbody";
  const bytes = enc(text);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const reader = new HeadReader();
    const first = reader.push(bytes.subarray(0, cut));
    const done = first ?? reader.push(bytes.subarray(cut));
    assert.ok(done, `cut ${cut}`);
    assert.equal(done.head.method, "POST");
    assert.equal(done.head.target, "http://a.example/x?y");
    assert.deepEqual(done.head.headers[1], { name: "Content-Length", value: "4" });
    const rest = first ? dec(first.rest) : dec(done.rest);
    assert.equal(first ? rest + dec(bytes.subarray(cut)) : rest, "body");
  }
  const lf = new HeadReader().push(enc("GET / HTTP/1.0\nA: b\n\n"));
  assert.equal(lf?.head.version, "HTTP/1.0");
});

Deno.test("heads over the limits or malformed are refused with their status", () => {
  const refused = (text: string, limits?: ConstructorParameters<typeof HeadReader>[0]) => {
    try {
      new HeadReader(limits).push(enc(text));
    } catch (e) {
      assert.ok(e instanceof HttpHeadError);
      return e.status;
    }
    return undefined;
  };
  const small = { maxLineBytes: 64, maxHeadBytes: 256, maxHeaders: 4 };
  assert.equal(refused(`GET /${"a".repeat(100)} HTTP/1.1\r\n`, small), 414);
  assert.equal(refused(`GET / HTTP/1.1\r\nA: ${"b".repeat(300)}`, small), 431);
  assert.equal(
    refused("GET / HTTP/1.1\r\na: 1\r\nb: 1\r\nc: 1\r\nd: 1\r\ne: 1\r\n\r\n", small),
    431,
  );
  assert.equal(refused("GET / HTTP/2.0\r\n\r\n"), 505);
  assert.equal(refused("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505);
  assert.equal(refused("GET  / HTTP/1.1\r\n\r\n"), 400);
  assert.equal(refused("\x16\x03\x01\x02\x00\r\n\r\n"), 400);
  assert.equal(refused("GET / HTTP/1.1\r\n folded\r\n\r\n"), 400);
  assert.equal(refused("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n"), 400);
  assert.equal(refused("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), 400);
  assert.equal(
    refused("POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
    400,
  );
  assert.equal(refused("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), 400);
  assert.equal(refused("GET / HTTP/1.1\r\nA: b\r\n"), undefined, "incomplete is not refused");
});

Deno.test("authorities: names, IPv4, bracketed IPv6, default ports; malformed ones refused", () => {
  assert.deepEqual(parseAuthority("Example.COM:8080"), { host: "example.com", port: 8080 });
  assert.deepEqual(parseAuthority("[2001:db8::1]:443"), { host: "2001:db8::1", port: 443 });
  assert.deepEqual(parseAuthority("[::1]", 80), { host: "::1", port: 80 });
  assert.deepEqual(parseAuthority("10.0.0.1", 80), { host: "10.0.0.1", port: 80 });
  for (const bad of ["", "a:", "a:0", "a:65536", "a:x", "::1:80", "[::1", "[::1]x", "a b:1", "a"]) {
    assert.throws(() => parseAuthority(bad), HttpHeadError, bad);
  }
});

Deno.test("the forwarded head is origin-form without hop-by-hop fields, one request per connection", () => {
  const head = parseRequestHead(enc(
    "GET http://a/x HTTP/1.1\r\nHost: a\r\nProxy-Connection: keep-alive\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nProxy-Authorization: Basic x\r\nAccept: */*\r\n\r\n",
  ));
  assert.equal(
    dec(forwardedHead(head, "/x", "a")),
    "GET /x HTTP/1.1\r\nHost: a\r\nAccept: */*\r\nConnection: close\r\n\r\n",
  );
  const ws = parseRequestHead(enc(
    "GET http://a/ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
  ));
  assert.equal(
    dec(forwardedHead(ws, "/ws", "a")),
    "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
  );
  const response = dec(errorResponse(403, "no"));
  assert.match(response, /^HTTP\/1\.1 403 Forbidden\r\n/);
  assert.match(response, /Content-Length: 3\r\nConnection: close\r\n\r\nno\n$/);
});
