/**
 * Timers past 25 days of uptime, on a fake clock: two members (ledger, sealed hub on an in-memory
 * pubsub) run their periodic jobs — sync rounds, heartbeats with leader scrubbing, an API write's
 * persist job with its timeout, OTP rotation — for 26 virtual days, across the 2^31 ms (24.8
 * days) where a timer's delay overflows. Every job keeps its pace each day (no runaway loop, no
 * stall), the members still agree and see each other alive at the end, and stopping leaves no
 * timer behind.
 */
import assert from "node:assert/strict";
import { generateNetworkConfig } from "../../lib/config/token.ts";
import { generateIdentity } from "../../lib/crypto/identity.ts";
import { createHub } from "../../lib/hub/hub.ts";
import { createLedger } from "../../lib/ledger/ledger.ts";
import { startBackoffTicker } from "../../lib/util/ticker.ts";
import { MAX_TIMER_MS } from "../../lib/util/timer.ts";
import { FakeClock } from "../helpers/fake_clock.ts";
import { MemoryNetwork } from "../hub/memory_pubsub.ts";

const DAY_MS = 86_400_000;
const DAYS = 26;
const SYNC_MS = 600_000;
const HEARTBEAT_MS = 900_000;
const SCRUB_MS = 3_600_000;
const OTP_INTERVAL_S = 3600;

Deno.test("26 days of uptime on a fake clock: every periodic job keeps its pace, nothing runs away", async () => {
  let running = 0;
  const clock = new FakeClock(Date.UTC(2026, 0, 1), () => running > 0);
  /** Counts `fn` as running work, so that virtual time waits for it. */
  const tracked = (fn: () => Promise<unknown>) => async () => {
    running++;
    try {
      await fn();
    } finally {
      running--;
    }
  };
  const net = new MemoryNetwork();
  const network = generateNetworkConfig(OTP_INTERVAL_S);
  const members = [];
  for (const name of ["a", "b"]) {
    const identity = await generateIdentity();
    const hub = createHub({ pubsub: net.join(name), network, clock });
    const ledger = await createLedger({
      identity,
      mode: "enforce",
      ownershipTtlMs: 4 * HEARTBEAT_MS,
      send: (bytes) => hub.publish(bytes),
      clock,
    });
    // Receiving is work too: virtual time waits for it, so a message is never half-merged
    // when the clock moves on.
    hub.addEventListener("message", (e) => void tracked(() => ledger.receive(e.detail.data))());
    await hub.start();
    members.push({ identity, hub, ledger, syncs: [] as number[], beats: [] as number[] });
  }
  const start = clock.now();
  const dayOf = () => Math.floor((clock.now() - start) / DAY_MS);
  const jobs = members.flatMap((m) => {
    let lastScrub = clock.now();
    return [
      m.ledger.announce(
        SYNC_MS,
        tracked(async () => {
          m.syncs[dayOf()] = (m.syncs[dayOf()] ?? 0) + 1;
          await m.ledger.syncTick();
        }),
      ),
      // The alive service of the mesh: a heartbeat each round, a scrub by the leader hourly.
      m.ledger.announce(
        HEARTBEAT_MS,
        tracked(async () => {
          m.beats[dayOf()] = (m.beats[dayOf()] ?? 0) + 1;
          await m.ledger.heartbeat();
          if (clock.now() - lastScrub >= SCRUB_MS) {
            lastScrub = clock.now();
            await m.ledger.scrubIfLeader(2 * HEARTBEAT_MS);
          }
        }),
      ),
    ];
  });
  // An API write whose persist job times out after an hour, and a ticker whose interval is
  // longer than a timer can wait (clamped to 24.8 days, never a 1 ms loop).
  jobs.push(members[0].ledger.persist(10_000, 3_600_000, "notes", "hello", "world"));
  const longTicks: number[] = [];
  const long = startBackoffTicker({ maxIntervalMs: 40 * DAY_MS, clock }, () => {
    longTicks.push(clock.now());
  });

  for (let day = 0; day < DAYS; day++) {
    // A day holds about 2 × (144 syncs + 96 heartbeats + 48 hub re-plans + …): allow 5×.
    await clock.advance(DAY_MS, 5_000);
  }
  assert.ok(clock.now() - start > MAX_TIMER_MS);

  for (const m of members) {
    for (let day = 0; day < DAYS; day++) {
      const syncs = m.syncs[day] ?? 0;
      const beats = m.beats[day] ?? 0;
      // Jitter is ±50 % per wait; a day averages out to within ±25 % of the interval's pace.
      assert.ok(syncs >= 100 && syncs <= 200, `day ${day}: ${syncs} sync rounds`);
      assert.ok(beats >= 65 && beats <= 135, `day ${day}: ${beats} heartbeats`);
    }
  }
  // At once, then 5 s, 10 s, … (±50 %) doubling towards the clamp: 19 ticks in 26 days, and
  // never two within 2.5 s (an overflowed delay would fire after 1 ms, again and again).
  assert.ok(longTicks.length >= 15 && longTicks.length <= 25, `${longTicks.length} long ticks`);
  for (let i = 1; i < longTicks.length; i++) {
    assert.ok(longTicks[i] - longTicks[i - 1] >= 2500, `long ticks ${i - 1} and ${i}`);
  }
  const [a, b] = members;
  assert.equal(a.ledger.getKey("notes", "hello"), '"world"');
  assert.equal(b.ledger.getKey("notes", "hello"), '"world"');
  const ids = [a.identity.peerId, b.identity.peerId].sort();
  assert.deepEqual(a.ledger.availableNodes(2 * HEARTBEAT_MS), ids);
  assert.deepEqual(b.ledger.availableNodes(2 * HEARTBEAT_MS), ids);
  // A heartbeat may have been written an instant ago and not synced yet: with the heartbeats
  // stopped, the sync rounds alone must bring both chains to one head.
  jobs[1].stop();
  jobs[3].stop();
  await clock.advance(3 * SYNC_MS, 100);
  assert.equal(a.ledger.lastBlock().hash, b.ledger.lastBlock().hash);

  long.stop();
  for (const job of jobs) job.stop();
  for (const m of members) {
    await m.ledger.stop();
    await m.hub.stop();
  }
  assert.equal(clock.pending, 0, "timers left after stop");
});
