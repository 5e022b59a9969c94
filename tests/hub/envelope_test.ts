import assert from "node:assert/strict";
import { decodeEnvelope, encodeEnvelope } from "../../lib/hub/envelope.ts";
import { InputError } from "../../lib/util/errors.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("envelope encodes as Go's json.Marshal of hub.Message", () => {
  const bytes = encodeEnvelope({ message: "00ff", senderId: "", annotations: null });
  assert.equal(dec.decode(bytes), '{"Message":"00ff","SenderID":"","Annotations":null}');
  const withSigs = encodeEnvelope({ message: "ab", senderId: "", annotations: { sigs: "x" } });
  assert.equal(dec.decode(withSigs), '{"Message":"ab","SenderID":"","Annotations":{"sigs":"x"}}');
});

Deno.test("envelope field names match case-insensitively, the last one wins, unknown ignored", () => {
  const e = decodeEnvelope(
    enc.encode('{"message":"a","MESSAGE":"b","senderid":"p","extra":1,"annotations":{"k":2}}'),
  );
  assert.deepEqual(e, { message: "b", senderId: "p", annotations: { k: 2 } });
  assert.deepEqual(decodeEnvelope(enc.encode("{}")), {
    message: "",
    senderId: "",
    annotations: null,
  });
  assert.equal(decodeEnvelope(enc.encode('{"Message":null}')).message, "");
});

Deno.test("envelope rejects non-JSON, non-objects and wrong field types", () => {
  for (
    const text of [
      "",
      "not json",
      '{"Message":"ab"',
      "[]",
      "null",
      '"str"',
      "42",
      '{"Message":42}',
      '{"SenderID":[]}',
      '{"Annotations":"x"}',
      '{"Annotations":[1]}',
    ]
  ) {
    assert.throws(
      () => decodeEnvelope(enc.encode(text)),
      (e) => e instanceof InputError && e.code === "ENVELOPE_INVALID",
      text,
    );
  }
  assert.throws(() => decodeEnvelope(Uint8Array.from([0xff, 0x00, 0x7b])), InputError);
});
