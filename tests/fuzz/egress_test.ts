/**
 * Fuzzing of the egress and proxy parsers: SOCKS5 handshakes, HTTP request heads and tunnel
 * requests at random chunk boundaries, authorities and address checks.
 */
import assert from "node:assert/strict";
import { isNonPublicAddress } from "../../lib/egress/address_policy.ts";
import {
  formatAuthority,
  HeadReader,
  parseAuthority,
  parseRequestHead,
} from "../../lib/egress/http_head.ts";
import { encodeTunnelRequest, parseTunnelRequest } from "../../lib/egress/protocol.ts";
import {
  MAX_SOCKS_GREETING_BYTES,
  MAX_SOCKS_REQUEST_BYTES,
  parseSocksGreeting,
  parseSocksRequest,
} from "../../lib/proxy/socks5.ts";
import { chunked, concat, fc, fuzz, mutated } from "./harness.ts";

const text = new TextEncoder();

/** Valid SOCKS5 greetings followed by requests of every address type. */
const socksish = fc.tuple(
  fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 5 }),
  fc.integer({ min: 1, max: 3 }),
  fc.oneof(
    fc.tuple(fc.constant(1), fc.uint8Array({ minLength: 4, maxLength: 4 })),
    fc.tuple(fc.constant(4), fc.uint8Array({ minLength: 16, maxLength: 16 })),
    fc.domain().map((d) => [3, Uint8Array.of(d.length, ...text.encode(d))] as const),
  ),
  fc.integer({ min: 0, max: 65535 }),
).map(([methods, command, [type, address], port]) =>
  Uint8Array.of(
    5,
    methods.length,
    ...methods,
    5,
    command,
    0,
    type,
    ...address,
    port >> 8,
    port & 0xff,
  )
);

fuzz({
  name: "SOCKS5 greeting and request at random chunk boundaries, as the proxy accumulates them",
  arbitrary: chunked(fc.oneof(socksish, mutated(socksish), fc.uint8Array({ maxLength: 300 }))),
  run(chunks) {
    // The proxy's way: append each chunk (at most twice the limit held) and parse again.
    let held: Uint8Array = new Uint8Array(0);
    let greeting;
    let request;
    for (const chunk of chunks) {
      held = concat([held, chunk]);
      if (held.length > 2 * MAX_SOCKS_REQUEST_BYTES) {
        held = held.subarray(0, 2 * MAX_SOCKS_REQUEST_BYTES);
      }
      if (greeting === undefined) {
        greeting = parseSocksGreeting(held.subarray(0, MAX_SOCKS_GREETING_BYTES));
        if (greeting !== undefined) held = held.subarray(greeting.length);
      }
      if (greeting !== undefined && request === undefined) {
        request = parseSocksRequest(held.subarray(0, MAX_SOCKS_REQUEST_BYTES));
      }
    }
    if (request !== undefined) {
      assert.ok(request.length <= MAX_SOCKS_REQUEST_BYTES);
      assert.ok(request.target.port >= 1 && request.target.port <= 65535);
    }
  },
});

/** Bytes that look like proxy requests: absolute URLs, CONNECT, headers. */
const requestish = fc.array(
  fc.oneof(
    fc.constantFrom(
      "GET http://a.example/x HTTP/1.1\r\n",
      "CONNECT a.example:443 HTTP/1.1\r\n",
      "CONNECT [::1]:443 HTTP/1.0\r\n",
      "POST http://10.0.0.1:8080/ HTTP/1.1\r\n",
      "Host: a\r\n",
      "Proxy-Connection: keep-alive\r\n",
      "Connection: close, x\r\n",
      "Content-Length: 5\r\n",
      "Content-Length: 1, 2\r\n",
      "Transfer-Encoding: chunked\r\n",
      " folded\r\n",
      "\r\n",
      "\n",
      "HTTP/2.0",
      ":",
    ),
    fc.string({ maxLength: 20 }),
  ),
  { maxLength: 20 },
).map((parts) => text.encode(parts.join("")));

fuzz({
  name: "HTTP request heads of the proxy and egress at random chunk boundaries",
  arbitrary: chunked(fc.oneof(requestish, mutated(requestish), fc.uint8Array({ maxLength: 300 }))),
  run(chunks) {
    const limits = { maxLineBytes: 100, maxHeadBytes: 300, maxHeaders: 10 };
    const reader = new HeadReader(limits);
    for (const chunk of chunks) {
      const done = reader.push(chunk);
      if (done) {
        // What was parsed incrementally parses the same way whole.
        assert.ok(reader.buffered <= limits.maxHeadBytes);
        const again = parseRequestHead(
          concat(chunks).subarray(0, reader.buffered + skipped(chunks)),
          limits,
        );
        assert.equal(again.method, done.head.method);
        return;
      }
    }
  },
});

/** Empty lines the reader skipped before the request line. */
function skipped(chunks: Uint8Array[]): number {
  const all = concat(chunks);
  let n = 0;
  while (n < all.length && (all[n] === 13 || all[n] === 10)) n++;
  return n;
}

fuzz({
  name: "tunnel requests, garbage and mutated; valid ones round-trip",
  arbitrary: fc.oneof(
    fc.tuple(fc.domain(), fc.integer({ min: 1, max: 65535 })).map(([host, port]) =>
      encodeTunnelRequest({ host, port })
    ),
    mutated(fc.constant(encodeTunnelRequest({ host: "example.com", port: 443 }))),
    fc.uint8Array({ maxLength: 300 }),
  ),
  run(bytes) {
    const request = parseTunnelRequest(bytes);
    if (request) {
      assert.deepEqual(
        encodeTunnelRequest(request),
        bytes.subarray(0, request.length),
      );
    }
  },
});

fuzz({
  name: "authorities and the address policy",
  arbitrary: fc.oneof(
    fc.tuple(
      fc.oneof(fc.domain(), fc.ipV4(), fc.ipV6().map((a) => `[${a}]`)),
      fc.nat({ max: 70_000 }),
    )
      .map(([h, p]) => `${h}:${p}`),
    fc.string({ maxLength: 60 }),
  ),
  run(authority) {
    const target = parseAuthority(authority, 80);
    assert.deepEqual(parseAuthority(formatAuthority(target)), target);
    isNonPublicAddress(target.host);
  },
});
