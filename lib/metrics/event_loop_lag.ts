/** Samples the event loop's delay: a timer every few milliseconds measures how late it fires. */
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
  start(): void;
  stop(): void;
}

/**
 * Registers `edgevpn_event_loop_lag_distribution_seconds`, a histogram of every sample's delay,
 * in `registry`. A timer due every {@link LAG_SAMPLE_MS} ms records how late it fired; a stall
 * of the loop shows up as one late sample of about the stall's length.
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
  let last = 0;
  let max = 0;
  let expected = 0;
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
    start() {
      if (timer !== undefined) return;
      expected = performance.now() + LAG_SAMPLE_MS;
      timer = setInterval(() => {
        const now = performance.now();
        last = Math.max(0, now - expected);
        if (last > max) max = last;
        histogram.observe(last / 1000);
        expected = now + LAG_SAMPLE_MS;
      }, LAG_SAMPLE_MS);
      Deno.unrefTimer(timer);
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
    },
  };
}
