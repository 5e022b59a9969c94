import assert from "node:assert/strict";
import {
  decodeMessage,
  DnsWireError,
  encodeMessage,
  FLAG,
  MAX_QUERY_BYTES,
  opcodeOf,
  rcodeOf,
} from "../../lib/dns/wire.ts";
import { garbagePackets, query } from "./helpers.ts";

Deno.test("a query decodes to its question (name with trailing dot), flags and EDNS", () => {
  const bytes = query("Web.Mesh", 28, { id: 513, edns: 1400 });
  const m = decodeMessage(bytes, MAX_QUERY_BYTES);
  assert.equal(m.id, 513);
  assert.equal(m.flags & FLAG.RD, FLAG.RD);
  assert.equal(opcodeOf(m.flags), 0);
  assert.deepEqual(m.questions, [{ name: "Web.Mesh.", type: 28, class: 1 }]);
  assert.deepEqual(m.edns, { udpPayloadSize: 1400, dnssecOk: false });
  assert.equal(decodeMessage(query(".", 2), MAX_QUERY_BYTES).questions[0].name, ".");
});

Deno.test("bytes that are not a DNS message are refused with a drop reason", () => {
  const reasons = new Map<string, number>();
  for (const { bytes } of garbagePackets(600)) {
    try {
      const m = decodeMessage(bytes, MAX_QUERY_BYTES);
      // Only responses (QR set) decode among the garbage; the server drops those.
      assert.equal(m.flags & FLAG.QR, FLAG.QR);
      reasons.set("response", (reasons.get("response") ?? 0) + 1);
    } catch (e) {
      assert.ok(e instanceof DnsWireError, String(e));
      reasons.set(e.reason, (reasons.get(e.reason) ?? 0) + 1);
    }
  }
  assert.deepEqual(
    [...reasons.keys()].sort(),
    ["malformed", "oversize", "response", "truncated"],
  );
});

Deno.test("a compression pointer to itself or forward cannot loop: the name is refused", () => {
  const header = [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
  const self = new Uint8Array([...header, 0xc0, 12, 0, 1, 0, 1]);
  const forward = new Uint8Array([...header, 0xc0, 20, 0, 1, 0, 1, 0, 0, 1, 0x61, 0]);
  for (const bytes of [self, forward]) {
    assert.throws(
      () => decodeMessage(bytes, MAX_QUERY_BYTES),
      (e: unknown) => e instanceof DnsWireError && e.reason === "malformed",
    );
  }
});

Deno.test("a question whose name has bytes other than printable ASCII is refused", () => {
  const header = [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
  for (const label of [[0xff, 0xfe, 0x41], [0x61, 0x20, 0x62], [0x61, 0x00]]) {
    const bytes = new Uint8Array([...header, label.length, ...label, 0, 0, 1, 0, 1]);
    assert.throws(
      () => decodeMessage(bytes, MAX_QUERY_BYTES),
      (e: unknown) => e instanceof DnsWireError && e.reason === "malformed",
      JSON.stringify(label),
    );
  }
});

Deno.test("responses encode with their flags and rcode", () => {
  const bytes = encodeMessage({
    id: 9,
    flags: FLAG.QR | FLAG.AA | FLAG.RD | 3,
    questions: [{ name: "x.", type: 1, class: 1 }],
    answers: [],
    authorities: [],
    additionals: [],
    edns: { udpPayloadSize: 1232, dnssecOk: false },
  });
  const m = decodeMessage(bytes, 65535);
  assert.equal(rcodeOf(m.flags), 3);
  assert.equal(m.flags & (FLAG.QR | FLAG.AA | FLAG.RD), FLAG.QR | FLAG.AA | FLAG.RD);
  assert.equal(m.edns?.udpPayloadSize, 1232);
});
