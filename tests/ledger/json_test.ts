import assert from "node:assert/strict";
import {
  checksum,
  decodeBlock,
  encodeBlock,
  GENESIS_HASH,
  type Storage,
  verifyBlockHash,
} from "../../lib/ledger/block.ts";
import { decodeEntry, encodeEntry, type Entry, UINT64_MAX } from "../../lib/ledger/entry.ts";
import {
  base64ToBytes,
  compareGoStrings,
  goMarshal,
  goQuote,
  type JsonNumber,
  type JsonObject,
  parseJson,
} from "../../lib/ledger/json.ts";

function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = [
  ..."abcXYZ019 {}[]:,\"\\/<>&'\u007f",
  "\n",
  "\r",
  "\t",
  "\b",
  "\f",
  "\u0000",
  "\u001f",
  "é",
  "ß",
  "\u2028",
  "\u2029",
  "\ufffd",
  "\uffff",
  "中",
  "\u{1F600}",
  "\u{10FFFF}",
];

function randomString(r: () => number, max = 20): string {
  let s = "";
  const n = Math.floor(r() * max);
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(r() * ALPHABET.length)];
  return s;
}

function randomBig(r: () => number, max: bigint): bigint {
  let v = 0n;
  for (let i = 0; i < 4; i++) v = (v << 16n) | BigInt(Math.floor(r() * 65536));
  return r() < 0.2 ? max : v % (max + 1n);
}

function randomEntry(r: () => number): Entry {
  const kind = r();
  if (kind < 0.3) {
    return {
      value: randomString(r),
      owner: "",
      version: 0n,
      updatedAt: 0n,
      deleted: false,
      sig: null,
    };
  }
  const sigKind = r();
  return {
    value: randomString(r),
    owner: randomString(r, 60),
    version: randomBig(r, UINT64_MAX),
    updatedAt: randomBig(r, (1n << 63n) - 1n) * (r() < 0.3 ? -1n : 1n),
    deleted: r() < 0.5,
    sig: sigKind < 0.2
      ? null
      : sigKind < 0.3
      ? new Uint8Array(0)
      : crypto.getRandomValues(new Uint8Array(Math.floor(r() * 80))),
  };
}

Deno.test("goQuote escapes as Go's json.Marshal (HTML-safe, U+2028/9, control characters)", () => {
  assert.equal(goQuote("a<b>c&d"), '"a\\u003cb\\u003ec\\u0026d"');
  assert.equal(goQuote("\u2028\u2029"), '"\\u2028\\u2029"');
  assert.equal(goQuote("\b\f\n\r\t\u0000\u001f"), '"\\b\\f\\n\\r\\t\\u0000\\u001f"');
  assert.equal(goQuote('"\\/'), '"\\"\\\\/"');
  assert.equal(goQuote("\u007fé\u{1F600}"), '"\u007fé\u{1F600}"');
});

Deno.test("goMarshal encodes values as Go would marshal the matching Go types", () => {
  assert.equal(goMarshal({ PeerID: "x", Hostname: "h" }), '{"PeerID":"x","Hostname":"h"}');
  assert.equal(
    goMarshal(new Map([["28", "fd::1"], ["1", "10.1.0.1"]])),
    '{"1":"10.1.0.1","28":"fd::1"}',
  );
  assert.equal(goMarshal(new Map([["9", 1], ["10", 2]])), '{"10":2,"9":1}');
  assert.equal(goMarshal("ok"), '"ok"');
  assert.equal(goMarshal(1767225600000000000n), "1767225600000000000");
  assert.equal(goMarshal([1, 1.5, -0, 1e21, 1e-7, true, null]), "[1,1.5,-0,1e+21,1e-7,true,null]");
  assert.equal(goMarshal(new Uint8Array([1, 2, 3])), '"AQID"');
  assert.equal(goMarshal("<tag>"), '"\\u003ctag\\u003e"');
  assert.throws(() => goMarshal(NaN), { code: "VALUE_UNSUPPORTED" });
  assert.throws(() => goMarshal(undefined), { code: "VALUE_UNSUPPORTED" });
  assert.throws(() => goMarshal(new Date()), { code: "VALUE_UNSUPPORTED" });
});

Deno.test("parseJson keeps big integers exact and rejects what Go's scanner rejects", () => {
  const v = parseJson('{"Version": 18446744073709551615}') as JsonObject;
  assert.equal((v.entries[0][1] as JsonNumber).text, "18446744073709551615");
  for (
    const bad of [
      "",
      "{",
      "[1,]",
      '{"a":1,}',
      "01",
      "1.",
      ".5",
      "+1",
      "NaN",
      '"\u0001"',
      '"\\x"',
      "\ufeff{}",
      "{} {}",
      "'a'",
    ]
  ) {
    assert.throws(() => parseJson(bad), { code: "JSON_INVALID" }, JSON.stringify(bad));
  }
  assert.throws(() => parseJson("[".repeat(100) + "]".repeat(100)), { code: "JSON_INVALID" });
});

Deno.test("parseJson turns unpaired surrogate escapes into U+FFFD like Go", () => {
  assert.equal(parseJson('"\\ud83d\\ude00"'), "\u{1F600}");
  assert.equal(parseJson('"\\ud83d"'), "\ufffd");
  assert.equal(parseJson('"\\ude00x"'), "\ufffdx");
  assert.equal(parseJson('"\\ud83d\\u0041"'), "\ufffdA");
});

Deno.test("entries decode with Go's leniency: case-insensitive names, nulls, Sig as byte array", () => {
  const e = decodeEntry(
    parseJson('{"value":"v","OWNER":"o","version":2,"updatedat":-5,"deleted":true,"sig":[1,2]}'),
  );
  assert.deepEqual(e, {
    value: "v",
    owner: "o",
    version: 2n,
    updatedAt: -5n,
    deleted: true,
    sig: new Uint8Array([1, 2]),
  });
  const n = decodeEntry(parseJson('{"Value":null,"Owner":"o","Sig":null,"Version":null}'));
  assert.deepEqual(n, {
    value: "",
    owner: "o",
    version: 0n,
    updatedAt: 0n,
    deleted: false,
    sig: null,
  });
  assert.equal(
    encodeEntry(n),
    '{"Value":"","Owner":"o","Version":0,"UpdatedAt":0,"Deleted":false,"Sig":null}',
  );
  assert.equal(decodeEntry(parseJson('{"Value":"a","Value":"b"}')).value, "b");
  assert.equal(
    encodeEntry(decodeEntry(parseJson('{"Value":"a"}'))),
    '"a"',
    "zero metadata re-encodes legacy",
  );
  assert.deepEqual(decodeEntry(parseJson('{"Sig":""}')).sig, new Uint8Array(0));
  assert.equal(decodeEntry(null).value, "");
});

Deno.test("entries reject what Go rejects: wrong types, precision-losing numbers, bad base64", () => {
  const cases: Array<[string, string]> = [
    ["5", "TYPE_INVALID"],
    ["true", "TYPE_INVALID"],
    ["[]", "TYPE_INVALID"],
    ['{"Version":"1"}', "TYPE_INVALID"],
    ['{"Version":1.0}', "NUMBER_INVALID"],
    ['{"Version":1e3}', "NUMBER_INVALID"],
    ['{"Version":-1}', "NUMBER_INVALID"],
    ['{"Version":18446744073709551616}', "NUMBER_INVALID"],
    ['{"UpdatedAt":9223372036854775808}', "NUMBER_INVALID"],
    ['{"Deleted":1}', "TYPE_INVALID"],
    ['{"Sig":"AQI"}', "TYPE_INVALID"],
    ['{"Sig":"!!!!"}', "TYPE_INVALID"],
    ['{"Sig":[256]}', "NUMBER_INVALID"],
    ['{"Owner":1}', "TYPE_INVALID"],
  ];
  for (const [text, code] of cases) {
    assert.throws(() => decodeEntry(parseJson(text)), { code }, text);
  }
});

Deno.test("base64 decoding follows Go's StdEncoding (padding required, CR/LF ignored)", () => {
  assert.deepEqual(base64ToBytes("AQID"), new Uint8Array([1, 2, 3]));
  assert.deepEqual(base64ToBytes("AQ\r\nID"), new Uint8Array([1, 2, 3]));
  assert.deepEqual(base64ToBytes("AQI="), new Uint8Array([1, 2]));
  assert.equal(base64ToBytes("AQI"), undefined);
  assert.equal(base64ToBytes("AQ I="), undefined);
  assert.equal(base64ToBytes("A==="), undefined);
});

Deno.test("compareGoStrings orders by UTF-8 bytes (property)", () => {
  const r = rng(7);
  const enc = new TextEncoder();
  for (let i = 0; i < 2000; i++) {
    const a = randomString(r, 6);
    const b = randomString(r, 6);
    const x = enc.encode(a);
    const y = enc.encode(b);
    let want = 0;
    for (let j = 0; j < Math.min(x.length, y.length) && want === 0; j++) {
      want = Math.sign(x[j] - y[j]);
    }
    if (want === 0) want = Math.sign(x.length - y.length);
    assert.equal(
      Math.sign(compareGoStrings(a, b)),
      want,
      `${JSON.stringify(a)} vs ${JSON.stringify(b)}`,
    );
  }
});

Deno.test("random entries re-encode byte for byte after decoding (property)", () => {
  const r = rng(42);
  for (let i = 0; i < 3000; i++) {
    const e = randomEntry(r);
    const json = encodeEntry(e);
    const back = decodeEntry(parseJson(json));
    assert.equal(encodeEntry(back), json);
    assert.deepEqual(back, e);
  }
});

Deno.test("random blocks re-encode byte for byte and keep a valid hash (property)", async () => {
  const r = rng(1234);
  for (let i = 0; i < 200; i++) {
    const storage: Storage = new Map(
      Array.from({ length: Math.floor(r() * 4) }, () =>
        [
          randomString(r, 8),
          new Map(
            Array.from({ length: Math.floor(r() * 5) }, () => [randomString(r, 8), randomEntry(r)]),
          ),
        ] as const),
    );
    const partial = {
      index: 1 + Math.floor(r() * 1000),
      timestamp: randomString(r, 30),
      storage,
      prevHash: GENESIS_HASH,
    };
    const block = { ...partial, hash: await checksum(partial) };
    const json = encodeBlock(block);
    const back = decodeBlock(parseJson(json));
    assert.equal(encodeBlock(back), json);
    await verifyBlockHash(back);
  }
});

Deno.test("blocks decode with Go's leniency and reject Go's type errors", () => {
  const b = decodeBlock(
    parseJson(
      '{"index":2,"HASH":"h","Extra":{"x":[1e999]},"Storage":{"a":{"k":"\\"1\\""}},"Storage":{"b":null}}',
    ),
  );
  assert.equal(b.index, 2);
  assert.equal(b.hash, "h");
  assert.deepEqual(
    [...b.storage.keys()],
    ["a", "b"],
    "a second Storage member adds to the same map",
  );
  assert.equal(decodeBlock(parseJson('{"Storage":{"a":{}},"Storage":null}')).storage.size, 0);
  for (
    const [text, code] of [
      ["[]", "TYPE_INVALID"],
      ['"x"', "TYPE_INVALID"],
      ['{"Index":"1"}', "TYPE_INVALID"],
      ['{"Index":1.5}', "NUMBER_INVALID"],
      ['{"Index":-1}', "INDEX_INVALID"],
      ['{"Index":9007199254740993}', "INDEX_INVALID"],
      ['{"Timestamp":1}', "TYPE_INVALID"],
      ['{"Storage":[]}', "TYPE_INVALID"],
      ['{"Storage":{"b":"x"}}', "TYPE_INVALID"],
      ['{"Storage":{"b":{"k":1}}}', "TYPE_INVALID"],
    ] as const
  ) {
    assert.throws(() => decodeBlock(parseJson(text)), { code }, text);
  }
});
