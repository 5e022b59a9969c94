/** Fuzzing of NAT traversal and trust-zone parsers of peer bytes: relay messages, ECDSA texts. */
import assert from "node:assert/strict";
import { HopCodec, type HopMessage, StopCodec, type StopMessage } from "../../lib/node/relay_pb.ts";
import { verifyEcdsa } from "../../lib/trustzone/ecdsa.ts";
import { fc, fuzz, mutated } from "./harness.ts";

const bytes = (max: number) => fc.uint8Array({ maxLength: max });
const peer = fc.record({ id: bytes(40), addrs: fc.array(bytes(30), { maxLength: 4 }) });
const limit = fc.record({
  duration: fc.option(fc.nat(), { nil: undefined }),
  data: fc.option(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { nil: undefined }),
});
const hop: fc.Arbitrary<HopMessage> = fc.record({
  type: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
  peer: fc.option(peer, { nil: undefined }),
  reservation: fc.option(
    fc.record({
      expire: fc.option(fc.bigInt({ min: 0n, max: 1n << 40n }), { nil: undefined }),
      addrs: fc.array(bytes(30), { maxLength: 4 }),
      voucher: fc.option(bytes(60), { nil: undefined }),
    }),
    { nil: undefined },
  ),
  limit: fc.option(limit, { nil: undefined }),
  status: fc.option(fc.constantFrom(100, 200, 202, 204, 400), { nil: undefined }),
});
const stop: fc.Arbitrary<StopMessage> = fc.record({
  type: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
  peer: fc.option(peer, { nil: undefined }),
  limit: fc.option(limit, { nil: undefined }),
  status: fc.option(fc.constantFrom(100, 202, 203), { nil: undefined }),
});

fuzz({
  name: "circuit relay hop messages",
  arbitrary: fc.oneof(hop.map(HopCodec.encode), mutated(hop.map(HopCodec.encode)), bytes(300)),
  run(input) {
    const m = HopCodec.decode(input);
    // What decodes re-encodes to something that decodes the same.
    assert.deepEqual(HopCodec.decode(HopCodec.encode(m)), m);
  },
});

fuzz({
  name: "circuit relay stop messages",
  arbitrary: fc.oneof(stop.map(StopCodec.encode), mutated(stop.map(StopCodec.encode)), bytes(300)),
  run(input) {
    const m = StopCodec.decode(input);
    assert.deepEqual(StopCodec.decode(StopCodec.encode(m)), m);
  },
});

const base64url = fc.string({ maxLength: 600 }).map((s) =>
  btoa(unescape(encodeURIComponent(s))).replaceAll("+", "-").replaceAll("/", "_")
);
const pem = (type: string) =>
  fc.uint8Array({ maxLength: 200 }).map((b) =>
    btoa(
      `-----BEGIN ${type}-----\n${btoa(String.fromCharCode(...b))}\n-----END ${type}-----\n`,
    ).replaceAll("+", "-").replaceAll("/", "_")
  );

fuzz({
  name: "trust-zone ECDSA keys and signatures from the ledger and the public room",
  arbitrary: fc.tuple(
    fc.oneof(pem("EC PUBLIC KEY"), base64url, fc.string({ maxLength: 100 })),
    fc.oneof(pem("SIGNATURE"), base64url, fc.string({ maxLength: 100 })),
  ),
  async run([key, sig]) {
    assert.equal(await verifyEcdsa(key, sig, new TextEncoder().encode("challenge")), false);
  },
});
