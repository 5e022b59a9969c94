/** Tests of the bucket value codecs: Go-lenient reading, Go-identical writing, size bounds. */
import assert from "node:assert/strict";
import {
  BUCKET_CODECS,
  BUCKETS,
  dhcpCodec,
  dnsCodec,
  EGRESS_OK,
  egressCodec,
  fileCodec,
  healthcheckCodec,
  machineCodec,
  MAX_VALUE_TEXT,
  peerIdOf,
  serviceCodec,
  userCodec,
} from "../../lib/ledger/buckets.ts";
import { ownerFromPeerIdField } from "../../lib/ledger/policy.ts";

Deno.test("struct values read string fields as Go's Unmarshal does with its error ignored", () => {
  const read = (text: string) => serviceCodec.parse(text);
  assert.deepEqual(read('{"PeerID":"a","Name":"n"}'), { PeerID: "a", Name: "n" });
  assert.deepEqual(read('{"peerid":"a","NAME":"n"}'), { PeerID: "a", Name: "n" });
  assert.deepEqual(read('{"Name":"first","Name":7}'), { PeerID: "", Name: "first" });
  assert.deepEqual(read('{"Name":"a","Name":"b"}'), { PeerID: "", Name: "b" });
  assert.deepEqual(read('{"PeerID":null}'), { PeerID: "", Name: "" });
  assert.deepEqual(read('{"PeerID":"a","Other":{"deep":[1]}}'), { PeerID: "a", Name: "" });
  assert.deepEqual(read('"text"'), { PeerID: "", Name: "" });
  assert.deepEqual(read("{oops"), { PeerID: "", Name: "" });
  assert.deepEqual(userCodec.parse('{"PEERID":"u","timestamp":"t"}'), {
    PeerID: "u",
    Timestamp: "t",
  });
  assert.deepEqual(fileCodec.parse('{"PeerID":"f","Name":"a.txt"}'), {
    PeerID: "f",
    Name: "a.txt",
  });
});

Deno.test("machines encode in Go's field order whatever order they were built in", () => {
  const machine = {
    Version: "v1",
    Address: "10.1.0.2",
    Arch: "amd64",
    OS: "linux",
    Hostname: "box",
    PeerID: "12D3KooWA",
  };
  const text =
    '{"PeerID":"12D3KooWA","Hostname":"box","OS":"linux","Arch":"amd64","Address":"10.1.0.2","Version":"v1"}';
  assert.equal(machineCodec.encode(machine), text);
  assert.equal(JSON.stringify(machineCodec.value(machine)), text);
  assert.deepEqual(machineCodec.parse(text), machine);
  assert.deepEqual(machineCodec.parse('{"peerID":"x","address":"fd00::1","Extra":1}'), {
    PeerID: "x",
    Hostname: "",
    OS: "",
    Arch: "",
    Address: "fd00::1",
    Version: "",
  });
  assert.equal(serviceCodec.encode({ Name: "web", PeerID: "p" }), '{"PeerID":"p","Name":"web"}');
  assert.equal(
    userCodec.encode({ Timestamp: "2026-01-01 00:00:00 +0000 UTC", PeerID: "p" }),
    '{"PeerID":"p","Timestamp":"2026-01-01 00:00:00 +0000 UTC"}',
  );
});

Deno.test("the owner of machines, services and files is the value's PeerID, read one way", () => {
  for (
    const [text, owner] of [
      ['{"PeerID":"peerX","Address":"10.1.0.1"}', "peerX"],
      ['{"peerid":"peerY"}', "peerY"],
      ['{"PeerID":"a","PeerID":7}', "a"],
      ['{"PeerID":7}', ""],
      ["[]", ""],
      ["null", ""],
      ["not json", ""],
    ] as const
  ) {
    assert.equal(peerIdOf(text), owner, text);
    assert.equal(ownerFromPeerIdField("key", text), owner, text);
    assert.equal(machineCodec.parse(text).PeerID, owner, text);
  }
});

Deno.test("dns values read as Go's types.DNS: uint16 decimal keys, data as text, last duplicate wins", () => {
  assert.deepEqual(
    dnsCodec.parse(
      '{"1":"10.1.0.5","28":"fd::5","01":"10.1.0.6","x":"a","70000":"b","-1":"c","5":7,"000000000012":"t"}',
    ),
    new Map([[1, "10.1.0.6"], [28, "fd::5"], [5, ""], [12, "t"]]),
  );
  assert.deepEqual(dnsCodec.parse('"text"'), new Map());
  assert.deepEqual(dnsCodec.parse("{broken"), new Map());
  assert.deepEqual(dnsCodec.parse("[1]"), new Map());
  const records = new Map([[28, "fd::5"], [5, "web."], [1, "10.1.0.5"]]);
  assert.equal(dnsCodec.encode(records), '{"1":"10.1.0.5","28":"fd::5","5":"web."}');
  assert.deepEqual(dnsCodec.parse(dnsCodec.encode(records)), records);
});

Deno.test("heartbeats are RFC 3339 strings in whole seconds; egress and dhcp values are JSON strings", () => {
  assert.equal(healthcheckCodec.parse('"2026-01-01T00:00:00Z"'), 1767225600000000000n);
  assert.equal(healthcheckCodec.parse('"2026-01-01T01:00:00+01:00"'), 1767225600000000000n);
  assert.equal(healthcheckCodec.parse('"yesterday"'), undefined);
  assert.equal(healthcheckCodec.parse("1767225600"), undefined);
  assert.equal(healthcheckCodec.encode(1767225600_999_999_999n), '"2026-01-01T00:00:00Z"');
  assert.equal(egressCodec.encode(EGRESS_OK), '"ok"');
  assert.equal(egressCodec.parse('"ok"'), "ok");
  assert.equal(egressCodec.parse("{}"), "");
  assert.equal(dhcpCodec.parse('"12D3KooWA"'), "12D3KooWA");
  assert.equal(dhcpCodec.parse("12"), "");
});

Deno.test("values longer than a block admits read as the zero value, without being parsed", () => {
  const huge = `{"PeerID":"p","Name":"${"n".repeat(MAX_VALUE_TEXT)}"}`;
  assert.deepEqual(serviceCodec.parse(huge), { PeerID: "", Name: "" });
  assert.equal(peerIdOf(huge), "");
  const deep = '{"PeerID":"p","x":' + "[".repeat(5000) + "]".repeat(5000) + "}";
  assert.equal(peerIdOf(deep), "", "nesting deeper than the JSON parser's bound");
});

Deno.test("every codec is registered under its bucket's name", () => {
  for (const [bucket, codec] of Object.entries(BUCKET_CODECS)) {
    assert.equal(codec.bucket, bucket);
    assert.equal(BUCKETS[bucket as keyof typeof BUCKETS], bucket);
  }
});
