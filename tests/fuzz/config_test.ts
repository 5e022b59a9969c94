/**
 * Fuzzing of the parsers of user and peer text: tokens and network YAML, flag values, API listen
 * addresses and HTTP request framing, VPN addresses, DHCP's reading of the machines bucket.
 */
import assert from "node:assert/strict";
import { HttpFramer } from "../../lib/api/http_framer.ts";
import { formatApiAddress, parseApiListen, parseUnixSocketMode } from "../../lib/api/listen.ts";
import { OPTIONS, type OptionSpec } from "../../lib/config/options.ts";
import { parseOptionText } from "../../lib/config/settings.ts";
import {
  decodeToken,
  encodeToken,
  generateNetworkConfig,
  parseNetworkYaml,
} from "../../lib/config/token.ts";
import { dhcpDecision, nextFreeIP, nextIP } from "../../lib/dhcp/dhcp.ts";
import {
  canonicalIP,
  cidrContains,
  cidrHosts,
  cidrNetwork,
  formatCidr,
  parseCidr,
} from "../../lib/net/ip.ts";
import { parseRouter, parseStaticPeertable, parseVpnAddress } from "../../lib/vpn/config.ts";
import { fc, fuzz, libraryErrors, mutated, typedErrors } from "./harness.ts";

const text = new TextEncoder();
const utf8 = new TextDecoder();

/** YAML that exercises the parser: anchors and aliases, tags, flow nesting, merges, documents. */
const yamlish = fc.oneof(
  fc.constant(encodeTokenYaml()),
  mutated(fc.constant(text.encode(encodeTokenYaml()))).map((b) => utf8.decode(b)),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.array(
    fc.constantFrom(
      "otp:",
      "  dht:",
      "  crypto:",
      "    key: ",
      "    interval: ",
      "    length: ",
      "room: ",
      "rendezvous: ",
      "mdns: ",
      "max_message_size: ",
      "&a ",
      "*a",
      "<<: *a",
      "!!binary ",
      "!!str ",
      "? ",
      "- ",
      "[",
      "]",
      "{",
      "}",
      ",",
      "---",
      "...",
      "%YAML 1.1",
      "'",
      '"',
      "|",
      ">",
      "#",
      "0x1f",
      "1e400",
      "-1",
      "~",
      "null",
      "yes",
      "9007199254740993",
      "\t",
      "\n",
      " ",
    ),
    { maxLength: 40 },
  ).map((parts) => parts.join("")),
  fc.integer({ min: 1, max: 5_000 }).map((n) => "[".repeat(n)),
  fc.integer({ min: 1, max: 2_000 }).map((n) => "a: &a [" + "*a, ".repeat(n) + "]"),
  fc.string({ unit: "binary", maxLength: 200 }),
);

function encodeTokenYaml(): string {
  return atob(encodeToken(generateNetworkConfig()));
}

fuzz({
  name: "network YAML (token payload and --config file)",
  arbitrary: yamlish,
  allowed: typedErrors,
  run(yaml) {
    parseNetworkYaml(yaml, "config.yaml");
  },
});

const validToken = encodeToken(generateNetworkConfig());

fuzz({
  name: "network tokens",
  arbitrary: fc.oneof(
    fc.constant(validToken),
    mutated(fc.constant(text.encode(validToken))).map((b) => utf8.decode(b)),
    yamlish.map((y) => btoa(String.fromCharCode(...text.encode(y).subarray(0, 4096)))),
    fc.base64String({ maxLength: 400 }),
    fc.string({ maxLength: 200 }),
  ),
  allowed: typedErrors,
  run(token) {
    const config = decodeToken(token);
    assert.deepEqual(decodeToken(encodeToken(config)), config);
  },
});

const specs = Object.values(OPTIONS) as OptionSpec[];

fuzz({
  name: "flag and environment values of every option",
  arbitrary: fc.tuple(
    fc.constantFrom(...specs),
    fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.stringMatching(/^[+-]?[0-9_.]{0,30}(ns|us|µs|ms|s|m|h)?$/),
      fc.stringMatching(/^[+-]?0[xXoObB][0-9a-fA-F_]{0,30}$/),
      fc.stringMatching(/^([0-9]{1,6}(\.[0-9]{0,4})?(ns|us|ms|s|m|h)){1,6}$/),
      fc.integer({ min: 0, max: 400 }).map((n) => "9".repeat(n)),
    ),
  ),
  allowed: typedErrors,
  run([spec, value]) {
    const parsed = parseOptionText(spec, value);
    if (typeof parsed === "number") assert.ok(!Number.isNaN(parsed), `NaN from ${value}`);
  },
});

const host = fc.oneof(
  fc.constantFrom("", "127.0.0.1", "[::1]", "::1", "localhost", "[fe80::1%eth0]", "0.0.0.0"),
  fc.string({ maxLength: 20 }),
);

fuzz({
  name: "API listen addresses and socket modes",
  arbitrary: fc.oneof(
    fc.tuple(host, fc.oneof(fc.nat({ max: 70_000 }).map(String), fc.string({ maxLength: 8 })))
      .map(([h, p]) => `${h}:${p}`),
    fc.string({ maxLength: 40 }).map((p) => `unix://${p}`),
    fc.string({ maxLength: 40 }),
  ),
  allowed: typedErrors,
  run(address) {
    parseUnixSocketMode(address);
    const target = parseApiListen(address);
    assert.deepEqual(parseApiListen(formatApiAddress(target)), target);
  },
});

/** Bytes that look like HTTP/1.1 requests: heads, Content-Length and chunked bodies. */
const httpish = fc.array(
  fc.oneof(
    fc.constantFrom(
      "GET / HTTP/1.1\r\n",
      "PUT /api/ledger/a/b/c HTTP/1.1\r\n",
      "Host: x\r\n",
      "Content-Length: 5\r\n",
      "Content-Length: 99999999999999999999\r\n",
      "Content-Length: -1\r\n",
      "Content-Length: 1, 2\r\n",
      "Transfer-Encoding: chunked\r\n",
      "Transfer-Encoding: gzip, chunked\r\n",
      "\r\n",
      "\n",
      "5\r\nhello\r\n",
      "0\r\n\r\n",
      "fffffffffffffffff\r\n",
      "5;ext=1\r\n",
      "hello",
      "HTTP/2.0",
      " ",
    ),
    fc.string({ maxLength: 20 }),
  ),
  { maxLength: 20 },
).map((parts) => text.encode(parts.join("")));

fuzz({
  name: "HTTP request framing of API connections, random chunk boundaries",
  arbitrary: fc.tuple(
    fc.oneof(httpish, mutated(httpish), fc.uint8Array({ maxLength: 300 })),
    fc.array(fc.nat(), { maxLength: 10 }),
  ),
  run([bytes, cuts]) {
    const limits = { maxRequestLineBytes: 200, maxHeadBytes: 400, maxBodyBytes: 1000 };
    const whole = new HttpFramer(limits);
    const wholeRefusal = whole.feed(bytes);
    // However the bytes arrive, the framer ends in the same place.
    const pieces = new HttpFramer(limits);
    const points = cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b);
    let at = 0;
    let refusal;
    for (const p of [...points, bytes.length]) {
      refusal ??= pieces.feed(bytes.subarray(at, p));
      at = p;
      if (refusal) break;
    }
    assert.deepEqual(refusal?.status, wholeRefusal?.status);
    if (!refusal) {
      assert.equal(pieces.state, whole.state);
      assert.equal(pieces.requests, whole.requests);
    }
  },
});

const ipish = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.ipV4Extended(),
  fc.stringMatching(/^[0-9a-fA-F:.]{0,45}$/),
  fc.string({ maxLength: 30 }),
);

fuzz({
  name: "VPN addresses, router, static peers, CIDRs",
  arbitrary: fc.tuple(ipish, fc.oneof(fc.nat({ max: 200 }).map(String), fc.string())),
  allowed: typedErrors,
  run([ip, prefix]) {
    const canonical = canonicalIP(ip);
    const cidr = parseCidr(`${ip}/${prefix}`, { bareAddress: true });
    if (cidr !== null) {
      assert.ok(cidrContains(cidr, ip), "a CIDR contains its own address");
      assert.deepEqual(parseCidr(formatCidr(cidr)), cidr, "canonical text parses back");
      const network = cidrNetwork(cidr);
      assert.ok(cidrContains(cidr, network.address));
      const hosts = cidrHosts(cidr);
      if (hosts) assert.ok(hosts.first <= hosts.last);
    }
    if (canonical !== null) assert.equal(canonicalIP(canonical), canonical);
    try {
      parseStaticPeertable([`${ip}:${prefix}`, ip]);
    } catch (e) {
      if (!typedErrors(e)) throw e;
    }
    try {
      parseRouter(ip);
    } catch (e) {
      if (!typedErrors(e)) throw e;
    }
    parseVpnAddress(`${ip}/${prefix}`);
  },
});

fuzz({
  name: "DHCP decisions over a hostile machines bucket",
  arbitrary: fc.record({
    machines: fc.array(
      fc.tuple(fc.oneof(fc.ipV4(), fc.string({ maxLength: 20 })), fc.string({ maxLength: 8 })),
      { maxLength: 300 },
    ),
    alive: fc.array(fc.string({ maxLength: 8 }), { maxLength: 6 }),
    lead: fc.option(fc.string({ maxLength: 8 })),
    base: fc.oneof(fc.ipV4(), fc.string({ maxLength: 16 })),
    self: fc.string({ maxLength: 8 }),
  }),
  allowed: libraryErrors,
  run(v) {
    const machines = new Map(v.machines);
    nextIP(v.base, [...machines.keys()]);
    const decision = dhcpDecision({
      self: v.self,
      alive: [v.self, ...v.alive],
      machines,
      lead: v.lead ?? undefined,
      base: v.base,
    });
    if (decision.action === "allocate") {
      assert.ok(!machines.has(decision.address), "allocated an address in use");
      assert.equal(nextFreeIP(v.base, [...machines.keys(), decision.address]) !== "", true);
    }
  },
});
