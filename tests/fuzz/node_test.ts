/** Fuzzing of the node's parsers of peer bytes: mDNS packets, message-stream frames, peer IDs. */
import assert from "node:assert/strict";
import { generateIdentity, isEd25519PeerId } from "../../lib/crypto/identity.ts";
import { encodeDnsMessage, RR } from "../../lib/node/mdns_packet.ts";
import { decodeDnsMessage, type DnsMessage, type DnsRecord } from "../../lib/node/mdns_packet.ts";
import { couldBecome, MessageStreams } from "../../lib/node/message_streams.ts";
import { YAMUX } from "../../lib/node/muxer.ts";
import { concat, fc, fuzz, mutated } from "./harness.ts";

const label = fc.stringMatching(/^[a-z0-9_-]{1,20}$/);
const dnsName = fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join(".") + ".");
const record: fc.Arbitrary<DnsRecord> = fc.oneof(
  fc.record({ name: dnsName, type: fc.constant(RR.PTR), ttl: fc.nat(), data: dnsName }),
  fc.record({
    name: dnsName,
    type: fc.constant(RR.TXT),
    ttl: fc.nat(),
    data: fc.array(fc.string({ maxLength: 60 }), { maxLength: 4 }),
  }),
  fc.record({
    name: dnsName,
    type: fc.constant(RR.A),
    ttl: fc.nat(),
    data: fc.ipV4(),
  }),
  fc.record({
    name: dnsName,
    type: fc.constant(RR.SRV),
    ttl: fc.nat(),
    data: fc.record({
      priority: fc.integer({ min: 0, max: 0xffff }),
      weight: fc.integer({ min: 0, max: 0xffff }),
      port: fc.integer({ min: 0, max: 0xffff }),
      target: dnsName,
    }),
  }),
) as fc.Arbitrary<DnsRecord>;

const dnsMessage: fc.Arbitrary<DnsMessage> = fc.record({
  id: fc.integer({ min: 0, max: 0xffff }),
  response: fc.boolean(),
  questions: fc.array(
    fc.record({ name: dnsName, type: fc.constantFrom(RR.PTR, RR.ANY), unicast: fc.boolean() }),
    { maxLength: 3 },
  ),
  answers: fc.array(record, { maxLength: 4 }),
  authorities: fc.array(record, { maxLength: 2 }),
  additionals: fc.array(record, { maxLength: 3 }),
});

/** Names made only of compression pointers: loops, chains, pointers past the end. */
const pointerMaze = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 1, maxLength: 200 })
  .map((targets) => {
    const head = Uint8Array.of(0, 0, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 0);
    const body = new Uint8Array(targets.length * 2);
    targets.forEach((t, i) => {
      body[2 * i] = 0xc0 | ((t >> 8) & 0x3f);
      body[2 * i + 1] = t & 0xff;
    });
    return concat([head, body]);
  });

fuzz({
  name: "mDNS packets",
  arbitrary: fc.oneof(
    dnsMessage.map(encodeDnsMessage),
    mutated(dnsMessage.map(encodeDnsMessage)),
    pointerMaze,
    fc.uint8Array({ maxLength: 600 }),
  ),
  run(bytes) {
    decodeDnsMessage(bytes);
  },
});

const HEADER = new TextEncoder().encode("\x13/multistream/1.0.0\n\x0d/edgevpn/0.1\n");

/** One yamux frame as the muxer hands it over. */
const yamuxFrame = fc.record({
  type: fc.oneof(fc.constantFrom(YAMUX.DATA, YAMUX.WINDOW_UPDATE), fc.integer({ min: 0, max: 4 })),
  flag: fc.integer({ min: 0, max: 15 }),
  streamID: fc.constantFrom(1, 3, 5, 2),
  data: fc.oneof(
    fc.constant(undefined),
    fc.nat({ max: HEADER.length }).map((n) => HEADER.subarray(0, n)),
    fc.tuple(fc.nat({ max: HEADER.length }), fc.uint8Array({ maxLength: 80 })).map((
      [n, rest],
    ) => concat([HEADER.subarray(0, n), rest])),
    fc.uint8Array({ maxLength: 120 }),
  ),
});

fuzz({
  name: "message-stream frames at the yamux level",
  arbitrary: fc.tuple(
    fc.array(yamuxFrame, { maxLength: 12 }),
    fc.boolean(),
    fc.constantFrom("accept", "refuse", "throw"),
  ),
  run([frames, member, answer]) {
    const counters = { inbound: 0, nonMember: 0, messages: 0 };
    const streams = new MessageStreams(counters, 15_000);
    const passed: number[] = [];
    const sent: Uint8Array[] = [];
    const delivered: Uint8Array[] = [];
    const muxer = {
      client: false,
      streams: [] as { streamId?: number }[],
      handleStreamMessage(frame: { header: { streamID: number } }) {
        passed.push(frame.header.streamID);
      },
      send(data: Uint8Array) {
        sent.push(data);
        return true;
      },
    };
    streams.route({
      protocol: "/edgevpn/0.1",
      header: HEADER,
      admits: () => member,
      deliver: (_peer, message) => {
        delivered.push(message);
        if (answer === "throw") throw new Error("handler failure");
        return answer === "accept";
      },
      maxBytes: 100,
    });
    streams.intercept(muxer, "peer");
    try {
      for (const f of frames) {
        const length = f.data?.length ?? 0;
        muxer.handleStreamMessage({
          header: { type: f.type, flag: f.flag, streamID: f.streamID, length },
          data: f.data,
        } as never);
      }
      for (const m of delivered) assert.ok(m.length <= 100, "a message beyond maxBytes");
      if (!member) assert.equal(delivered.length, 0, "a non-member's message was delivered");
    } finally {
      streams.stop();
    }
    couldBecome(frames[0]?.data ?? new Uint8Array(), HEADER);
  },
});

const realId = (await generateIdentity()).peerId;

fuzz({
  name: "peer IDs from ledger entries",
  arbitrary: fc.oneof(
    fc.constant(realId),
    mutated(fc.constant(new TextEncoder().encode(realId))).map((b) => new TextDecoder().decode(b)),
    fc.stringMatching(/^[1-9A-HJ-NP-Za-km-z]{0,120}$/),
    fc.string({ maxLength: 300 }),
    fc.integer({ min: 0, max: 5_000 }).map((n) => "z".repeat(n)),
  ),
  run(text) {
    isEd25519PeerId(text);
  },
});
