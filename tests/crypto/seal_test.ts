import assert from "node:assert/strict";
import { fromHex, openSealed, seal, toHex } from "../../lib/crypto/seal.ts";
import { InputError } from "../../lib/util/errors.ts";

const KEY = "a89467c668bac45b14921cf589c02fb8";
const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("seal of foo is 62 hex characters and two seals differ (Go aes_test)", async () => {
  const a = await seal(KEY, enc.encode("foo"));
  const b = await seal(KEY, enc.encode("foo"));
  assert.equal(a.length, 62);
  assert.match(a, /^[0-9a-f]+$/);
  assert.notEqual(a, b);
  assert.equal(dec.decode(await openSealed(KEY, a)), "foo");
  assert.equal(dec.decode(await openSealed(KEY, b)), "foo");
});

Deno.test("opens the Go vector sealed with a fixed nonce", async () => {
  const vector = "000102030405060708090a0b31a489490b34823034c2f3fd8c76808bdc942d";
  assert.equal(dec.decode(await openSealed(KEY, vector)), "foo");
  const nonce = fromHex("000102030405060708090a0b");
  assert.equal(await seal(KEY, enc.encode("foo"), nonce), vector);
});

Deno.test("random plaintexts round-trip, sealed under random keys", async () => {
  for (let i = 0; i < 200; i++) {
    const key = toHex(crypto.getRandomValues(new Uint8Array(16)));
    const pt = crypto.getRandomValues(new Uint8Array(Math.floor(Math.random() * 3000)));
    const sealed = await seal(key, pt);
    assert.equal(sealed.length, 2 * (12 + pt.length + 16));
    assert.deepEqual(await openSealed(key, sealed), pt);
  }
});

Deno.test("short keys are zero-padded and long keys cut to 32 bytes, as Go copies them", async () => {
  const sealed = await seal("abc", enc.encode("x"));
  assert.equal(dec.decode(await openSealed("abc\0\0", sealed)), "x");
  const long = KEY + "tail";
  assert.equal(dec.decode(await openSealed(KEY, await seal(long, enc.encode("y")))), "y");
});

Deno.test("opening rejects tampered, truncated, odd-length, non-hex and wrong-key input", async () => {
  const good = await seal(KEY, enc.encode("payload"));
  const flip = (s: string, i: number) =>
    s.slice(0, i) + (s[i] === "0" ? "1" : "0") + s.slice(i + 1);
  const bad = [
    flip(good, 30), // ciphertext
    flip(good, 2), // nonce
    flip(good, good.length - 1), // tag
    good.slice(0, good.length - 2), // truncated tag
    good.slice(0, 20), // shorter than nonce + tag
    good.slice(1), // odd length
    good.slice(0, -2) + "zz", // not hex
    "",
  ];
  for (const b of bad) {
    await assert.rejects(() => openSealed(KEY, b), (e) => {
      assert.ok(e instanceof InputError);
      assert.equal(e.code, "SEAL_INVALID");
      return true;
    });
  }
  await assert.rejects(() => openSealed("another-key", good), InputError);
});

Deno.test("hex helpers accept upper case on input and emit lower case", () => {
  assert.deepEqual(fromHex("00FFaB"), new Uint8Array([0, 255, 171]));
  assert.equal(toHex(new Uint8Array([0, 255, 171])), "00ffab");
});
