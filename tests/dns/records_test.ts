import assert from "node:assert/strict";
import type { Buffer } from "node:buffer";
import { DnsRecordError, domainName, parseRecordData } from "../../lib/dns/records.ts";
import { decodeMessage, encodeMessage, FLAG } from "../../lib/dns/wire.ts";
import { recordOf } from "../../lib/dns/records.ts";

Deno.test("record data of each type is read as a zone file writes it", () => {
  const cases: [number, string, unknown][] = [
    [1, "10.1.0.5", "10.1.0.5"],
    [28, "fd00::5", "fd00:0:0:0:0:0:0:5"],
    [28, "::ffff:10.1.0.5", "0:0:0:0:0:ffff:a01:5"],
    [5, "web.edgevpn", "web.edgevpn."],
    [5, "web.edgevpn.", "web.edgevpn."],
    [12, "host.example.com.", "host.example.com."],
    [2, "ns1.example.com.", "ns1.example.com."],
    [15, "10 mail.example.com.", { preference: 10, exchange: "mail.example.com." }],
    [33, "10 5 5060 sip.example.com.", {
      priority: 10,
      weight: 5,
      port: 5060,
      target: "sip.example.com.",
    }],
    [6, "ns.x. hostmaster.x. 1 3600 600 86400 60", {
      mname: "ns.x.",
      rname: "hostmaster.x.",
      serial: 1,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum: 60,
    }],
    [257, '0 issue "letsencrypt.org"', { flags: 0, tag: "issue", value: "letsencrypt.org" }],
  ];
  for (const [type, text, data] of cases) {
    assert.deepEqual(parseRecordData(type, text).data, data, `${type} ${text}`);
  }
  const txt = parseRecordData(16, '"hello world" plain "quote \\" and \\065" ""').data;
  assert.deepEqual(
    (txt as Buffer[]).map((b) => b.toString()),
    ["hello world", "plain", 'quote " and A', ""],
  );
  const long = parseRecordData(16, `"${"x".repeat(300)}"`).data as Buffer[];
  assert.deepEqual(long.map((b) => b.length), [255, 45], "long strings split as miekg/dns does");
  const generic = parseRecordData(65280, "\\# 3 abcd ef");
  assert.equal(generic.packetType, "UNKNOWN_65280");
  assert.deepEqual([...(generic.data as Buffer)], [0xab, 0xcd, 0xef]);
});

Deno.test("record data invalid for its type is refused with a message naming the type", () => {
  const bad: [number, string][] = [
    [1, "10.1.0.300"],
    [1, "10.1.0"],
    [1, "010.1.0.5"],
    [1, "fd::1"],
    [1, "10.1.0.5 10.1.0.6"],
    [1, ""],
    [28, "10.1.0.5"],
    [28, "fd::1::2"],
    [28, "fe80::1%eth0"],
    [5, "a..b"],
    [5, `${"a".repeat(64)}.com`],
    [5, `${"abcdefgh.".repeat(32)}`],
    [5, "two names"],
    [5, '"quoted"'],
    [15, "mail.example.com."],
    [15, "70000 mail.example.com."],
    [33, "1 2 x.y."],
    [33, "1 2 3 4 5"],
    [16, '"unterminated'],
    [16, 'in"side'],
    [16, "\\999"],
    [6, "a. b. 1 2 3 4"],
    [257, "0 issue"],
    [13, "i386 linux"],
    [65280, "\\# 2 ab"],
    [65280, "\\# x ab"],
    [65280, "\\# 1 zz"],
  ];
  for (const [type, text] of bad) {
    assert.throws(
      () => parseRecordData(type, text),
      (e: unknown) => e instanceof DnsRecordError && e.code === "DNS_RECORD_INVALID",
      `${type} ${JSON.stringify(text)}`,
    );
  }
  assert.throws(() => parseRecordData(1, "1.2.3"), /^DnsRecordError: A record: expected an IPv4/);
  assert.throws(() => parseRecordData(15, "bad"), /MX record: expected a preference/);
});

Deno.test("parsed records encode into DNS messages and decode back", () => {
  const records = [
    recordOf("a.mesh.", 60, parseRecordData(1, "10.1.0.5")),
    recordOf("a.mesh.", 60, parseRecordData(28, "fd::5")),
    recordOf("a.mesh.", 60, parseRecordData(16, '"v=spf1 -all" two')),
    recordOf("a.mesh.", 60, parseRecordData(33, "1 2 3 t.mesh.")),
    recordOf("a.mesh.", 60, parseRecordData(15, "5 mx.mesh.")),
    recordOf("a.mesh.", 60, parseRecordData(65280, "\\# 2 0102")),
  ];
  const bytes = encodeMessage({
    id: 7,
    flags: FLAG.QR,
    questions: [{ name: "a.mesh.", type: 1, class: 1 }],
    answers: records,
    authorities: [],
    additionals: [],
  });
  const back = decodeMessage(bytes, 65535);
  assert.deepEqual(back.answers.map((r) => [r.name, r.type, r.ttl]), [
    ["a.mesh", "A", 60],
    ["a.mesh", "AAAA", 60],
    ["a.mesh", "TXT", 60],
    ["a.mesh", "SRV", 60],
    ["a.mesh", "MX", 60],
    ["a.mesh", "UNKNOWN_65280", 60],
  ]);
  assert.equal(back.answers[1].data, "fd::5");
  assert.deepEqual((back.answers[2].data as Buffer[]).map(String), ["v=spf1 -all", "two"]);
});

Deno.test("domain names: absolute, labels of 1 to 63 bytes, at most 255 bytes on the wire", () => {
  assert.equal(domainName("a.b"), "a.b.");
  assert.equal(domainName("."), ".");
  assert.equal(domainName(`${"a".repeat(63)}.b`), `${"a".repeat(63)}.b.`);
  for (const bad of ["", "..", "a..b", ".a", "a b", 'a"b', "a\\.b", `${"a".repeat(64)}`]) {
    assert.equal(domainName(bad), undefined, bad);
  }
  assert.equal(domainName(`${"abcdefg.".repeat(30)}abcdefg`), `${"abcdefg.".repeat(30)}abcdefg.`);
  assert.equal(domainName(`${"abcdefg.".repeat(31)}abcdefg`), undefined);
});
