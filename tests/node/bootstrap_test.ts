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
  for (let i = 0; i < 6; i++) await clock.advance(BOOTSTRAP_RETRY.maxMs);
  assert.ok(attempts[1] - attempts[0] <= BOOTSTRAP_RETRY.firstMs * 1.25, `first retry ${attempts}`);
  const gaps = attempts.slice(1).map((t, i) => t - attempts[i]);
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
