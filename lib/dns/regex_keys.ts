/** The `dns` bucket's keys as RE2 regular expressions (re2js: linear-time matching), compiled once, with a work budget per query. */
import { RE2JS } from "re2js";
import { errorMessage } from "../util/errors.ts";

/** Keys longer than this are not compiled (a member could write huge ones). */
export const MAX_KEY_LENGTH = 1024;
/**
 * Compiled programs larger than this are skipped: matching costs up to program size × name
 * length steps, and real keys are far smaller (`foo\.bar\.` is 10).
 */
export const MAX_PROGRAM_SIZE = 4000;
/**
 * Work allowed per query, in program-size × input-length units (compiling counts as matching
 * a 64-byte input): about 800 typical keys against a 250-byte name, or a dozen of the
 * largest accepted programs.
 */
export const QUERY_BUDGET = 2_000_000;
const COMPILE_COST_FACTOR = 64;

/** A key that is not used, and why. */
export interface SkippedKey {
  key: string;
  reason: "too_long" | "invalid" | "too_complex";
  message: string;
}

type Compiled = { ok: true; re: RE2JS; size: number } | { ok: false };

/**
 * Compiled keys of the `dns` bucket. {@link sync} with the current keys drops the compiled
 * forms of keys that left the ledger; each key is compiled at most once while it stays, and
 * a key that cannot be used is reported once to `onSkip`.
 *
 * @example
 * ```ts ignore
 * const keys = new RegexKeys((s) => log.warn(s.message));
 * keys.sync(["foo\\.mesh\\."]);
 * keys.firstMatch("foo.mesh.", ["foo\\.mesh\\."], () => true); // "foo\\.mesh\\."
 * ```
 */
export class RegexKeys {
  readonly #compiled = new Map<string, Compiled>();
  readonly #onSkip: (skipped: SkippedKey) => void;
  #budgetExhausted = 0;

  constructor(onSkip: (skipped: SkippedKey) => void) {
    this.#onSkip = onSkip;
  }

  /** Queries whose key matching stopped at the budget. */
  get budgetExhausted(): number {
    return this.#budgetExhausted;
  }

  /** Forgets keys no longer in the bucket (so a key written again is checked again). */
  sync(keys: Iterable<string>): void {
    const live = new Set(keys);
    for (const key of this.#compiled.keys()) {
      if (!live.has(key)) this.#compiled.delete(key);
    }
  }

  /**
   * The first of `keys` (in the given order) whose expression matches somewhere in `name`
   * and that `accept`s, or undefined. Stops when the query's budget is spent.
   */
  firstMatch(
    name: string,
    keys: readonly string[],
    accept: (key: string) => boolean,
  ): string | undefined {
    let spent = 0;
    for (const key of keys) {
      if (spent > QUERY_BUDGET) {
        this.#budgetExhausted++;
        return undefined;
      }
      let compiled = this.#compiled.get(key);
      if (compiled === undefined) {
        compiled = this.#compile(key);
        this.#compiled.set(key, compiled);
        if (compiled.ok) spent += compiled.size * COMPILE_COST_FACTOR;
      }
      if (!compiled.ok) continue;
      spent += compiled.size * (name.length + 1);
      if (compiled.re.test(name) && accept(key)) return key;
    }
    return undefined;
  }

  #compile(key: string): Compiled {
    if (key.length > MAX_KEY_LENGTH) {
      this.#onSkip({
        key,
        reason: "too_long",
        message: `expected at most ${MAX_KEY_LENGTH} characters, got ${key.length}`,
      });
      return { ok: false };
    }
    let re: RE2JS;
    try {
      re = RE2JS.compile(key);
    } catch (e) {
      this.#onSkip({ key, reason: "invalid", message: errorMessage(e) });
      return { ok: false };
    }
    const size = re.programSize();
    if (size > MAX_PROGRAM_SIZE) {
      this.#onSkip({
        key,
        reason: "too_complex",
        message: `compiles to ${size} instructions, more than ${MAX_PROGRAM_SIZE}`,
      });
      return { ok: false };
    }
    return { ok: true, re, size };
  }
}
