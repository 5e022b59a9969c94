import assert from "node:assert/strict";
import YAML from "yaml";
import {
  decodeToken,
  encodeToken,
  generateNetworkConfig,
  networkConfigToYaml,
  parseNetworkYaml,
  randomKey,
} from "../../lib/config/token.ts";
import { UsageError } from "../../lib/util/errors.ts";

const b64 = (s: string) => btoa(String.fromCharCode(...new TextEncoder().encode(s)));

Deno.test("a generated config has every field of Go's YAMLConnectionConfig, in Go's order", () => {
  const yaml = networkConfigToYaml(generateNetworkConfig(360));
  const lines = yaml.trimEnd().split("\n").map((l) => l.replace(/:.*/, ":"));
  assert.deepEqual(lines, [
    "otp:",
    "  dht:",
    "    interval:",
    "    key:",
    "    length:",
    "  crypto:",
    "    interval:",
    "    key:",
    "    length:",
    "room:",
    "rendezvous:",
    "mdns:",
    "max_message_size:",
  ]);
  const parsed = YAML.parse(yaml);
  assert.equal(parsed.otp.dht.interval, 360);
  assert.equal(parsed.otp.crypto.interval, 360);
  assert.equal(parsed.otp.dht.length, 43);
  assert.equal(parsed.otp.crypto.length, 43);
  assert.equal(parsed.max_message_size, 20971520);
  for (
    const v of [
      parsed.otp.dht.key,
      parsed.otp.crypto.key,
      parsed.room,
      parsed.rendezvous,
      parsed.mdns,
    ]
  ) {
    assert.match(v, /^[a-zA-Z0-9]{43}$/);
  }
});

Deno.test("random tokens round-trip through base64 and YAML", () => {
  for (let i = 0; i < 300; i++) {
    const config = generateNetworkConfig(1 + Math.floor(Math.random() * 100000));
    assert.deepEqual(decodeToken(encodeToken(config)), config);
    assert.deepEqual(parseNetworkYaml(networkConfigToYaml(config)), config);
  }
});

Deno.test("randomKey has the requested length over the 62-character alphabet (Go RandStringRunes)", () => {
  assert.equal(randomKey(10).length, 10);
  const seen = new Set(randomKey(20000));
  assert.equal(seen.size, 62);
});

Deno.test("a hand-written Go-style config is accepted, older docs format included", () => {
  const config = parseNetworkYaml(`
otp:
  dht:
    interval: 9000
    key: LHKNKX6YZKAFMCYMFPDMQJT7VPJ5ZV2P
    length: 32
  crypto:
    interval: 9000
    key: 2RJYQ2TA7TTJAEDUNKQSBF6HNZNUCYDJ
    length: 32
room: YOUR_ROOM
rendezvous: YOUR_RENDEZVOUS
mdns: YOUR_MDNS
max_message_size: 20971520
unknown_key: ignored
`);
  assert.equal(config.otp.dht.interval, 9000);
  assert.equal(config.otp.crypto.key, "2RJYQ2TA7TTJAEDUNKQSBF6HNZNUCYDJ");
  assert.equal(config.room, "YOUR_ROOM");
  assert.equal(config.maxMessageSize, 20971520);
});

Deno.test("scalars fill string fields with their source text, as yaml.v2 does", () => {
  const config = parseNetworkYaml(`
otp:
  dht: {interval: 0x10, key: 12345, length: 0}
  crypto: {interval: 360, key: yes, length: 6}
room: on
rendezvous: "quoted"
mdns: 1.50
`);
  assert.equal(config.otp.dht.key, "12345");
  assert.equal(config.otp.dht.interval, 16);
  assert.equal(config.otp.crypto.key, "yes");
  assert.equal(config.room, "on");
  assert.equal(config.rendezvous, "quoted");
  assert.equal(config.mdns, "1.50");
  assert.equal(config.maxMessageSize, 20971520, "a missing size means the default");
});

Deno.test("token decoding ignores line breaks like Go's base64 decoder", () => {
  const token = encodeToken(generateNetworkConfig());
  const wrapped = token.replace(/(.{76})/g, "$1\n");
  assert.deepEqual(decodeToken(wrapped), decodeToken(token));
});

function assertUsage(fn: () => unknown, pattern: RegExp) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof UsageError, `expected UsageError, got ${e}`);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes("\n"), "one line");
    return true;
  });
}

Deno.test("malformed tokens give one-line usage errors saying what is wrong", () => {
  const good = generateNetworkConfig();
  const yamlWithout = (drop: string) =>
    networkConfigToYaml(good).split("\n").filter((l) => !l.includes(drop)).join("\n");
  assertUsage(() => decodeToken("  "), /empty/);
  assertUsage(() => decodeToken(""), /empty/);
  assertUsage(() => decodeToken("not base64!"), /base64/);
  assertUsage(() => decodeToken("abc"), /base64/);
  assertUsage(() => decodeToken(btoa("\x00\xff\xfe\x80")), /binary|YAML/);
  assertUsage(() => decodeToken(b64("a: [")), /not valid YAML/);
  assertUsage(() => decodeToken(b64("- a\n- b\n")), /mapping.*list/);
  assertUsage(() => decodeToken(b64("just a string")), /mapping/);
  assertUsage(() => decodeToken(b64("otp: 5\nroom: r\n")), /otp: expected a mapping/);
  assertUsage(() => decodeToken(b64(yamlWithout("    key:"))), /otp\.crypto\.key is missing/);
  assertUsage(() => decodeToken(b64(yamlWithout("room:"))), /room is missing/);
  assertUsage(
    () => decodeToken(b64(networkConfigToYaml(good).replace(/interval: 360/g, "interval: soon"))),
    /interval: expected an integer/,
  );
  assertUsage(
    () => decodeToken(b64(networkConfigToYaml(good).replace(/room: .*/, "room: [1, 2]"))),
    /room: expected a string, got a list/,
  );
  assertUsage(
    () => decodeToken(b64(networkConfigToYaml(good).replace(/interval: 360/g, "interval: 0"))),
    /positive/,
  );
  assertUsage(
    () => decodeToken(b64(networkConfigToYaml(good).replace(/length: 43/g, "length: 45"))),
    /at most 44/,
  );
  const random = crypto.getRandomValues(new Uint8Array(48 * 1024));
  assertUsage(() => decodeToken(btoa(String.fromCharCode(...random))), /binary|YAML|at most/);
  assertUsage(() => decodeToken("A".repeat(10 * 1024 * 1024)), /at most/);
});

Deno.test("deeply nested or alias-heavy YAML is refused before the parser recurses on it", () => {
  // Found by fuzzing: 2 000 `[` exhausted the yaml parser's stack after ~100 ms.
  const refused = (text: string, why: RegExp) =>
    assert.throws(
      () => parseNetworkYaml(text, "config.yaml"),
      (e: unknown) => e instanceof UsageError && e.code === "CONFIG_INVALID" && why.test(e.message),
    );
  refused("[".repeat(60_000), /at most 32 nested \[ or \{/);
  refused("a: " + "{b: ".repeat(33) + "1" + "}".repeat(33), /at most 32 nested/);
  refused("a: &a [" + "*a, ".repeat(101) + "]", /at most 100 aliases/);
  // Quoted brackets are text, and a flow mapping of ordinary depth is fine.
  const config = parseNetworkYaml(
    "otp: {dht: {key: a, interval: 9, length: 6}, crypto: {key: b, interval: 9, length: 6}}\n" +
      `room: '${"[".repeat(100)}'\nrendezvous: z\nmdns: m\n`,
    "config.yaml",
  );
  assert.equal(config.room, "[".repeat(100));
});
