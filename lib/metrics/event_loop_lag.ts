/** Samples the event loop's delay: a timer every few milliseconds measures how late it fires. */
import { cpuUsage } from "node:process";
import { Histogram, type Registry } from "prom-client";

/**
 * How often the sampler's timer is due, in milliseconds. Each wake-up costs CPU: at 20 ms the sampler
 * alone was a third of an idle node's 2 % of a core (50 nodes on two cores); a stall still shows as
 * one late sample of about its length.
 */
export const LAG_SAMPLE_MS = 100;

/** The histogram's upper bounds, in seconds (5 ms to 1 s). */
export const LAG_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/** The event-loop lag sampler of a registry. */
export interface EventLoopLag {
  /** The delay of the last sample, in milliseconds. */
  readonly lastMs: number;
  /** The largest delay since the previous call, in milliseconds (resets to the last sample). */
  takeMaxMs(): number;
  /** The stall of the last sample (the part of its delay the process spent running), in ms. */
  readonly lastStallMs: number;
  /** The largest stall since the previous call, in milliseconds (resets to the last sample). */
  takeMaxStallMs(): number;
  start(): void;
  stop(): void;
}

/**
 * Registers `edgevpn_event_loop_lag_distribution_seconds`, a histogram of every sample's delay,
 * in `registry`. A timer due every {@link LAG_SAMPLE_MS} ms records how late it fired; a stall
 * of the loop shows up as one late sample of about the stall's length.
 *
 * A sample is also late when the operating system let other processes run (a machine with more
 * runnable work than cores): `edgevpn_event_loop_stall_distribution_seconds` records the part of
 * each delay the process itself spent running — the delay, or the CPU time the process used since
 * the previous sample if that is less. On a machine with a core to spare the two are the same; on
 * a crowded one the stall still shows what this node's own work held the loop for.
 *
 * @example
 * ```ts ignore
 * const lag = createEventLoopLag(registry);
 * lag.start();
 * ```
 */
export function createEventLoopLag(registry: Registry): EventLoopLag {
  const histogram = new Histogram({
    name: "edgevpn_event_loop_lag_distribution_seconds",
    help: `Delay of each event-loop sample (one every ${LAG_SAMPLE_MS / 1000} s)`,
    buckets: LAG_BUCKETS,
    registers: [registry],
  });
  const stalls = new Histogram({
    name: "edgevpn_event_loop_stall_distribution_seconds",
    help: "Part of each event-loop sample's delay the process spent running (its own work)",
    buckets: LAG_BUCKETS,
    registers: [registry],
  });
  let last = 0;
  let max = 0;
  let lastStall = 0;
  let maxStall = 0;
  let expected = 0;
  let cpuBefore = 0;
  const cpuMs = () => {
    const { user, system } = cpuUsage();
    return (user + system) / 1000;
  };
  let timer: ReturnType<typeof setInterval> | undefined;
  return {
    get lastMs() {
      return last;
    },
    takeMaxMs() {
      const m = max;
      max = last;
      return m;
    },
    get lastStallMs() {
      return lastStall;
    },
    takeMaxStallMs() {
      const m = maxStall;
      maxStall = lastStall;
      return m;
    },
    start() {
      if (timer !== undefined) return;
      expected = performance.now() + LAG_SAMPLE_MS;
      cpuBefore = cpuMs();
      timer = setInterval(() => {
        const now = performance.now();
        const cpu = cpuMs();
        last = Math.max(0, now - expected);
        if (last > max) max = last;
        histogram.observe(last / 1000);
        lastStall = Math.min(last, cpu - cpuBefore);
        if (lastStall > maxStall) maxStall = lastStall;
        stalls.observe(lastStall / 1000);
        expected = now + LAG_SAMPLE_MS;
        cpuBefore = cpu;
      }, LAG_SAMPLE_MS);
      Deno.unrefTimer(timer);
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
    },
  };
}
