import assert from "node:assert/strict";
import {
  parseSocksGreeting,
  parseSocksRequest,
  SocksError,
  SocksReply,
  socksReply,
} from "../../lib/proxy/socks5.ts";
import { EgressPicker } from "../../lib/proxy/picker.ts";

Deno.test("SOCKS5 greetings and requests parse once complete, for every address type", () => {
  assert.equal(parseSocksGreeting(Uint8Array.of(5, 2, 0)), undefined);
  assert.deepEqual(parseSocksGreeting(Uint8Array.of(5, 2, 2, 0, 9)), {
    methods: [2, 0],
    length: 4,
  });
  const v4 = [5, 1, 0, 1, 93, 184, 216, 34, 1, 187];
  const v6 = [5, 1, 0, 4, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80];
  const name = [5, 1, 0, 3, 11, ...new TextEncoder().encode("Example.COM"), 0, 22];
  for (
    const [bytes, host, port] of [[v4, "93.184.216.34", 443], [v6, "2001:db8::1", 80], [
      name,
      "example.com",
      22,
    ]] as const
  ) {
    for (let n = 0; n < bytes.length; n++) {
      assert.equal(
        parseSocksRequest(Uint8Array.from(bytes.slice(0, n))),
        undefined,
        `${host} ${n}`,
      );
    }
    assert.deepEqual(parseSocksRequest(Uint8Array.from([...bytes, 1, 2])), {
      command: 1,
      target: { host, port },
      length: bytes.length,
    });
  }
});

Deno.test("malformed SOCKS5 messages throw SocksError with the reply to send", () => {
  const reply = (bytes: number[]) => {
    try {
      parseSocksRequest(Uint8Array.from(bytes));
    } catch (e) {
      assert.ok(e instanceof SocksError);
      return e.reply;
    }
    assert.fail("expected an error");
  };
  assert.throws(() => parseSocksGreeting(Uint8Array.of(4, 1, 0)), SocksError);
  assert.throws(() => parseSocksGreeting(Uint8Array.of(5, 0)), SocksError);
  assert.equal(reply([4, 1, 0, 1]), undefined);
  assert.equal(reply([5, 1, 1, 1]), SocksReply.generalFailure);
  assert.equal(reply([5, 1, 0, 2]), SocksReply.addressTypeNotSupported);
  assert.equal(reply([5, 1, 0, 3, 0]), SocksReply.hostUnreachable);
  assert.equal(reply([5, 1, 0, 3, 3, 97, 32, 98, 0, 80]), SocksReply.hostUnreachable);
  assert.equal(
    reply([5, 1, 0, 3, 3, 58, 58, 49, 0, 80]),
    SocksReply.hostUnreachable,
    "::1 as a name",
  );
  assert.equal(reply([5, 1, 0, 1, 1, 2, 3, 4, 0, 0]), SocksReply.hostUnreachable, "port 0");
  assert.deepEqual([...socksReply(SocksReply.notAllowed)], [5, 2, 0, 1, 0, 0, 0, 0, 0, 0]);
});

Deno.test("SOCKS5 IPv6 addresses become RFC 5952 text, IPv4-mapped ones IPv4 text", () => {
  const v6 = (...groups: number[]) => groups.flatMap((g) => [g >> 8, g & 0xff]);
  const host = (...groups: number[]) =>
    parseSocksRequest(Uint8Array.of(5, 1, 0, 4, ...v6(...groups), 0, 80))?.target.host;
  assert.equal(host(0, 0, 0, 0, 0, 0, 0, 1), "::1");
  assert.equal(host(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1), "2001:db8::1:0:0:1");
  assert.equal(host(0xfe80, 0, 0, 0, 0, 0, 0, 0), "fe80::");
  assert.equal(host(0, 0, 0, 0, 0, 0xffff, 0x7f00, 1), "127.0.0.1");
});

Deno.test("the picker chooses live announced egress nodes, passes over failing ones and, for tunnels, Go-only ones", () => {
  const egress = new Map([["A", '"ok"'], ["B", '"ok"'], ["C", '"ok"'], ["SELF", '"ok"']]);
  const alive = ["A", "B", "SELF", "D"];
  let now = 1_000_000;
  let r = 0;
  const picker = new EgressPicker(
    {
      currentData: () => new Map([["egress", egress]]),
      availableNodes: () => alive,
    },
    "SELF",
    { deadIntervalMs: 600_000, now: () => now, random: () => r },
  );
  assert.deepEqual(
    picker.alive(),
    ["A", "B"],
    "C has no heartbeat, D announced nothing, SELF is us",
  );
  assert.equal(picker.pick({ exclude: new Set(), tunnel: false }), "A");
  r = 0.99;
  assert.equal(picker.pick({ exclude: new Set(), tunnel: false }), "B");
  picker.failed("B");
  assert.equal(picker.pick({ exclude: new Set(), tunnel: false }), "A", "B failed lately");
  assert.equal(picker.pick({ exclude: new Set(["A"]), tunnel: false }), "B", "only B is left");
  now += 31_000;
  assert.equal(picker.pick({ exclude: new Set(), tunnel: false }), "B", "the penalty ended");
  picker.setGoOnly("A", true);
  picker.setGoOnly("B", true);
  assert.equal(picker.pick({ exclude: new Set(), tunnel: true }), undefined);
  assert.ok(picker.hasGoOnly());
  assert.equal(picker.pick({ exclude: new Set(["A", "B"]), tunnel: false }), undefined);
});
