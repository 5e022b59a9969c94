/** The ledger's periodic jobs: Go's `Announce` ticker and the announce/persist/delete helpers on it. */

import type { Clock } from "../util/clock.ts";
import { errorMessage } from "../util/errors.ts";
import type { Logger } from "../util/logger.ts";
import { startBackoffTicker } from "../util/ticker.ts";
import { goMarshal } from "./json.ts";

/** A stoppable periodic job. */
export interface Job {
  stop(): void;
}

/** What the job set needs: time and timers, jitter, and where failures are logged. */
export interface JobComponents {
  clock: Clock;
  random: () => number;
  log: Logger;
}

/**
 * The running jobs of one ledger, so that stopping the ledger stops them all.
 *
 * @example
 * ```ts
 * const jobs = new JobSet({ clock: systemClock, random: Math.random, log: silentLogger });
 * const job = jobs.announce(10_000, () => console.log("tick"));
 * jobs.stopAll();
 * ```
 */
export class JobSet {
  readonly #components: JobComponents;
  readonly #jobs = new Set<Job>();
  /** The one temporary write job (persist or delete) per bucket and key. */
  readonly #writes = new Map<string, Job>();

  constructor(components: JobComponents) {
    this.#components = components;
  }

  /** Runs `job` now and then on the backoff schedule of `intervalMs` (Go `Announce`). */
  announce(intervalMs: number, job: () => void | Promise<void>): Job {
    const { clock, random, log } = this.#components;
    const ticker = startBackoffTicker({
      maxIntervalMs: intervalMs,
      random,
      clock,
      onError: (e) => log.warn("ledger: periodic job failed", { error: errorMessage(e) }),
    }, job);
    const handle: Job = {
      stop: () => {
        ticker.stop();
        this.#jobs.delete(handle);
      },
    };
    this.#jobs.add(handle);
    return handle;
  }

  /**
   * Starts a job that stops itself when it calls `done`, or after `timeoutMs`. With `slot` (a
   * bucket and key), the job replaces the slot's earlier write job: an older value is never
   * written again over a newer one.
   */
  withTimeout(
    timeoutMs: number,
    start: (done: () => void) => Job,
    slot?: readonly [string, string],
  ): Job {
    const { clock } = this.#components;
    const parts: { timer?: unknown; inner?: Job } = {};
    const slotKey = slot === undefined ? undefined : `${slot[0]}\0${slot[1]}`;
    const handle: Job = {
      stop: () => {
        if (parts.timer !== undefined) clock.clearTimeout(parts.timer);
        parts.inner?.stop();
        this.#jobs.delete(handle);
        if (slotKey !== undefined && this.#writes.get(slotKey) === handle) {
          this.#writes.delete(slotKey);
        }
      },
    };
    if (slotKey !== undefined) {
      this.#writes.get(slotKey)?.stop();
      this.#writes.set(slotKey, handle);
    }
    this.#jobs.add(handle);
    parts.timer = clock.setTimeout(handle.stop, timeoutMs);
    parts.inner = start(handle.stop);
    return handle;
  }

  /**
   * Stops the temporary write job of `bucket`/`key` (of every key of `bucket` without `key`), if
   * any: a newer write supersedes it.
   */
  supersede(bucket: string, key?: string): void {
    if (key !== undefined) {
      this.#writes.get(`${bucket}\0${key}`)?.stop();
      return;
    }
    for (const [slot, job] of [...this.#writes]) {
      if (slot.startsWith(`${bucket}\0`)) job.stop();
    }
  }

  /** Stops every job still running. */
  stopAll(): void {
    for (const job of [...this.#jobs]) job.stop();
  }
}

/** The ledger reads and writes the announce helpers make. */
export interface AnnounceTarget {
  getKey(bucket: string, key: string): string | undefined;
  currentData(): Map<string, Map<string, string>>;
  add(bucket: string, values: ReadonlyMap<string, unknown>): Promise<boolean>;
  delete(bucket: string, key: string): Promise<boolean>;
  deleteBucket(bucket: string): Promise<boolean>;
}

/**
 * Each tick, writes `value` unless the stored value already equals it (Go `AnnounceUpdate`).
 *
 * @example
 * ```ts
 * announceUpdate(jobs, ledger, 10_000, "egress", peerId, "ok");
 * ```
 */
export function announceUpdate(
  jobs: JobSet,
  ledger: AnnounceTarget,
  intervalMs: number,
  bucket: string,
  key: string,
  value: unknown,
): Job {
  const text = goMarshal(value);
  return jobs.announce(intervalMs, async () => {
    if (ledger.getKey(bucket, key) !== text) await ledger.add(bucket, new Map([[key, value]]));
  });
}

/**
 * Like {@link announceUpdate} but stops once the value is stored or after `timeoutMs` (Go
 * `Persist`).
 *
 * @example
 * ```ts
 * persist(jobs, ledger, 5_000, 20_000, "dhcp", "leader", peerId);
 * ```
 */
export function persist(
  jobs: JobSet,
  ledger: AnnounceTarget,
  intervalMs: number,
  timeoutMs: number,
  bucket: string,
  key: string,
  value: unknown,
): Job {
  const text = goMarshal(value);
  return jobs.withTimeout(timeoutMs, (done) =>
    jobs.announce(intervalMs, async () => {
      if (ledger.getKey(bucket, key) !== text) await ledger.add(bucket, new Map([[key, value]]));
      else done();
    }), [bucket.toWellFormed(), key.toWellFormed()]);
}

/**
 * Deletes `bucket` each tick until it is gone or `timeoutMs` passed (Go `AnnounceDeleteBucket`).
 *
 * @example
 * ```ts
 * announceDeleteBucket(jobs, ledger, 5_000, 20_000, "files");
 * ```
 */
export function announceDeleteBucket(
  jobs: JobSet,
  ledger: AnnounceTarget,
  intervalMs: number,
  timeoutMs: number,
  bucket: string,
): Job {
  return jobs.withTimeout(timeoutMs, (done) =>
    jobs.announce(intervalMs, async () => {
      if (ledger.currentData().has(bucket)) await ledger.deleteBucket(bucket);
      else done();
    }));
}

/**
 * Deletes `bucket`/`key` each tick until gone or `timeoutMs` passed (Go
 * `AnnounceDeleteBucketKey`).
 *
 * @example
 * ```ts
 * announceDeleteBucketKey(jobs, ledger, 5_000, 20_000, "services", "web");
 * ```
 */
export function announceDeleteBucketKey(
  jobs: JobSet,
  ledger: AnnounceTarget,
  intervalMs: number,
  timeoutMs: number,
  bucket: string,
  key: string,
): Job {
  return jobs.withTimeout(timeoutMs, (done) =>
    jobs.announce(intervalMs, async () => {
      if (ledger.getKey(bucket, key) !== undefined) await ledger.delete(bucket, key);
      else done();
    }), [bucket.toWellFormed(), key.toWellFormed()]);
}
