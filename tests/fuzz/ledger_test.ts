/** Fuzzing of the ledger's parsers of peer bytes: gzip blocks and digests, JSON, blocks, entries, values. */
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { decodeBlock, encodeBlock } from "../../lib/ledger/block.ts";
import { decodeEntry, type Entry } from "../../lib/ledger/entry.ts";
import { parseJson } from "../../lib/ledger/json.ts";
import { BUCKET_CODECS, peerIdOf, type ValueCodec } from "../../lib/ledger/buckets.ts";
import { ownerFromPeerIdField } from "../../lib/ledger/policy.ts";
import { decodeMessage, DIGEST_MARKER } from "../../lib/ledger/wire.ts";
import { concat, fc, fuzz, mutated } from "./harness.ts";

const text = new TextEncoder();

/** Strings that stress a JSON parser: escapes, surrogates, control characters, long numbers. */
const jsonish = fc.oneof(
  fc.json({ depthSize: "medium" }),
  fc.string({ unit: "binary" }),
  fc.stringMatching(/^[\[\]{}",:0-9eE+\-.\\ntrufalse u]{0,80}$/),
  fc.integer({ min: 1, max: 3000 }).map((n) => "[".repeat(n) + "]".repeat(n)),
  fc.integer({ min: 1, max: 3000 }).map((n) => '{"a":'.repeat(n) + "1" + "}".repeat(n)),
  fc.constantFrom('"\\ud800"', '"\\udc00\\ud800"', "1e999999", "-0", "1".repeat(400), '"\\u00"'),
);

fuzz({
  name: "ledger JSON",
  arbitrary: jsonish,
  run(t) {
    parseJson(t);
  },
});

/** An entry in either form, with drawn fields. */
const entry: fc.Arbitrary<Entry> = fc.record({
  value: fc.oneof(fc.json(), fc.string()),
  owner: fc.oneof(fc.constant(""), fc.string({ maxLength: 60 })),
  version: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  updatedAt: fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
  deleted: fc.boolean(),
  sig: fc.option(fc.uint8Array({ maxLength: 80 })),
});

/** A block's JSON text: encoded from drawn values, so that it is valid before any mutation. */
const blockJson = fc.record({
  index: fc.nat(),
  timestamp: fc.string({ maxLength: 40 }),
  buckets: fc.dictionary(
    fc.string({ maxLength: 12 }),
    fc.dictionary(fc.string({ maxLength: 16 }), entry, { maxKeys: 4 }),
    { maxKeys: 4 },
  ),
  hash: fc.stringMatching(/^[0-9a-f]{64}$/),
  prevHash: fc.stringMatching(/^[0-9a-f]{0,64}$/),
}).map((b) =>
  encodeBlock({
    index: b.index,
    timestamp: b.timestamp,
    storage: new Map(Object.entries(b.buckets).map(([k, v]) => [k, new Map(Object.entries(v))])),
    hash: b.hash,
    prevHash: b.prevHash,
  })
);

/** Go-style field-name variants and wrong types where a block or entry has its fields. */
const oddBlockJson = fc.record({
  Index: fc.oneof(fc.integer(), fc.constantFrom("1", "1.5", "-1", "1e3", "9".repeat(30))),
  tImEsTaMp: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
  storage: fc.oneof(
    fc.dictionary(fc.string(), fc.oneof(fc.constant(null), fc.jsonValue())),
    fc.jsonValue(),
  ),
  HASH: fc.oneof(fc.string(), fc.jsonValue()),
}, { requiredKeys: [] }).map((o) => JSON.stringify(o).replace(/"Index":"([^"]*)"/, '"Index":$1'));

fuzz({
  name: "ledger blocks and entries from parsed JSON",
  arbitrary: fc.oneof(blockJson, oddBlockJson, jsonish),
  run(t) {
    let json;
    try {
      json = parseJson(t);
    } catch {
      return;
    }
    const block = decodeBlock(json);
    // What decodes re-encodes and decodes to the same block.
    assert.deepEqual(decodeBlock(parseJson(encodeBlock(block))), block);
    decodeEntry(json);
  },
});

fuzz({
  name: "ledger messages: gzip block or digest",
  arbitrary: fc.oneof(
    { weight: 3, arbitrary: blockJson.map((t) => gzipSync(text.encode(t)) as Uint8Array) },
    mutated(blockJson.map((t) => gzipSync(text.encode(t)) as Uint8Array)),
    blockJson.chain((t) => mutated(fc.constant(text.encode(t)))).map((b) => gzipSync(b)),
    fc.tuple(fc.jsonValue(), fc.jsonValue(), fc.jsonValue()).map((d) =>
      gzipSync(text.encode(JSON.stringify({ [DIGEST_MARKER]: d })))
    ),
    jsonish.map((t) => gzipSync(text.encode(t))),
    fc.uint8Array({ maxLength: 300 }),
    // Concatenated gzip members and trailing garbage.
    fc.tuple(blockJson, fc.uint8Array({ maxLength: 20 })).map(([t, tail]) =>
      concat([gzipSync(text.encode(t)), gzipSync(text.encode(t)), tail])
    ),
  ),
  async run(bytes) {
    await decodeMessage(bytes);
  },
});

fuzz({
  name:
    "bucket values read by every codec (machines, services, files, users, dns, egress, health, owners)",
  arbitrary: fc.oneof(
    jsonish,
    fc.record({ PeerID: fc.jsonValue(), Address: fc.jsonValue() }).map((o) => JSON.stringify(o)),
    fc.dictionary(fc.stringMatching(/^[0-9]{0,7}$/), fc.jsonValue()).map((o) => JSON.stringify(o)),
    fc.date({ noInvalidDate: true }).map((d) => JSON.stringify(d.toISOString())),
    fc.stringMatching(/^"[0-9]{1,6}-[0-9]{1,3}-[0-9]{1,3}T[0-9:.]{0,20}(Z|[+-][0-9:]{0,6})"$/),
  ),
  run(value) {
    assert.equal(ownerFromPeerIdField("k", value), peerIdOf(value));
    for (const codec of Object.values(BUCKET_CODECS) as ValueCodec<unknown>[]) {
      // What a codec reads, it writes in Go's form, which reads back to the same text.
      const once = codec.encode(codec.parse(value));
      assert.equal(codec.encode(codec.parse(once)), once, codec.bucket);
    }
  },
});
