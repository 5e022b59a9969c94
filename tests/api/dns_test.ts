import assert from "node:assert/strict";
import { generateIdentity } from "../../lib/crypto/identity.ts";
import { dnsTypeName, dnsTypeNumber } from "../../lib/dns/types.ts";
import {
  dnsRecordsFromLedger,
  dnsRecordsToLedger,
  parseDnsBody,
} from "../../lib/api/routes_dns.ts";
import { ApiRequestError } from "../../lib/api/errors.ts";
import { dnsCodec } from "../../lib/ledger/buckets.ts";
import { startTestApi, waitFor } from "./helpers.ts";

Deno.test("DNS type names follow miekg/dns; unknown numbers print as TYPE<n>", () => {
  assert.equal(dnsTypeName(1), "A");
  assert.equal(dnsTypeName(5), "CNAME");
  assert.equal(dnsTypeName(28), "AAAA");
  assert.equal(dnsTypeName(23), "NSAP-PTR");
  assert.equal(dnsTypeName(65), "HTTPS");
  assert.equal(dnsTypeName(65280), "TYPE65280");
  assert.equal(dnsTypeNumber("A"), 1);
  assert.equal(dnsTypeNumber("aaaa"), 28);
  assert.equal(dnsTypeNumber("Srv"), 33);
  assert.equal(dnsTypeNumber("nsap-ptr"), 23);
  assert.equal(dnsTypeNumber("TYPE65280"), 65280);
  assert.equal(dnsTypeNumber("TYPE65536"), undefined);
  assert.equal(dnsTypeNumber("BOGUS"), undefined);
  assert.equal(dnsTypeNumber("1"), undefined);
});

Deno.test("ledger DNS values read as Go's API reads them", () => {
  assert.deepEqual(
    dnsRecordsFromLedger('{"1":"10.1.0.5","28":"fd::5","65280":"x"}'),
    new Map([["A", "10.1.0.5"], ["AAAA", "fd::5"], ["TYPE65280", "x"]]),
  );
  assert.deepEqual(
    dnsRecordsFromLedger('{"01":"a","x":"skipped","70000":"skipped","-1":"skipped","5":7}'),
    new Map([["A", "a"], ["CNAME", ""]]),
    "uint16 decimal keys only; non-string data reads as empty",
  );
  assert.deepEqual(dnsRecordsFromLedger('"not an object"'), new Map());
  assert.deepEqual(dnsRecordsFromLedger("{broken"), new Map());
});

Deno.test("API DNS records convert to type numbers, sorted as Go sorts map keys", () => {
  const out = dnsRecordsToLedger(new Map([["CNAME", "x."], ["AAAA", "fd::1"], ["a", "1.1.1.1"]]));
  assert.deepEqual(out, new Map([[5, "x."], [28, "fd::1"], [1, "1.1.1.1"]]));
  assert.equal(dnsCodec.encode(out), '{"1":"1.1.1.1","28":"fd::1","5":"x."}');
  assert.throws(
    () => dnsRecordsToLedger(new Map([["BOGUS", "x"]])),
    (e: unknown) => e instanceof ApiRequestError && e.status === 400,
  );
  for (const [type, data] of [["A", "fd::1"], ["AAAA", "10.1.0.1"], ["SRV", "1 2 x.y."]]) {
    assert.throws(
      () => dnsRecordsToLedger(new Map([[type, data]])),
      (e: unknown) =>
        e instanceof ApiRequestError && e.status === 400 && e.code === "DNS_RECORD_INVALID" &&
        e.message.includes(type),
      `${type} ${data}`,
    );
  }
});

Deno.test("POST bodies are matched like Go's decoder: case-insensitive names, last duplicate wins", () => {
  assert.deepEqual(
    parseDnsBody('{"regex":"a","REGEX":"b","records":{"A":"1"},"Other":1}', 1024),
    { Regex: "b", Records: new Map([["A", "1"]]) },
  );
  assert.deepEqual(parseDnsBody('{"Regex":"x","Records":null}', 1024), {
    Regex: "x",
    Records: new Map(),
  });
  for (
    const bad of [
      "[]",
      "null",
      '"x"',
      '{"Regex":1}',
      '{"Regex":""}',
      "{}",
      '{"Regex":"x","Records":[]}',
      '{"Regex":"x","Records":{"A":1}}',
      '{"Regex":"x"} trailing',
      `{"Regex":"${"r".repeat(1025)}"}`,
    ]
  ) {
    assert.throws(
      () => parseDnsBody(bad, 1024),
      (e: unknown) => e instanceof ApiRequestError && e.status === 400,
      bad,
    );
  }
});

for (const mode of ["off", "enforce"] as const) {
  Deno.test(`${mode}: POST /api/dns persists type numbers; GET /api/dns shows names`, async () => {
    const id = await generateIdentity();
    const api = await startTestApi({ identity: id, ledger: { mode } });
    try {
      const res = await api.request("/api/dns", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ Regex: "test\\.foo\\.", Records: { A: "2.2.2.2", AAAA: "fd::2" } }),
      });
      assert.equal(res.status, 200);
      assert.equal(res.text, '{"State":"Announcing"}\n');
      await waitFor(
        () => api.ledger.currentData().get("dns")?.has("test\\.foo\\.") === true,
        "dns record",
      );
      assert.equal(
        api.ledger.currentData().get("dns")!.get("test\\.foo\\."),
        '{"1":"2.2.2.2","28":"fd::2"}',
        "the ledger holds Go's types.DNS JSON",
      );
      await api.ledger.add("dns", { "other\\.": { "5": "x.", "65280": "y" } });
      const list = await api.request("/api/dns");
      assert.equal(
        list.text,
        '[{"Regex":"other\\\\.","Records":{"CNAME":"x.","TYPE65280":"y"}},' +
          '{"Regex":"test\\\\.foo\\\\.","Records":{"A":"2.2.2.2","AAAA":"fd::2"}}]\n',
      );
    } finally {
      await api.close();
    }
  });
}

Deno.test("POST /api/dns needs a JSON Content-Type (no cross-site simple requests); others are 415", async () => {
  const api = await startTestApi();
  try {
    const body = '{"Regex":"a","Records":{"TXT":"hi"}}';
    const refused: Array<Record<string, string>> = [
      {},
      { "content-type": "text/plain;charset=UTF-8" },
      { "content-type": "application/x-www-form-urlencoded" },
      { "content-type": "multipart/form-data; boundary=x" },
    ];
    for (const headers of refused) {
      const res = await api.request("/api/dns", {
        method: "POST",
        headers,
        body: new TextEncoder().encode(body),
      });
      assert.equal(res.status, 415, JSON.stringify(headers));
      assert.match(res.json().error, /application\/json/);
    }
    const ok = await api.request("/api/dns", {
      method: "POST",
      headers: { "content-type": "application/json; charset=utf-8" },
      body,
    });
    assert.equal(ok.status, 200);
    await waitFor(() => api.ledger.currentData().get("dns")?.get("a") === '{"16":"hi"}', "record");
  } finally {
    await api.close();
  }
});
