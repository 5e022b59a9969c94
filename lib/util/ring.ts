/** A bounded list of recent strings that drops the oldest, as Go EdgeVPN's `discovery.Ring`. */

import { InputError } from "./errors.ts";

/**
 * Keeps the last `length` distinct-in-a-row strings, oldest first.
 *
 * @example
 * ```ts
 * const ring = new Ring(2);
 * ring.add("a");
 * ring.add("b");
 * ring.add("c");
 * ring.data; // ["b", "c"]
 * ```
 */
export class Ring {
  readonly length: number;
  #data: string[] = [];

  constructor(length: number) {
    if (!Number.isInteger(length) || length < 1) {
      throw new InputError(
        "RING_LENGTH_INVALID",
        `Ring length must be an integer >= 1, got ${length}`,
      );
    }
    this.length = length;
  }

  /** The kept strings, oldest first (a copy). */
  get data(): string[] {
    return [...this.#data];
  }

  /** Appends `s` unless it equals the newest element, dropping the oldest when full. */
  add(s: string): void {
    if (this.#data.length > 0 && this.#data[this.#data.length - 1] === s) return;
    if (this.#data.length + 1 > this.length) this.#data.shift();
    this.#data.push(s);
  }
}
