import assert from "node:assert/strict";
import { YAMUX, yamuxFrame } from "../../lib/node/muxer.ts";

Deno.test("yamux frames: version 0, type, flags, stream ID and length big-endian, then the body", () => {
  assert.deepEqual(
    yamuxFrame(YAMUX.WINDOW_UPDATE, YAMUX.RST, 3),
    Uint8Array.of(0, 1, 0, 8, 0, 0, 0, 3, 0, 0, 0, 0),
  );
  assert.deepEqual(
    yamuxFrame(YAMUX.DATA, YAMUX.ACK | YAMUX.FIN, 0x01020304, Uint8Array.of(9, 9)),
    Uint8Array.of(0, 0, 0, 6, 1, 2, 3, 4, 0, 0, 0, 2, 9, 9),
  );
});
