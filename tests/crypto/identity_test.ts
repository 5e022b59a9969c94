import assert from "node:assert/strict";
import {
  generateIdentity,
  identityFromProtobuf,
  identityFromSeed,
  isEd25519PeerId,
  publicKeyFromPeerId,
  verifyPeerSignature,
} from "../../lib/crypto/identity.ts";
import { fromHex, toHex } from "../../lib/crypto/seal.ts";
import { InputError } from "../../lib/util/errors.ts";

const SEED = "7e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d";

Deno.test("the libp2p spec seed gives the reference public key and peer ID", async () => {
  const id = await identityFromSeed(fromHex(SEED));
  assert.equal(id.peerId, "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq");
  assert.equal(
    "08011220" + toHex(id.publicKey),
    "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e",
  );
  assert.deepEqual(publicKeyFromPeerId(id.peerId), id.publicKey);
});

Deno.test("the private key protobuf round-trips and keeps the peer ID", async () => {
  const id = await generateIdentity();
  assert.equal(id.privateKeyProtobuf.length, 68);
  const again = await identityFromProtobuf(id.privateKeyProtobuf);
  assert.equal(again.peerId, id.peerId);
});

Deno.test("a corrupt key file is refused", async () => {
  const id = await generateIdentity();
  const bad = id.privateKeyProtobuf.slice();
  bad[60] ^= 1;
  await assert.rejects(() => identityFromProtobuf(bad), /does not match/);
  await assert.rejects(() => identityFromProtobuf(bad.slice(0, 10)), /68-byte/);
  const rsa = id.privateKeyProtobuf.slice();
  rsa[1] = 0;
  await assert.rejects(() => identityFromProtobuf(rsa), /Ed25519/);
});

Deno.test("signatures verify against the signer's peer ID only", async () => {
  const a = await generateIdentity();
  const b = await generateIdentity();
  const data = new TextEncoder().encode("entry");
  const sig = await a.sign(data);
  assert.equal(await verifyPeerSignature(a.peerId, data, sig), true);
  assert.equal(await verifyPeerSignature(b.peerId, data, sig), false);
  assert.equal(await verifyPeerSignature(a.peerId, new Uint8Array([1]), sig), false);
  assert.equal(await verifyPeerSignature(a.peerId, data, sig.slice(1)), false);
  assert.equal(await verifyPeerSignature("not-a-peer", data, sig), false);
  assert.equal(isEd25519PeerId(a.peerId), true);
  assert.equal(isEd25519PeerId("QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"), false);
});

Deno.test("a peer ID far longer than any real one is refused before base58 decoding", async () => {
  // Found by fuzzing: base58 decoding is quadratic, 5 000 characters took 50 ms.
  const isLength = (e: unknown) =>
    e instanceof InputError && e.code === "PEER_ID_INVALID" &&
    /at most 128 characters/.test(e.message);
  assert.throws(() => publicKeyFromPeerId("z".repeat(100_000)), isLength);
  assert.equal(isEd25519PeerId("z".repeat(100_000)), false);
  const id = await generateIdentity();
  assert.deepEqual(publicKeyFromPeerId(id.peerId), id.publicKey);
});
