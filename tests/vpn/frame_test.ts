/** Tests of the fast-protocol framing: encoding, splitting at any chunk boundary, bad frames. */
import assert from "node:assert/strict";
import { encodeFrame, FrameDecoder, FrameError, ipLengthAt } from "../../lib/vpn/frame.ts";
import { VIRTIO_NET_HDR_LENGTH } from "../../lib/vpn/gso.ts";
import { udp4, withVnetHeader } from "./helpers.ts";

function fastStream(packets: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(packets.reduce((n, p) => n + 2 + p.length, 0));
  let at = 0;
  for (const p of packets) at = encodeFrame(out, at, p.length, 0, p, 0, p.length);
  assert.equal(at, out.length);
  return out;
}

function decodeChunks(chunks: Uint8Array[], header: 0 | 10 = 0): Uint8Array[] {
  const decoder = new FrameDecoder(header);
  const frames: Uint8Array[] = [];
  for (const c of chunks) decoder.push(c, (f) => frames.push(f.slice()));
  assert.equal(decoder.pendingBytes, 0);
  return frames;
}

const PACKETS = [
  udp4("10.1.0.1", "10.1.0.2", 0),
  udp4("10.1.0.1", "10.1.0.2", 100, 2),
  udp4("10.1.0.3", "10.1.0.2", 1372, 3),
];

Deno.test("fast frames decode to the same packets whatever the chunk boundaries", () => {
  const stream = fastStream(PACKETS);
  for (let cut = 0; cut <= stream.length; cut++) {
    const frames = decodeChunks([stream.subarray(0, cut), stream.subarray(cut)]);
    assert.deepEqual(frames, PACKETS, `cut at ${cut}`);
  }
  for (let a = 1; a < 60; a++) {
    const b = a + 97;
    const frames = decodeChunks([stream.subarray(0, a), stream.subarray(a, b), stream.subarray(b)]);
    assert.deepEqual(frames, PACKETS, `cuts at ${a} and ${b}`);
  }
  const bytewise = decodeChunks(Array.from(stream, (_, i) => stream.subarray(i, i + 1)));
  assert.deepEqual(bytewise, PACKETS);
});

Deno.test("fast-gso frames carry the virtio header and are split back with it", () => {
  const frames = PACKETS.map(withVnetHeader);
  frames[1][0] = 1; // NEEDS_CSUM: the header travels untouched
  const stream = new Uint8Array(frames.reduce((n, f) => n + 2 + f.length, 0));
  let at = 0;
  for (const f of frames) at = encodeFrame(stream, at, f.length - 10, 0, f, 0, f.length);
  for (let cut = 0; cut <= stream.length; cut += 7) {
    const got = decodeChunks(
      [stream.subarray(0, cut), stream.subarray(cut)],
      VIRTIO_NET_HDR_LENGTH,
    );
    assert.deepEqual(got, frames, `cut at ${cut}`);
  }
});

Deno.test("encodeFrame pads a zero virtio header in front of a plain packet", () => {
  const p = PACKETS[1];
  const out = new Uint8Array(2 + 10 + p.length);
  encodeFrame(out, 0, p.length, 10, p, 0, p.length);
  const [frame] = decodeChunks([out], VIRTIO_NET_HDR_LENGTH);
  assert.deepEqual(frame.subarray(0, 10), new Uint8Array(10));
  assert.deepEqual(frame.subarray(10), p);
});

Deno.test("impossible frames are refused with VPN_FRAME_INVALID", () => {
  const good = PACKETS[1];
  const cases: [string, Uint8Array][] = [
    ["length 0", new Uint8Array([0, 0, 1, 2, 3])],
    ["length 19", Uint8Array.of(0, 19, ...new Uint8Array(19).fill(0x45))],
    ["not IP", Uint8Array.of(0, 20, 0x15, ...new Uint8Array(19))],
    [
      "shorter than the IP header says",
      (() => {
        const bad = fastStream([good]);
        bad[1] -= 4; // frame says 4 bytes fewer than the IPv4 total length
        return bad;
      })(),
    ],
    [
      "longer than the IP header says",
      (() => {
        const p = new Uint8Array(good.length + 4);
        p.set(good);
        return fastStream([p]);
      })(),
    ],
  ];
  for (const [what, bytes] of cases) {
    for (const split of [bytes.length, 1, 3]) {
      const decoder = new FrameDecoder(0);
      const seen: Uint8Array[] = [];
      assert.throws(
        () => {
          decoder.push(bytes.subarray(0, split), (f) => seen.push(f));
          decoder.push(bytes.subarray(split), (f) => seen.push(f));
          // A frame still incomplete is not an error yet; complete it with filler.
          decoder.push(new Uint8Array(70_000), (f) => seen.push(f));
        },
        (e) => e instanceof FrameError && e.code === "VPN_FRAME_INVALID",
        `${what} (split at ${split})`,
      );
      assert.equal(seen.length, 0, what);
    }
  }
});

Deno.test("frames before a bad one are delivered, nothing after it", () => {
  const stream = new Uint8Array([...fastStream(PACKETS.slice(0, 2)), 0, 3, 1, 2, 3]);
  const decoder = new FrameDecoder(0);
  const seen: Uint8Array[] = [];
  assert.throws(() => decoder.push(stream, (f) => seen.push(f.slice())), FrameError);
  assert.deepEqual(seen, PACKETS.slice(0, 2));
});

Deno.test("ipLengthAt reads IPv4 and IPv6 length fields at an offset", () => {
  assert.equal(ipLengthAt(withVnetHeader(PACKETS[2]), 10), PACKETS[2].length);
  const v6 = new Uint8Array(48);
  v6[0] = 0x60;
  v6[5] = 8;
  assert.equal(ipLengthAt(v6, 0), 48);
  assert.equal(ipLengthAt(new Uint8Array([0x45, 0, 0]), 0), -1);
  assert.equal(ipLengthAt(new Uint8Array([0x41, 0, 0, 84, 0, 0]), 0), -1); // IHL 1
});
