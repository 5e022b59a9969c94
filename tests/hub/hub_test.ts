import assert from "node:assert/strict";
import { generateNetworkConfig } from "../../lib/config/token.ts";
import type { NetworkConfig } from "../../lib/config/network.ts";
import { sealKeyAt } from "../../lib/crypto/derive.ts";
import { seal } from "../../lib/crypto/seal.ts";
import type { Clock } from "../../lib/util/clock.ts";
import { encodeEnvelope } from "../../lib/hub/envelope.ts";
import { createHub, type Hub } from "../../lib/hub/hub.ts";
import { EdgeVpnError } from "../../lib/util/errors.ts";
import { MemoryNetwork } from "./memory_pubsub.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function received(hub: Hub): string[] {
  const got: string[] = [];
  hub.addEventListener("message", (e) => got.push(dec.decode(e.detail.data)));
  return got;
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function skewedClock(offsetMs: number): Clock {
  return {
    now: () => Date.now() + offsetMs,
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (h) => clearTimeout(h as number),
  };
}

Deno.test("hub delivers sealed messages with the forwarding peer as sender", async () => {
  const net = new MemoryNetwork();
  const config = generateNetworkConfig(360);
  const a = createHub({ pubsub: net.join("peer-a"), network: config });
  const b = createHub({ pubsub: net.join("peer-b"), network: config });
  const from: string[] = [];
  b.addEventListener("message", (e) => from.push(e.detail.from));
  const got = received(b);
  await a.start();
  await b.start();
  try {
    assert.equal(a.topic, b.topic);
    await a.publish(enc.encode("hello"));
    await until(() => got.length === 1, "the message");
    assert.deepEqual(got, ["hello"]);
    assert.deepEqual(from, ["peer-a"]);
    assert.equal(a.counters.published, 1);
    assert.equal(b.counters.received, 1);
  } finally {
    await a.stop();
    await b.stop();
  }
});

Deno.test("a hub with another seal key reads nothing and cannot inject", async () => {
  const net = new MemoryNetwork();
  const config = generateNetworkConfig(360);
  // Same room, so the same topic: only the seal key differs.
  const intruderConfig: NetworkConfig = {
    ...config,
    otp: { ...config.otp, crypto: { ...config.otp.crypto, key: "another key" } },
  };
  const a = createHub({ pubsub: net.join("a"), network: config });
  const b = createHub({ pubsub: net.join("b"), network: config });
  const x = createHub({ pubsub: net.join("x"), network: intruderConfig });
  const [gotA, gotB, gotX] = [received(a), received(b), received(x)];
  for (const h of [a, b, x]) await h.start();
  try {
    assert.equal(x.topic, a.topic);
    await a.publish(enc.encode("secret"));
    await x.publish(enc.encode("forged"));
    await until(() => gotB.length === 1 && a.counters.dropped.badSeal === 1, "delivery");
    await until(
      () => x.counters.dropped.badSeal === 1 && b.counters.dropped.badSeal === 1,
      "the forged and unreadable messages to be counted",
    );
    assert.deepEqual(gotB, ["secret"]);
    assert.deepEqual(gotA, []);
    assert.deepEqual(gotX, []);
    assert.equal(b.counters.dropped.badSeal, 1);
  } finally {
    for (const h of [a, b, x]) await h.stop();
  }
});

Deno.test("messages published across three rotations all arrive, boundaries included", async () => {
  const interval = 2;
  const net = new MemoryNetwork();
  const config = generateNetworkConfig(interval);
  // Clocks 300 ms apart either way: the lead/grace windows must absorb the skew.
  const early = skewedClock(300);
  const late = skewedClock(-300);
  const pa = net.join("a");
  const a = createHub({ pubsub: pa, network: config, clock: early });
  const b = createHub({ pubsub: net.join("b"), network: config, clock: late });
  const [gotA, gotB] = [received(a), received(b)];
  await a.start();
  await b.start();
  const sent: { a: string[]; b: string[] } = { a: [], b: [] };
  const timers: ReturnType<typeof setTimeout>[] = [];
  const publish = (hub: Hub, name: "a" | "b", label: string) => {
    const text = `${name}-${label}-${sent[name].length}`;
    sent[name].push(text);
    hub.publish(enc.encode(text)).catch((e) => assert.fail(String(e)));
  };
  try {
    const firstBoundary = (Math.floor(early.now() / 2000) + 1) * 2000;
    // Exactly at and 1 ms before each of the next three boundaries of each clock.
    for (let k = 0; k < 3; k++) {
      const at = firstBoundary + k * 2000;
      timers.push(setTimeout(() => publish(a, "a", "at"), at - early.now()));
      timers.push(setTimeout(() => publish(a, "a", "before"), at - 1 - early.now()));
      timers.push(setTimeout(() => publish(b, "b", "at"), at - late.now()));
      timers.push(setTimeout(() => publish(b, "b", "before"), at - 1 - late.now()));
    }
    const end = firstBoundary + 3 * 2000 + 600;
    while (early.now() < end) {
      publish(a, "a", "tick");
      publish(b, "b", "tick");
      await new Promise((r) => setTimeout(r, 100));
    }
    await until(
      () => gotB.length === sent.a.length && gotA.length === sent.b.length,
      `all messages (a→b ${gotB.length}/${sent.a.length}, b→a ${gotA.length}/${sent.b.length})`,
    );
    assert.deepEqual(new Set(gotB), new Set(sent.a));
    assert.deepEqual(new Set(gotA), new Set(sent.b));
    assert.equal(sent.a.filter((t) => t.includes("-at-")).length, 3);
    assert.ok(new Set(pa.history).size >= 4, `expected 4 topics, saw ${new Set(pa.history).size}`);
    assert.equal(a.counters.dropped.badSeal + b.counters.dropped.badSeal, 0);
  } finally {
    timers.forEach(clearTimeout);
    await a.stop();
    await b.stop();
  }
});

Deno.test("bad input is dropped and counted by reason; 10 000 of them keep the hub bounded", async () => {
  const net = new MemoryNetwork();
  const config = generateNetworkConfig(360);
  config.maxMessageSize = 4096;
  const ps = net.join("victim");
  const hub = createHub({ pubsub: ps, network: config });
  const got = received(hub);
  await hub.start();
  try {
    const topic = hub.topic;
    const otherKey = await sealKeyAt(generateNetworkConfig(360), Date.now());
    const foreign = encodeEnvelope({
      message: await seal(otherKey, enc.encode("x")),
      senderId: "",
      annotations: null,
    });
    const valid = encodeEnvelope({
      message: await seal(await sealKeyAt(config, Date.now()), enc.encode("ok")),
      senderId: "",
      annotations: null,
    });
    const kinds: [string, () => { data: Uint8Array; receivedFrom: string }][] = [
      ["badEnvelope", () => ({
        data: crypto.getRandomValues(new Uint8Array(1 + Math.floor(Math.random() * 200))),
        receivedFrom: "p",
      })],
      [
        "badEnvelope",
        () => ({ data: valid.subarray(0, 1 + Math.floor(Math.random() * 60)), receivedFrom: "p" }),
      ],
      [
        "badEnvelope",
        () => ({ data: enc.encode(JSON.stringify([1, "Message"])), receivedFrom: "p" }),
      ],
      [
        "badSeal",
        () => ({
          data: enc.encode(
            '{"Message":"00112233445566778899aabbccddeeff00112233445566778899aabbccdd"}',
          ),
          receivedFrom: "p",
        }),
      ],
      ["badSeal", () => ({ data: enc.encode('{"Message":"not hex at all"}'), receivedFrom: "p" })],
      ["badSeal", () => ({ data: foreign, receivedFrom: "p" })],
      ["oversize", () => ({ data: new Uint8Array(4097), receivedFrom: "p" })],
      ["unknownSender", () => ({ data: valid, receivedFrom: "" })],
    ];
    const expected: Record<string, number> = {};
    const total = 10_000;
    for (let i = 0; i < total; i += 500) {
      for (let j = i; j < i + 500; j++) {
        const [reason, make] = kinds[j % kinds.length];
        expected[reason] = (expected[reason] ?? 0) + 1;
        ps.inject({ topic, ...make() });
      }
      const target = Math.min(i + 500, total);
      await until(() => {
        const d = hub.counters.dropped;
        return d.badEnvelope + d.badSeal + d.oversize + d.unknownSender + d.overload === target;
      }, "the batch to be processed");
    }
    const d = hub.counters.dropped;
    assert.deepEqual(
      {
        badEnvelope: d.badEnvelope,
        badSeal: d.badSeal,
        oversize: d.oversize,
        unknownSender: d.unknownSender,
      },
      expected,
    );
    assert.equal(d.overload, 0);
    assert.deepEqual(got, []);

    // A burst beyond the queue limit is shed, not buffered.
    for (let j = 0; j < 5000; j++) ps.inject({ topic, data: foreign, receivedFrom: "p" });
    assert.ok(
      hub.counters.dropped.overload >= 5000 - 1025,
      `overload ${hub.counters.dropped.overload}`,
    );
    await until(
      () =>
        hub.counters.dropped.badSeal === expected.badSeal + 5000 - hub.counters.dropped.overload,
      "the burst",
    );

    ps.inject({ topic, data: valid, receivedFrom: "p" });
    await until(() => got.length === 1, "a valid message after the flood");
    assert.deepEqual(got, ["ok"]);
  } finally {
    await hub.stop();
  }
});

Deno.test("publish refuses a message the network's max_message_size cannot carry", async () => {
  const net = new MemoryNetwork();
  const config = generateNetworkConfig(360);
  config.maxMessageSize = 1000;
  const hub = createHub({ pubsub: net.join("a"), network: config });
  await assert.rejects(
    hub.publish(new Uint8Array(10)),
    (e) => e instanceof EdgeVpnError && e.code === "HUB_NOT_STARTED",
  );
  await hub.start();
  try {
    await hub.publish(new Uint8Array(400));
    await assert.rejects(
      hub.publish(new Uint8Array(500)),
      (e) => e instanceof EdgeVpnError && e.code === "MESSAGE_TOO_LARGE",
    );
  } finally {
    await hub.stop();
  }
});

Deno.test("stop unsubscribes every topic", async () => {
  const net = new MemoryNetwork();
  const ps = net.join("a");
  const hub = createHub({ pubsub: ps, network: generateNetworkConfig(360) });
  await hub.start();
  assert.equal(ps.subscribed.size, 1);
  await hub.stop();
  assert.equal(ps.subscribed.size, 0);
  assert.equal(hub.topic, "");
});
