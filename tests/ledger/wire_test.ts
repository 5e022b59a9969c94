import assert from "node:assert/strict";
import { decodeBlock, GENESIS_HASH, genesisBlock, storageHash } from "../../lib/ledger/block.ts";
import { unsignedEntry } from "../../lib/ledger/entry.ts";
import { goFieldName, parseJson } from "../../lib/ledger/json.ts";
import { mergeStorage } from "../../lib/ledger/merge.ts";
import { defaultRegistry } from "../../lib/ledger/policy.ts";
import {
  decodeMessage,
  DIGEST_MARKER,
  encodeBlockMessage,
  encodeDigest,
  gunzip,
  gzip,
} from "../../lib/ledger/wire.ts";

const H = "ab".repeat(32);

Deno.test("digests round-trip and stay small", async () => {
  const digest = { index: 12345, hash: H, contentHash: await storageHash(new Map()) };
  const bytes = await encodeDigest(digest);
  assert.ok(bytes.length < 200, `digest is ${bytes.length} bytes`);
  assert.deepEqual(await decodeMessage(bytes), { kind: "digest", digest });
  const text = new TextDecoder().decode(await gunzip(bytes, 1 << 20));
  assert.equal(text, JSON.stringify({ [DIGEST_MARKER]: [12345, H, digest.contentHash] }));
});

Deno.test("Go decodes a digest, without error, to its zero Block", async () => {
  const bytes = await encodeDigest({ index: 9, hash: H, contentHash: H });
  const text = new TextDecoder().decode(await gunzip(bytes, 1 << 20));
  // decodeBlock mirrors encoding/json into blockchain.Block (case-insensitive names, unknown
  // members skipped): no member lands in a field, so Go's Update sees Block{} and no error.
  assert.equal(
    goFieldName(DIGEST_MARKER, ["Index", "Timestamp", "Storage", "Hash", "PrevHash"]),
    undefined,
  );
  const asGo = decodeBlock(parseJson(text));
  assert.deepEqual(asGo, { index: 0, timestamp: "", storage: new Map(), hash: "", prevHash: "" });
});

Deno.test("Go's zero Block is never adopted in off mode and merges nothing in signed modes", () => {
  // Go off mode: adopt iff in.Index > last.Index || (in.Index == last.Index && in.Hash > last.Hash).
  const goAdopts = (inIndex: number, inHash: string, lastIndex: number, lastHash: string) =>
    inIndex > lastIndex || (inIndex === lastIndex && inHash > lastHash);
  assert.equal(goAdopts(0, "", 0, GENESIS_HASH), false, "against a genesis block");
  assert.equal(goAdopts(0, "", 0, ""), false, "against Go's own zero block");
  for (const lastIndex of [1, 2, 1000]) assert.equal(goAdopts(0, "", lastIndex, H), false);
  const current = new Map([["b", new Map([["k", unsignedEntry('"v"')]])]]);
  const merged = mergeStorage(current, new Map(), {
    mode: "enforce",
    registry: defaultRegistry(60_000),
    ttlNs: 1n,
    tombstoneTtlNs: 1n,
    nowNs: 0n,
    signatureValid: () => false,
  });
  assert.equal(merged.changed, false);
});

Deno.test("full blocks are gzip(JSON(block)) as Go sends them", async () => {
  const g = genesisBlock(0n);
  const bytes = await encodeBlockMessage(g);
  const msg = await decodeMessage(bytes);
  assert.equal(msg.kind, "block");
  assert.equal(msg.kind === "block" && msg.block.hash, GENESIS_HASH);
});

Deno.test("gunzip enforces the output limit while inflating", async () => {
  const zeros = await gzip(new Uint8Array(8 << 20));
  await assert.rejects(() => gunzip(zeros, 1 << 20), { code: "INFLATED_TOO_LARGE" });
  assert.equal((await gunzip(zeros, 8 << 20)).length, 8 << 20);
  await assert.rejects(() => gunzip(new Uint8Array([1, 2, 3]), 100), { code: "GZIP_INVALID" });
});
