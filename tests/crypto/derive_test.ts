import assert from "node:assert/strict";
import type { NetworkConfig } from "../../lib/config/network.ts";
import {
  leaseFileName,
  otpWindow,
  publicTopicAt,
  rendezvousAt,
  sealKeyAt,
  topicAt,
} from "../../lib/crypto/derive.ts";
import { md5Hex } from "../../lib/crypto/otp.ts";

function config(overrides: Partial<NetworkConfig> = {}): NetworkConfig {
  return {
    otp: {
      dht: { interval: 9000, key: "testkey", length: 12 },
      crypto: { interval: 360, key: "cryptokey", length: 43 },
    },
    room: "room",
    rendezvous: "static-rendezvous",
    mdns: "mdns",
    maxMessageSize: 20971520,
    ...overrides,
  };
}

const T = 1700000000_000;

Deno.test("derivations reproduce the Go vectors at t=1700000000", async () => {
  const c = config();
  assert.equal(await rendezvousAt(c, T), "e7b800c1bb05ef4e6c5b5ac6c44265ec");
  assert.equal(await topicAt(c, T), "24272945ba5c1126194a231653154433");
  assert.equal(await publicTopicAt(c, T), "37d0d2f61ed3e6b5d4cb6248d3239c28");
  assert.equal(await sealKeyAt(c, T), "a89467c668bac45b14921cf589c02fb8");
});

Deno.test("rendezvous falls back to the static string when the DHT OTP key is empty", async () => {
  const c = config();
  c.otp.dht.key = "";
  assert.equal(await rendezvousAt(c, T), "static-rendezvous");
});

Deno.test("rendezvous length 0 means 12 characters", async () => {
  const c = config();
  c.otp.dht.length = 0;
  assert.equal(await rendezvousAt(c, T), "e7b800c1bb05ef4e6c5b5ac6c44265ec");
});

Deno.test("lease file name is MD5 of the crypto key followed by -ek", () => {
  assert.equal(leaseFileName(config()), md5Hex("cryptokey-ek"));
});

Deno.test("topic and seal key rotate together exactly at the window boundary", async () => {
  const c = config();
  const w = otpWindow(360, T);
  assert.equal(w.counter, 4722222);
  assert.ok(w.startMs <= T && T < w.endMs);
  const topic = await topicAt(c, w.startMs);
  const key = await sealKeyAt(c, w.startMs);
  assert.equal(await topicAt(c, w.endMs - 1), topic);
  assert.equal(await sealKeyAt(c, w.endMs - 1), key);
  const nextTopic = await topicAt(c, w.endMs);
  const nextKey = await sealKeyAt(c, w.endMs);
  assert.notEqual(nextTopic, topic);
  assert.notEqual(nextKey, key);
  assert.equal(otpWindow(360, w.endMs).counter, w.counter + 1);
  assert.equal(otpWindow(360, w.endMs - 1).counter, w.counter);
});

Deno.test("the DHT rendezvous rotates on its own interval, independent of the crypto one", async () => {
  const c = config();
  const w = otpWindow(9000, T);
  const r = await rendezvousAt(c, w.startMs);
  assert.equal(await rendezvousAt(c, w.endMs - 1), r);
  assert.notEqual(await rendezvousAt(c, w.endMs), r);
});
