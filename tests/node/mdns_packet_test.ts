import assert from "node:assert/strict";
import {
  decodeDnsMessage,
  type DnsMessage,
  encodeDnsMessage,
  RR,
  sameName,
} from "../../lib/node/mdns_packet.ts";
import { InputError } from "../../lib/util/errors.ts";

const response: DnsMessage = {
  id: 0,
  response: true,
  authoritative: true,
  questions: [],
  answers: [
    { name: "Svc.local.", type: RR.PTR, ttl: 3200, flush: false, data: "inst.Svc.local." },
    {
      name: "inst.Svc.local.",
      type: RR.SRV,
      ttl: 3200,
      flush: true,
      data: { priority: 0, weight: 0, port: 4001, target: "inst.local." },
    },
    {
      name: "inst.Svc.local.",
      type: RR.TXT,
      ttl: 3200,
      flush: true,
      data: ["dnsaddr=/ip4/10.0.0.1/tcp/1"],
    },
    { name: "inst.local.", type: RR.A, ttl: 120, flush: true, data: "10.0.0.1" },
    { name: "inst.local.", type: RR.AAAA, ttl: 120, flush: true, data: "fd00:0:0:0:0:0:0:1" },
  ],
  authorities: [],
  additionals: [],
};

Deno.test("DNS messages round-trip, keeping the case of names", () => {
  const decoded = decodeDnsMessage(encodeDnsMessage(response));
  assert.deepEqual(decoded, response);
  const q = decodeDnsMessage(encodeDnsMessage({
    id: 7,
    response: false,
    questions: [{ name: "Svc.local.", type: RR.PTR, unicast: true }],
    answers: [],
    authorities: [],
    additionals: [],
  }));
  assert.deepEqual(q.questions, [{ name: "Svc.local.", type: RR.PTR, unicast: true }]);
  assert.equal(q.id, 7);
  assert.ok(sameName("SVC.local", "svc.local."));
});

Deno.test("compressed names (as miekg/dns writes them) are followed", () => {
  // Header, one answer: name "a.local." then a PTR whose data is "b" + pointer to offset 12.
  const name = [1, 0x61, 5, ...new TextEncoder().encode("local"), 0];
  const rdata = [1, 0x62, 0xc0, 12];
  const bytes = Uint8Array.from([
    0,
    0,
    0x84,
    0,
    0,
    0,
    0,
    1,
    0,
    0,
    0,
    0,
    ...name,
    0,
    12,
    0,
    1,
    0,
    0,
    0,
    10,
    0,
    rdata.length,
    ...rdata,
  ]);
  const m = decodeDnsMessage(bytes);
  assert.equal(m.answers[0].name, "a.local.");
  assert.equal(m.answers[0].data, "b.a.local.");
});

Deno.test("malformed packets are rejected, never looped on", () => {
  const good = encodeDnsMessage(response);
  for (let cut = 1; cut < good.length; cut += 7) {
    assert.throws(() => decodeDnsMessage(good.subarray(0, cut)), InputError, `cut at ${cut}`);
  }
  // A name pointer that points at itself.
  const loop = Uint8Array.from([0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 12, 0, 1]);
  assert.throws(() => decodeDnsMessage(loop), InputError);
  for (let i = 0; i < 300; i++) {
    const junk = crypto.getRandomValues(new Uint8Array(Math.floor(Math.random() * 100)));
    try {
      decodeDnsMessage(junk);
    } catch (e) {
      assert.ok(e instanceof InputError);
    }
  }
  assert.throws(
    () =>
      encodeDnsMessage({
        ...response,
        answers: [{ name: `${"x".repeat(64)}.local.`, type: RR.PTR, ttl: 1, data: "a." }],
      }),
    InputError,
  );
});
