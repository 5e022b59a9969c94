import assert from "node:assert/strict";
import { md5Hex, otpCounter, totp } from "../../lib/crypto/otp.ts";

// §16.2 of the wire reference: key, digits, interval, unix time → TOTP, MD5, MD5(‖"public").
const VECTORS: [string, number, number, number, string, string, string][] = [
  [
    "key",
    43,
    9000,
    0,
    "FWxpHJEHjHtUosx+20ypNJXYCE3aqFMsjtGGk1F7rK8",
    "253e3c7ec1f043dc6bf86a129eb07dc9",
    "1cad8d74ecd4b5850ec78609dcef43d8",
  ],
  [
    "key",
    43,
    9000,
    1700000000,
    "ufTPimc2zY7vLZRDL4LxBreXb/k+vExSPCIedbJoHdw",
    "73753d9ef2b884bfb0813836e4cebdac",
    "add3b3c3ed31e0225ea7e2da3276b240",
  ],
  [
    "key",
    0,
    9000,
    1700000000,
    "ufTPim",
    "b7396dfd0ced90fd5cdba30095b4230d",
    "f975ee6e78f0676ff0a2f2a95737855f",
  ],
  [
    "room",
    43,
    360,
    1700000000,
    "W69B7rwYtMUPRLFccPjuTJLUFqKWlDDoQNCCmOWYd9I",
    "24272945ba5c1126194a231653154433",
    "37d0d2f61ed3e6b5d4cb6248d3239c28",
  ],
  [
    "testkey",
    12,
    9000,
    1700000000,
    "J8p648Vg5/af",
    "e7b800c1bb05ef4e6c5b5ac6c44265ec",
    "83a8468e9507fd9839e4a57e30c82749",
  ],
  [
    "cryptokey",
    43,
    360,
    1700000000,
    "ZHo7RIUOigJlbozq22LC/dm+WQJ5wfV5zFRcJTj08vg",
    "a89467c668bac45b14921cf589c02fb8",
    "d56066fe71f838c6601b70ca3075e282",
  ],
];

Deno.test("totp reproduces every Go vector of the wire reference", async () => {
  for (const [key, digits, interval, t, code, md5, md5Public] of VECTORS) {
    const got = await totp(key, digits, interval, t);
    assert.equal(got, code, `${key}/${digits}/${interval}/${t}`);
    assert.equal(md5Hex(got), md5);
    assert.equal(md5Hex(got + "public"), md5Public);
  }
});

Deno.test("totp counts windows as floor(unix / interval)", () => {
  assert.equal(otpCounter(1700000000, 9000), 188888);
  assert.equal(otpCounter(1700000000, 360), 4722222);
  assert.equal(otpCounter(359.999, 360), 0);
  assert.equal(otpCounter(360, 360), 1);
});

Deno.test("totp negative or zero length means 6 characters, long lengths stop at 44", async () => {
  assert.equal((await totp("k", 0, 30, 5)).length, 6);
  assert.equal((await totp("k", -3, 30, 5)).length, 6);
  const full = await totp("k", 100, 30, 5);
  assert.equal(full.length, 44);
  assert.ok(full.endsWith("="));
});

Deno.test("totp code is the same across a window and changes at its boundary", async () => {
  const a = await totp("secret", 43, 360, 720);
  assert.equal(await totp("secret", 43, 360, 1079.999), a);
  assert.notEqual(await totp("secret", 43, 360, 1080), a);
  assert.equal(await totp("secret", 43, 360, 1080), await totp("secret", 43, 360, 1439));
});

Deno.test("totp rejects a zero interval instead of dividing by zero", async () => {
  await assert.rejects(() => totp("k", 6, 0, 1), RangeError);
});

Deno.test("md5Hex matches known digests", () => {
  assert.equal(md5Hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  assert.equal(md5Hex("héllo"), "be50e8478cf24ff3595bc7307fb91b50");
});
