/** Fuzzing of the ledger's parsers of peer bytes: gzip blocks and digests, JSON, blocks, entries, values. */
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import {
  decodeBlock,
  decodeBlockSliced,
  DEFAULT_BLOCK_LIMITS,
  encodeBlock,
} from "../../lib/ledger/block.ts";
import { decodeEntry, type Entry } from "../../lib/ledger/entry.ts";
import { parseJson, parseJsonSliced } from "../../lib/ledger/json.ts";
import { Slicer } from "../../lib/util/slicer.ts";
import {
  BUCKET_CODECS,
  dhcpOffersCodec,
  MAX_DHCP_OFFERS,
  peerIdOf,
  type ValueCodec,
} from "../../lib/ledger/buckets.ts";
import { ownerFromPeerIdField } from "../../lib/ledger/policy.ts";
import { decodeMessage, DIGEST_MARKER } from "../../lib/ledger/wire.ts";
import { InputError } from "../../lib/util/errors.ts";
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

/** Outcome of a parse: its value, or the message of the typed error it threw. */
async function outcome<T>(f: () => T | Promise<T>): Promise<{ value?: T; error?: string }> {
  try {
    return { value: await f() };
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    return { error: `${e.code}: ${e.message}` };
  }
}

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
    "bucket values read by every codec (machines, services, files, users, dns, egress, health, owners, DHCP offers)",
  // One codec per input (each input is one parser's work, as in every other target).
  arbitrary: fc.tuple(
    fc.constantFrom(...[...Object.values(BUCKET_CODECS), dhcpOffersCodec] as ValueCodec<unknown>[]),
    fc.oneof(
      jsonish,
      fc.record({
        Leader: fc.oneof(fc.string(), fc.jsonValue()),
        Addresses: fc.oneof(
          fc.dictionary(fc.string(), fc.oneof(fc.ipV4(), fc.jsonValue()), { maxKeys: 300 }),
          fc.jsonValue(),
        ),
      }).map((o) => JSON.stringify(o)),
      fc.record({ PeerID: fc.jsonValue(), Address: fc.jsonValue() }).map((o) => JSON.stringify(o)),
      fc.dictionary(fc.stringMatching(/^[0-9]{0,7}$/), fc.jsonValue()).map((o) =>
        JSON.stringify(o)
      ),
      fc.date({ noInvalidDate: true }).map((d) => JSON.stringify(d.toISOString())),
      fc.stringMatching(/^"[0-9]{1,6}-[0-9]{1,3}-[0-9]{1,3}T[0-9:.]{0,20}(Z|[+-][0-9:]{0,6})"$/),
    ),
  ),
  run([codec, value]) {
    assert.equal(ownerFromPeerIdField("k", value), peerIdOf(value));
    // What a codec reads, it writes in Go's form, which reads back to the same text.
    const once = codec.encode(codec.parse(value));
    assert.equal(codec.encode(codec.parse(once)), once, codec.bucket);
    if (codec === dhcpOffersCodec) {
      assert.ok(dhcpOffersCodec.parse(value).Addresses.size <= MAX_DHCP_OFFERS);
    }
  },
});

fuzz({
  name: "sliced JSON and block reading agree with the one-piece readers",
  arbitrary: fc.oneof(jsonish, blockJson, oddBlockJson),
  async run(t) {
    // A slice of 0 ms pauses at every 64th step: the resumption paths are all taken.
    const sliced = await outcome(() => parseJsonSliced(t, new Slicer(0)));
    assert.deepEqual(sliced, await outcome(() => parseJson(t)));
    if (sliced.value === undefined) return;
    const json = sliced.value;
    assert.deepEqual(
      await outcome(() => decodeBlockSliced(json, DEFAULT_BLOCK_LIMITS, new Slicer(0))),
      await outcome(() => decodeBlock(json)),
    );
  },
});
