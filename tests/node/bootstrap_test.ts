import assert from "node:assert/strict";
import type { Clock } from "../../lib/util/clock.ts";
import { BOOTSTRAP_RETRY, BootstrapDialer } from "../../lib/node/bootstrap.ts";
import { createLogger, type LogRecord } from "../../lib/util/logger.ts";

/** A clock whose time only moves when the test says so. */
class ManualClock implements Clock {
  time = 1_000_000;
  #timers = new Map<number, { at: number; fn: () => void }>();
  #next = 1;
  now = () => this.time;
  setTimeout = (fn: () => void, ms: number) => {
    const id = this.#next++;
    this.#timers.set(id, { at: this.time + ms, fn });
    return id;
  };
  clearTimeout = (h: unknown) => void this.#timers.delete(h as number);
  get pending(): number {
    return this.#timers.size;
  }
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (let i = 0; i < 20; i++) await Promise.resolve();
    while (true) {
      const due = [...this.#timers].filter(([, t]) =>
        t.at <= end
      ).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.#timers.delete(due[0]);
      this.time = due[1].at;
      due[1].fn();
      for (let i = 0; i < 20; i++) await Promise.resolve();
    }
    this.time = end;
  }
}

const PEER = "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf";

Deno.test("unreachable bootstrap peers are retried with growing backoff and logged once", async () => {
  const clock = new ManualClock();
  const records: LogRecord[] = [];
  const attempts: number[] = [];
  let reachable = false;
  const dialer = new BootstrapDialer([PEER, "/ip4/127.0.0.1/tcp/2"], {
    dial: (_maddr, _signal) => {
      attempts.push(clock.time);
      return reachable ? Promise.resolve() : Promise.reject(new Error("connection refused"));
    },
    isConnected: () => false,
    clock,
    logger: createLogger({ level: "debug", sink: (r) => records.push(r) }),
  });
  assert.equal(dialer.peerIds.length, 1, "a peer without /p2p/ is ignored");
  dialer.start();
  await clock.advance(0);
  for (let i = 0; i < 7; i++) await clock.advance(BOOTSTRAP_RETRY.maxMs);
  // Every second or so for the first 5 minutes, then backing off.
  assert.ok(attempts[1] - attempts[0] <= BOOTSTRAP_RETRY.fastMs * 1.25, `first retry ${attempts}`);
  const late = attempts.filter((t) => t - attempts[0] > BOOTSTRAP_RETRY.fastWindowMs);
  const gaps = late.slice(1).map((t, i) => t - late[i]);
  assert.ok(gaps.length >= 5, `attempts: ${attempts.length}`);
  for (let i = 1; i < gaps.length; i++) {
    assert.ok(gaps[i] >= gaps[i - 1] * 1.15 || gaps[i] >= BOOTSTRAP_RETRY.maxMs * 0.75, `${gaps}`);
  }
  assert.ok(gaps.every((g) => g <= BOOTSTRAP_RETRY.maxMs * 1.25));
  const warnings = records.filter((r) => r.level === "warn");
  assert.deepEqual(warnings.map((r) => r.msg), [
    "ignoring bootstrap peer without /p2p/<id>",
    "bootstrap peer unreachable; retrying with backoff",
  ]);
  reachable = true;
  await clock.advance(BOOTSTRAP_RETRY.maxMs * 2);
  assert.ok(records.some((r) => r.msg === "bootstrap peer reachable again"));
  await dialer.stop();
  assert.equal(clock.pending, 0);
});

Deno.test("a node whose bootstrap peers are unreachable starts at once", async () => {
  const { generateNetworkConfig, startNode, stopAll } = await import("./helpers.ts");
  const t0 = performance.now();
  const node = await startNode(generateNetworkConfig(360), {
    bootstrapPeers: [
      PEER,
      "/ip4/127.0.0.1/tcp/3/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf",
    ],
    dht: true,
  });
  const elapsed = performance.now() - t0;
  await stopAll([node]);
  assert.ok(elapsed < 1500, `start took ${Math.round(elapsed)} ms`);
});

Deno.test("a bootstrap peer lost after a connection is redialled every second for 5 minutes, with short attempts", async () => {
  const clock = new ManualClock();
  const attempts: { at: number; timeoutMs: number }[] = [];
  let reachable = true;
  let connected = false;
  const dialer = new BootstrapDialer([PEER], {
    dial: (_maddr, signal) => {
      const at = clock.time;
      attempts.push({ at, timeoutMs: NaN });
      if (reachable) {
        connected = true;
        return Promise.resolve();
      }
      // Unreachable as behind a partition: the attempt hangs until its signal ends it.
      return new Promise((_, reject) => {
        const last = attempts[attempts.length - 1];
        signal.addEventListener("abort", () => {
          last.timeoutMs = clock.time - at;
          reject(new Error("timed out"));
        });
      });
    },
    isConnected: () => connected,
    clock,
  });
  dialer.start();
  await clock.advance(0);
  assert.equal(attempts.length, 1);
  // The partition: the connection drops and the peer stops answering.
  reachable = false;
  connected = false;
  dialer.peerDisconnected(PEER.split("/p2p/")[1]);
  await clock.advance(60_000);
  const lost = attempts.slice(1);
  assert.ok(lost.length >= 9, `${lost.length} attempts in the first minute`);
  for (const [i, a] of lost.entries()) {
    if (!Number.isNaN(a.timeoutMs)) {
      assert.ok(
        a.timeoutMs <= BOOTSTRAP_RETRY.fastDialTimeoutMs + 1,
        `attempt ${i} ${a.timeoutMs}`,
      );
    }
    if (i > 0) {
      const gap = a.at - lost[i - 1].at;
      assert.ok(gap <= BOOTSTRAP_RETRY.fastDialTimeoutMs + BOOTSTRAP_RETRY.fastMs * 1.25, `${gap}`);
    }
  }
  // The partition heals: the next attempt, within 1 s × 1.25 + 5 s, connects.
  reachable = true;
  await clock.advance(BOOTSTRAP_RETRY.fastDialTimeoutMs + BOOTSTRAP_RETRY.fastMs * 1.25);
  assert.ok(connected);
  // Long after the loss, an unreachable peer backs off as before.
  connected = false;
  reachable = false;
  await clock.advance(BOOTSTRAP_RETRY.fastWindowMs);
  const before = attempts.length;
  await clock.advance(120_000);
  assert.ok(attempts.length - before <= 5, `${attempts.length - before} attempts in 2 minutes`);
  await dialer.stop();
});

Deno.test("a bootstrap dial that times out in its handshakes gets twice as long next time; one that gets no answer does not", async () => {
  const clock = new ManualClock();
  const attempts: { timeoutMs: number }[] = [];
  // Starved: the TCP connection opens at once, the handshakes take 12 s.
  let handshakeMs = 12_000;
  let answers = true;
  let connected = false;
  const dialer = new BootstrapDialer([PEER], {
    dial: (_maddr, signal, transportOpen) => {
      const at = clock.time;
      const attempt = { timeoutMs: NaN };
      attempts.push(attempt);
      return new Promise<void>((resolve, reject) => {
        if (answers) {
          transportOpen?.();
          const timer = clock.setTimeout(() => {
            connected = true;
            resolve();
          }, handshakeMs);
          signal.addEventListener("abort", () => clock.clearTimeout(timer));
        }
        signal.addEventListener("abort", () => {
          attempt.timeoutMs = clock.time - at;
          reject(new Error("timed out"));
        });
      });
    },
    isConnected: () => connected,
    clock,
  });
  dialer.start();
  await clock.advance(60_000);
  assert.ok(connected, `attempts: ${JSON.stringify(attempts)}`);
  // 5 s, then 10 s (both cut), then 20 s: long enough for the 12 s handshakes.
  assert.deepEqual(attempts.map((a) => a.timeoutMs), [5_000, 10_000, NaN]);
  // Lost again, behind a partition (no SYN answered): attempts stay short, and the slow
  // handshakes of before are forgotten once a dial succeeded.
  connected = false;
  answers = false;
  handshakeMs = 0;
  dialer.peerDisconnected(PEER.split("/p2p/")[1]);
  const before = attempts.length;
  await clock.advance(30_000);
  const later = attempts.slice(before).filter((a) => !Number.isNaN(a.timeoutMs));
  assert.ok(later.length >= 4, `${later.length}`);
  assert.ok(later.every((a) => a.timeoutMs === BOOTSTRAP_RETRY.fastDialTimeoutMs));
  await dialer.stop();
});
