import assert from "node:assert/strict";
import {
  checksum,
  decodeBlock,
  encodeBlock,
  GENESIS_HASH,
  genesisBlock,
  hashRecord,
  hex,
  verifyBlockHash,
} from "../../lib/ledger/block.ts";
import {
  canonicalBytes,
  decodeEntry,
  encodeEntry,
  type Entry,
  unsignedEntry,
  verifyEntry,
} from "../../lib/ledger/entry.ts";
import { parseJson } from "../../lib/ledger/json.ts";
import { defaultRegistry, isLive, parseOwnershipMode, policyOf } from "../../lib/ledger/policy.ts";
import { encodeBlockMessage } from "../../lib/ledger/wire.ts";
import { formatRfc3339Seconds, msToNs } from "../../lib/util/gotime.ts";
import { JAN1_MS, signed, specIdentity, tombstone } from "./helpers.ts";

const SPEC_PEER = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";

function block1(entry: Entry) {
  return {
    index: 1,
    timestamp: "2026-01-01 00:00:00 +0000 UTC",
    storage: new Map([["nodes", new Map([["a", entry]])]]),
    prevHash: GENESIS_HASH,
  };
}

Deno.test("genesis hash is SHA-256 of the zero block '0map[]' (§6.3)", async () => {
  assert.equal(
    await checksum({ index: 0, timestamp: "", storage: new Map(), prevHash: "" }),
    GENESIS_HASH,
  );
  assert.equal(GENESIS_HASH, "993c923422cd134b6aad0235ebfd4290a7b27b83d1bcd6b1fb2addc4b45b2fa6");
  const g = genesisBlock(msToNs(JAN1_MS));
  assert.equal(g.hash, GENESIS_HASH);
  assert.equal(g.prevHash, "");
  await verifyBlockHash(g);
});

Deno.test("unsigned block 1 hashes and encodes exactly as Go (§16.2)", async () => {
  const b = block1(unsignedEntry('"1"'));
  assert.equal(
    hashRecord(b),
    `12026-01-01 00:00:00 +0000 UTCmap[nodes:map[a:{"1"  0 0 false []}]]${GENESIS_HASH}`,
  );
  const hash = await checksum(b);
  assert.equal(hash, "994c4572618b33800fef3438cbc5aeb5957681055e13b797d56a32d34504ca3f");
  assert.equal(
    encodeBlock({ ...b, hash }),
    '{"Index":1,"Timestamp":"2026-01-01 00:00:00 +0000 UTC","Storage":{"nodes":{"a":"\\"1\\""}},' +
      '"Hash":"994c4572618b33800fef3438cbc5aeb5957681055e13b797d56a32d34504ca3f",' +
      '"PrevHash":"993c923422cd134b6aad0235ebfd4290a7b27b83d1bcd6b1fb2addc4b45b2fa6"}',
  );
});

Deno.test("signed block 1 hashes as Go (§16.2)", async () => {
  const e: Entry = {
    value: '"1"',
    owner: "peerX",
    version: 3n,
    updatedAt: 100n,
    deleted: false,
    sig: new Uint8Array([1, 2, 3]),
  };
  const b = block1(e);
  assert.match(hashRecord(b), /map\[nodes:map\[a:\{"1" peerX 3 100 false \[1 2 3\]\}\]\]/);
  assert.equal(
    await checksum(b),
    "798a1207bdfd80e651e1916d59133131d7fbf95ae6c4976612f27ded10c20e93",
  );
});

Deno.test("empty buckets print as b:map[] in the hash and {} in JSON (§17.4)", async () => {
  const b = {
    index: 2,
    timestamp: "t",
    storage: new Map([["b", new Map()], ["nodes", new Map([["a", unsignedEntry('"1"')]])]]),
    prevHash: GENESIS_HASH,
  };
  assert.equal(hashRecord(b), `2tmap[b:map[] nodes:map[a:{"1"  0 0 false []}]]${GENESIS_HASH}`);
  const withEmpty = await checksum(b);
  const without = await checksum({ ...b, storage: new Map([["nodes", b.storage.get("nodes")!]]) });
  assert.notEqual(withEmpty, without);
  const json = encodeBlock({ ...b, hash: withEmpty });
  assert.match(json, /"Storage":\{"b":\{\},"nodes":\{"a":"\\"1\\""\}\}/);
  const back = decodeBlock(parseJson(json));
  assert.equal(back.storage.get("b")?.size, 0);
  await verifyBlockHash(back);
});

Deno.test("gzip of a block carries Go's header 1f8b08000000000000ff (§16.2)", async () => {
  const bytes = await encodeBlockMessage(genesisBlock(0n));
  assert.equal(hex(bytes.subarray(0, 10)), "1f8b08000000000000ff");
});

Deno.test("canonical signing bytes match §16.2", () => {
  const bytes = canonicalBytes("machines", "10.1.0.1", {
    value: "hello",
    owner: "peerX",
    version: 1n,
    updatedAt: 100n,
    deleted: false,
    sig: null,
  });
  assert.equal(
    hex(bytes),
    "00000000000000086d616368696e6573" + "000000000000000831302e312e302e31" +
      "00000000000000057065657258" + "0000000000000001" + "0000000000000064" + "00" +
      "000000000000000568656c6c6f",
  );
});

Deno.test("canonical bytes encode a negative UpdatedAt as two's complement", () => {
  const bytes = canonicalBytes("", "", { ...unsignedEntry(""), updatedAt: -1n });
  assert.equal(hex(bytes.subarray(32, 40)), "ffffffffffffffff");
});

const MACHINE_VALUE =
  `{"PeerID":"${SPEC_PEER}","Hostname":"h","OS":"linux","Arch":"amd64","Address":"10.1.0.1","Version":"v0.35.4"}`;

Deno.test("the three signed entries from the spec seed are byte-identical to Go (§16.2)", async () => {
  const id = await specIdentity();
  assert.equal(id.peerId, SPEC_PEER);
  const machine = await signed(
    id,
    "machines",
    "10.1.0.1",
    {
      PeerID: SPEC_PEER,
      Hostname: "h",
      OS: "linux",
      Arch: "amd64",
      Address: "10.1.0.1",
      Version: "v0.35.4",
    },
    1767225600000000000n,
    1767225600_000,
  );
  assert.equal(machine.value, MACHINE_VALUE);
  assert.equal(
    encodeEntry(machine),
    `{"Value":${
      JSON.stringify(MACHINE_VALUE)
    },"Owner":"${SPEC_PEER}","Version":1767225600000000000,` +
      `"UpdatedAt":1767225600,"Deleted":false,"Sig":"I7WicYQgBVgzUmdt0uwmmuepblKlRktrJfqid9YZKDS62pxpPRCoggsy5217BqeOIrhIztgz/GkR8B9zrL30Aw=="}`,
  );
  const tomb = await tombstone(id, "machines", "10.1.0.1", 1767225601000000000n, 1767225601_000);
  assert.equal(
    encodeEntry(tomb),
    `{"Value":"","Owner":"${SPEC_PEER}","Version":1767225601000000000,"UpdatedAt":1767225601,"Deleted":true,` +
      `"Sig":"ykrfjZ2pkbIqnEXI0V3Zw0OnkQQUhMevUApQA/to0eVmdYFw1UtZQ6Y++//Ew2tHquX98RHf1mcY5Y6La5GeBw=="}`,
  );
  const beat = await signed(
    id,
    "healthcheck",
    SPEC_PEER,
    formatRfc3339Seconds(JAN1_MS),
    1767225600000000000n,
    JAN1_MS,
  );
  assert.equal(
    encodeEntry(beat),
    `{"Value":"\\"2026-01-01T00:00:00Z\\"","Owner":"${SPEC_PEER}","Version":1767225600000000000,` +
      `"UpdatedAt":1767225600,"Deleted":false,"Sig":"W5QuMG7/us7a7ZPBlcttaUBgJQZlX3vPfTzPMjuvJpfW1fcmpmUAe7i9D9o0CZ4VSZ4iAMi4ZdHhHcKIsRRHCg=="}`,
  );
  for (
    const [bucket, key, e] of [["machines", "10.1.0.1", machine], ["machines", "10.1.0.1", tomb], [
      "healthcheck",
      SPEC_PEER,
      beat,
    ]] as const
  ) {
    const back = decodeEntry(parseJson(encodeEntry(e)));
    assert.equal(encodeEntry(back), encodeEntry(e));
    assert.equal(await verifyEntry(bucket, key, back), true);
  }
});

Deno.test("a spec entry presented under another key, value or owner does not verify", async () => {
  const id = await specIdentity();
  const e = await signed(id, "machines", "10.1.0.1", "hello", 1n);
  assert.equal(await verifyEntry("machines", "10.1.0.1", e), true);
  assert.equal(await verifyEntry("machines", "10.1.0.2", e), false);
  assert.equal(await verifyEntry("machines", "10.1.0.1", { ...e, value: '"tampered"' }), false);
  assert.equal(
    await verifyEntry("machines", "10.1.0.1", {
      ...e,
      owner: "12D3KooWMrvbf8SX1B6nj64mA2yJYiR1HBRcvX54KxocQ75g7knK",
    }),
    false,
  );
});

Deno.test("an unsigned SignedData is the legacy JSON string and decodes back (§16.1)", () => {
  const e = unsignedEntry('{"PeerID":"x"}');
  const json = encodeEntry(e);
  assert.equal(json, '"{\\"PeerID\\":\\"x\\"}"');
  const back = decodeEntry(parseJson(json));
  assert.equal(back.value, '{"PeerID":"x"}');
  assert.equal(back.owner, "");
  assert.equal(back.version, 0n);
});

Deno.test("a signed SignedData round-trips as the exact Go object (§16.1)", () => {
  const e: Entry = {
    value: '"v"',
    owner: "peerX",
    version: 3n,
    updatedAt: 100n,
    deleted: false,
    sig: new Uint8Array([1, 2, 3]),
  };
  const json = encodeEntry(e);
  assert.equal(
    json,
    '{"Value":"\\"v\\"","Owner":"peerX","Version":3,"UpdatedAt":100,"Deleted":false,"Sig":"AQID"}',
  );
  const back = decodeEntry(parseJson(json));
  assert.deepEqual(back, e);
});

Deno.test("ParseOwnershipMode accepts Go's spellings (§16.1)", () => {
  const table: Array<[string, string]> = [
    ["", "off"],
    ["off", "off"],
    ["OFF", "off"],
    ["  off  ", "off"],
    ["observe", "observe"],
    ["log", "observe"],
    ["log-only", "observe"],
    ["Observe", "observe"],
    ["enforce", "enforce"],
    ["on", "enforce"],
    ["ENFORCE", "enforce"],
  ];
  for (const [text, mode] of table) {
    assert.equal(parseOwnershipMode(text), mode, JSON.stringify(text));
  }
});

Deno.test("ParseOwnershipMode rejects anything else, naming the accepted values (§16.1)", () => {
  for (const text of ["enabled", "true", "yes", "1", "enforcing", "observer", "no", "disable"]) {
    assert.throws(() => parseOwnershipMode(text), (e: Error & { code?: string }) => {
      assert.equal(e.code, "OWNERSHIP_MODE_INVALID");
      for (const word of [text, "off", "observe", "enforce"]) assert.ok(e.message.includes(word));
      return true;
    });
  }
});

Deno.test("policy OwnerOf follows the Go registry (§16.1, §6.10)", () => {
  const r = defaultRegistry(60_000);
  assert.equal(
    policyOf(r, "machines").ownerOf!("10.1.0.1", '{"PeerID":"peerX","Address":"10.1.0.1"}'),
    "peerX",
  );
  assert.equal(policyOf(r, "users").ownerOf!("peerY", ""), "peerY");
  assert.equal(policyOf(r, "some-unregistered-bucket").owned, false);
  assert.equal(policyOf(r, "dns").owned, true);
  assert.equal(policyOf(r, "dns").ownerOf, undefined);
  assert.equal(policyOf(r, "healthcheck").expiry, "absolute");
  assert.equal(policyOf(r, "healthcheck").ttlMs, 60_000);
  for (const open of ["dhcp", "trustzone", "trustzoneAuth"]) {
    assert.equal(policyOf(r, open).owned, false);
  }
  for (const b of ["machines", "services", "files", "users", "dns", "egress"]) {
    assert.equal(policyOf(r, b).expiry, "liveness", b);
  }
});

Deno.test("machines OwnerOf reads PeerID leniently like Go's json.Unmarshal", () => {
  const ownerOf = policyOf(defaultRegistry(1), "machines").ownerOf!;
  assert.equal(ownerOf("", '{"peerid":"lower"}'), "lower");
  assert.equal(ownerOf("", '{"PeerID":5}'), "");
  assert.equal(ownerOf("", '{"PeerID":"a","PeerID":5}'), "a");
  assert.equal(ownerOf("", '"string"'), "");
  assert.equal(ownerOf("", "{broken"), "");
});

Deno.test("IsLive: heartbeat 10 s ago is live, 10 min ago is not, absent is not (§16.1)", () => {
  const now = msToNs(JAN1_MS);
  const health = new Map([
    ["peerA", JSON.stringify(formatRfc3339Seconds(JAN1_MS - 10_000))],
    ["peerB", JSON.stringify(formatRfc3339Seconds(JAN1_MS - 600_000))],
  ]);
  const minute = msToNs(60_000);
  assert.equal(isLive(health, "peerA", minute, now), true);
  assert.equal(isLive(health, "peerB", minute, now), false);
  assert.equal(isLive(health, "unknown", minute, now), false);
});
