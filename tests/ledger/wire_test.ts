import assert from "node:assert/strict";
import { decodeBlock, GENESIS_HASH, genesisBlock, storageHash } from "../../lib/ledger/block.ts";
import { unsignedEntry } from "../../lib/ledger/entry.ts";
import { goFieldName, parseJson } from "../../lib/ledger/json.ts";
import { mergeStorage } from "../../lib/ledger/merge.ts";
import { defaultRegistry } from "../../lib/ledger/policy.ts";
import {
  decodeMessage,
  DIGEST_MARKER,
  DIGEST_MARKER_V1,
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
  assert.equal(text, JSON.stringify({ [DIGEST_MARKER_V1]: [12345, H, digest.contentHash] }));
  // With the block's header (what our nodes send): a node holding the same entries rebuilds it.
  const withHeader = {
    ...digest,
    header: { timestamp: "2026-01-01 00:00:00 +0000 UTC", prevHash: H },
  };
  const full = await encodeDigest(withHeader);
  assert.ok(full.length < 250, `digest is ${full.length} bytes`);
  assert.deepEqual(await decodeMessage(full), { kind: "digest", digest: withHeader });
  assert.equal(
    new TextDecoder().decode(await gunzip(full, 1 << 20)),
    JSON.stringify({
      [DIGEST_MARKER]: [12345, H, digest.contentHash, withHeader.header.timestamp, H],
    }),
  );
  // A header member of the wrong type, a bad previous hash or a /2 digest of three members
  // is malformed.
  for (
    const body of [
      { [DIGEST_MARKER]: [1, H, H, 7, H] },
      { [DIGEST_MARKER]: [1, H, H, "t", "x"] },
      { [DIGEST_MARKER]: [1, H, H] },
      { [DIGEST_MARKER_V1]: [1, H, H, "t", H] },
      { [DIGEST_MARKER]: [1, H, H, "t".repeat(257), H] },
    ]
  ) {
    await assert.rejects(
      decodeMessage(await gzip(new TextEncoder().encode(JSON.stringify(body)))),
      /Malformed ledger digest/,
      JSON.stringify(body).slice(0, 80),
    );
  }
});

Deno.test("Go decodes a digest, without error, to its zero Block", async () => {
  const header = { timestamp: "2026-01-01 00:00:00 +0000 UTC", prevHash: H };
  const bytes = await encodeDigest({ index: 9, hash: H, contentHash: H, header });
  const text = new TextDecoder().decode(await gunzip(bytes, 1 << 20));
  // decodeBlock mirrors encoding/json into blockchain.Block (case-insensitive names, unknown
  // members skipped): no member lands in a field, so Go's Update sees Block{} and no error.
  for (const marker of [DIGEST_MARKER, DIGEST_MARKER_V1]) {
    assert.equal(
      goFieldName(marker, ["Index", "Timestamp", "Storage", "Hash", "PrevHash"]),
      undefined,
    );
  }
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
