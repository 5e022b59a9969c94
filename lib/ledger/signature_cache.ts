/**
 * Signature checks of incoming entries, each distinct entry checked once: peers re-send the
 * same entries every sync round, and a forged one would otherwise cost an Ed25519
 * verification each time.
 */
import { canonicalBytes, type Entry, type SignatureVerifier } from "./entry.ts";

/** Defaults of {@link SignatureChecker}. */
export const SIGNATURE_CHECK_DEFAULTS = {
  /** Outcomes remembered (both kinds); the oldest are forgotten first. */
  maxCached: 65_536,
  /** Checks running at once (each its own WebCrypto call). */
  concurrency: 64,
  /**
   * Failed checks after which the rest of a message's entries are not checked (and count as
   * invalid): a peer that sends that many forgeries gets no more of our time for that message.
   */
  maxFailuresPerMessage: 256,
} as const;

/** What {@link SignatureChecker.check} found, per entry of the list it was given. */
export interface SignatureOutcome {
  /** bucket → key → valid. Entries not checked (after too many failures) are absent. */
  valid: Map<string, Map<string, boolean>>;
  /** Verifications run (cache misses). */
  checked: number;
  /** Answered from the cache. */
  cached: number;
  /** Entries left unchecked once `maxFailuresPerMessage` failures were reached. */
  skipped: number;
}

/**
 * Verifies entries' signatures with an LRU cache keyed by SHA-256 of the canonical bytes and
 * the signature, bounded concurrency, and a cap on failures per message.
 *
 * @example
 * ```ts ignore
 * const checker = new SignatureChecker(verifyPeerSignature);
 * const { valid } = await checker.check([["machines", "10.1.0.1", entry]]);
 * ```
 */
export class SignatureChecker {
  readonly #verify: SignatureVerifier;
  readonly #cache = new Map<string, boolean>();
  readonly #maxCached: number;
  readonly #concurrency: number;
  readonly #maxFailures: number;

  constructor(
    verify: SignatureVerifier,
    options: Partial<typeof SIGNATURE_CHECK_DEFAULTS> = {},
  ) {
    this.#verify = verify;
    this.#maxCached = options.maxCached ?? SIGNATURE_CHECK_DEFAULTS.maxCached;
    this.#concurrency = options.concurrency ?? SIGNATURE_CHECK_DEFAULTS.concurrency;
    this.#maxFailures = options.maxFailuresPerMessage ??
      SIGNATURE_CHECK_DEFAULTS.maxFailuresPerMessage;
  }

  /** Checks the signatures of `entries` (one message's worth). */
  async check(entries: ReadonlyArray<readonly [string, string, Entry]>): Promise<SignatureOutcome> {
    const out: SignatureOutcome = { valid: new Map(), checked: 0, cached: 0, skipped: 0 };
    let failures = 0;
    let next = 0;
    const worker = async () => {
      while (next < entries.length) {
        const [bucket, key, e] = entries[next++];
        if (failures >= this.#maxFailures) {
          out.skipped++;
          continue;
        }
        const ok = await this.#checkOne(bucket, key, e, out);
        if (!ok) failures++;
        let inBucket = out.valid.get(bucket);
        if (inBucket === undefined) out.valid.set(bucket, inBucket = new Map());
        inBucket.set(key, ok);
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(this.#concurrency, entries.length) }, worker),
    );
    return out;
  }

  async #checkOne(bucket: string, key: string, e: Entry, out: SignatureOutcome): Promise<boolean> {
    if (e.sig === null || e.sig.length === 0 || e.owner === "") return false;
    const canonical = canonicalBytes(bucket, key, e);
    const id = await cacheKey(canonical, e.sig);
    const hit = this.#cache.get(id);
    if (hit !== undefined) {
      this.#cache.delete(id);
      this.#cache.set(id, hit);
      out.cached++;
      return hit;
    }
    out.checked++;
    let ok = false;
    try {
      ok = await this.#verify(e.owner, canonical, e.sig);
    } catch {
      ok = false;
    }
    if (this.#cache.size >= this.#maxCached) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(id, ok);
    return ok;
  }
}

async function cacheKey(canonical: Uint8Array, sig: Uint8Array): Promise<string> {
  const both = new Uint8Array(canonical.length + sig.length);
  both.set(canonical);
  both.set(sig, canonical.length);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", both));
  return String.fromCharCode(...digest);
}
