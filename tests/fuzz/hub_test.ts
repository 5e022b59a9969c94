/** Fuzzing of the gossip layer's parsers of peer bytes: the hub envelope and the sealed payload. */
import assert from "node:assert/strict";
import { fromHex, hexBytesToBytes, openSealed, seal, toHex } from "../../lib/crypto/seal.ts";
import {
  decodeEnvelope,
  decodeEnvelopeHex,
  encodeEnvelope,
  encodeSealedEnvelope,
} from "../../lib/hub/envelope.ts";
import { fc, fuzz, mutated } from "./harness.ts";

const text = new TextEncoder();

/** Objects shaped like envelopes: Go's case-insensitive names, any value types. */
const envelopeJson = fc.dictionary(
  fc.oneof(
    fc.constantFrom("Message", "message", "MESSAGE", "SenderID", "senderid", "Annotations"),
    fc.string({ maxLength: 12 }),
  ),
  fc.oneof(fc.string(), fc.constant(null), fc.jsonValue()),
  { maxKeys: 5 },
).map((o) => text.encode(JSON.stringify(o)));

fuzz({
  name: "hub envelope",
  arbitrary: fc.oneof(
    envelopeJson,
    mutated(envelopeJson),
    fc.record({
      message: fc.string(),
      senderId: fc.string(),
      annotations: fc.option(fc.dictionary(fc.string(), fc.jsonValue())),
    }).map((e) => encodeEnvelope(e)),
    fc.uint8Array({ maxLength: 200 }),
    fc.integer({ min: 1, max: 20_000 }).map((n) => text.encode("[".repeat(n))),
  ),
  run(bytes) {
    const e = decodeEnvelope(bytes);
    // What decodes re-encodes to an envelope that decodes the same.
    assert.deepEqual(decodeEnvelope(encodeEnvelope(e)), e);
  },
});

/** Envelopes in the layout the fast path reads, and edits of it. */
const sealedEnvelope = fc.tuple(
  fc.uint8Array({ maxLength: 64 }),
  fc.string({ maxLength: 8 }),
  fc.option(fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue(), { maxKeys: 3 })),
).map(([sealed, sender, annotations]) => encodeSealedEnvelope(sealed, sender, annotations));

fuzz({
  name: "hub envelope, sealed-message fast path (same result as the general decoder)",
  arbitrary: fc.oneof(
    sealedEnvelope,
    mutated(sealedEnvelope),
    envelopeJson,
    fc.constantFrom(
      text.encode('{"Message":"ab",}'),
      text.encode('{"Message":"ab","message":"cd"}'),
      text.encode('{"Message":"ab"}  '),
      text.encode('{"Message":"ab"} x'),
      text.encode('{"Message":"a\\u0062"}'),
    ),
  ),
  run(bytes) {
    let general;
    try {
      general = decodeEnvelope(bytes);
    } catch (e) {
      assert.throws(
        () => decodeEnvelopeHex(bytes),
        (f) => (f as Error).message === (e as Error).message,
      );
      throw e;
    }
    const fast = decodeEnvelopeHex(bytes);
    assert.deepEqual(
      { ...fast, messageHex: new TextDecoder().decode(fast.messageHex) },
      { messageHex: general.message, senderId: general.senderId, annotations: general.annotations },
    );
  },
});

fuzz({
  name: "hex of sealed messages (bytes and text decoders agree)",
  arbitrary: fc.oneof(
    fc.uint8Array({ maxLength: 64 }).map((b) => text.encode(toHex(b))),
    mutated(fc.uint8Array({ maxLength: 64 }).map((b) => text.encode(toHex(b)))),
    fc.uint8Array({ maxLength: 64 }),
  ),
  run(chars) {
    const bytes = hexBytesToBytes(chars);
    assert.deepEqual(fromHex(new TextDecoder().decode(chars)), bytes);
    assert.equal(toHex(bytes), new TextDecoder().decode(chars).toLowerCase());
  },
});

const KEY = "a89467c668bac45b14921cf589c02fb8";
const sealedSamples = await Promise.all(
  [0, 1, 16, 300].map((n) => seal(KEY, new Uint8Array(n).fill(7))),
);

fuzz({
  name: "sealed payload (hex AES-GCM)",
  arbitrary: fc.oneof(
    fc.constantFrom(...sealedSamples),
    mutated(fc.constantFrom(...sealedSamples).map((s) => text.encode(s))).map((b) =>
      new TextDecoder().decode(b)
    ),
    fc.stringMatching(/^[0-9a-fA-F]{0,120}$/),
    fc.string({ unit: "binary", maxLength: 120 }),
  ),
  async run(sealed) {
    await openSealed(KEY, sealed);
  },
});
