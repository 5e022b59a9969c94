/**
 * Long synchronous work cut into slices: a loop calls `slicer.due()` often (it is cheap) and,
 * when it returns true, awaits `slicer.pause()`, which lets timers, I/O and other requests run
 * before the loop goes on. A peer's multi-megabyte message then costs the node latency in
 * slices of a few milliseconds instead of one stall of hundreds.
 */

/** Work time between pauses by default, in milliseconds. */
export const DEFAULT_SLICE_MS = 8;

/**
 * Decides when a loop has run long enough and yields to the event loop (a macrotask, so I/O
 * callbacks run too).
 *
 * @example
 * ```ts ignore
 * const slicer = new Slicer();
 * for (const item of items) {
 *   work(item);
 *   if (slicer.due()) await slicer.pause();
 * }
 * ```
 */
export class Slicer {
  readonly #sliceMs: number;
  #start = performance.now();
  #calls = 0;
  /** Pauses taken so far. */
  pauses = 0;

  constructor(sliceMs = DEFAULT_SLICE_MS) {
    this.#sliceMs = sliceMs;
  }

  /** True once the current slice has run `sliceMs` (the clock is read every 64th call). */
  due(): boolean {
    if ((++this.#calls & 63) !== 0) return false;
    return performance.now() - this.#start >= this.#sliceMs;
  }

  /** True once the current slice has run `sliceMs`, reading the clock now (coarse loops). */
  spent(): boolean {
    return performance.now() - this.#start >= this.#sliceMs;
  }

  /** Yields to the event loop and starts a new slice. */
  async pause(): Promise<void> {
    this.pauses++;
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
    this.#start = performance.now();
  }
}
