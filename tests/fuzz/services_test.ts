/** Fuzzing of the headers of our service and file protocols, read at random chunk boundaries. */
import assert from "node:assert/strict";
import {
  encodeFileAnswer,
  encodeFileRequest,
  FILE_ANSWER_BYTES,
  MAX_FILE_NAME_BYTES,
  parseFileAnswer,
  parseFileRequest,
} from "../../lib/files/protocol.ts";
import { readHeader } from "../../lib/services/header.ts";
import {
  encodeServiceRequest,
  MAX_SERVICE_NAME_BYTES,
  parseServiceRequest,
  parseServiceStatus,
} from "../../lib/services/protocol.ts";
import { chunked, concat, fc, fuzz, mutated } from "./harness.ts";

const name = fc.string({ minLength: 1, maxLength: 80, unit: "grapheme" }).filter((s) => {
  const n = new TextEncoder().encode(s).length;
  return n > 0 && n <= 255;
});

/** Reads a header from `chunks` as a stream would deliver them. */
async function fromChunks<T extends { length: number }>(
  chunks: Uint8Array[],
  parse: (b: Uint8Array) => T | undefined,
  max: number,
): Promise<{ value: T; rest: Uint8Array }> {
  let i = 0;
  const reader: AsyncIterator<Uint8Array> = {
    next: () =>
      Promise.resolve(
        i < chunks.length ? { done: false, value: chunks[i++] } : { done: true, value: undefined },
      ),
  };
  return await readHeader({ reset: () => {} }, reader, parse, 1_000, max);
}

/** Valid bytes of a header, followed by payload, or nothing valid at all. */
function headerBytes(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array[]> {
  return chunked(
    fc.oneof(
      fc.tuple(mutated(valid), fc.uint8Array({ maxLength: 64 })).map(([h, rest]) =>
        concat([h, rest])
      ),
      fc.uint8Array({ maxLength: 300 }),
    ),
  );
}

fuzz({
  name: "service request header (our /edgevpn/service/1.0.0)",
  arbitrary: headerBytes(name.map(encodeServiceRequest)),
  run: async (chunks) => {
    const all = concat(chunks);
    const { value, rest } = await fromChunks(
      chunks,
      parseServiceRequest,
      2 + MAX_SERVICE_NAME_BYTES,
    );
    assert.deepEqual(encodeServiceRequest(value.name), all.subarray(0, value.length));
    // The bytes after the header read so far (later chunks are the service's to read).
    assert.deepEqual(rest, all.subarray(value.length, value.length + rest.length));
  },
});

fuzz({
  name: "file request header (our /edgevpn/file/1.0.0)",
  arbitrary: headerBytes(
    fc.tuple(name, fc.maxSafeNat()).map(([n, offset]) => encodeFileRequest({ name: n, offset })),
  ),
  run: async (chunks) => {
    const all = concat(chunks);
    const { value } = await fromChunks(chunks, parseFileRequest, 2 + MAX_FILE_NAME_BYTES + 8);
    assert.deepEqual(
      encodeFileRequest({ name: value.name, offset: value.offset }),
      all.subarray(0, value.length),
    );
  },
});

fuzz({
  name: "file answer header (size and SHA-256)",
  arbitrary: headerBytes(
    fc.oneof(
      fc.tuple(fc.maxSafeNat(), fc.uint8Array({ minLength: 32, maxLength: 32 })).map((
        [size, sha256],
      ) => encodeFileAnswer({ status: 0, size, sha256 })),
      fc.constantFrom(1, 2, 3).map((status) => Uint8Array.of(status)),
    ),
  ),
  run: async (chunks) => {
    const { value } = await fromChunks(chunks, parseFileAnswer, FILE_ANSWER_BYTES);
    assert.ok(value.length === 1 || value.length === FILE_ANSWER_BYTES);
    if (value.answer.status === 0) assert.ok(Number.isSafeInteger(value.answer.size));
  },
});

fuzz({
  name: "service answer status byte",
  arbitrary: fc.integer({ min: 0, max: 255 }),
  run: (byte) => parseServiceStatus(byte),
});
