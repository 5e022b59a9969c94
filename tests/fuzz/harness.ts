/**
 * The fuzzing harness: each target is a Deno test running a fast-check property over
 * `FUZZ_RUNS` inputs (20 000 by default, 10^6 with `deno task fuzz`). A parser of untrusted
 * bytes may only throw typed input errors (an {@link EdgeVpnError} with a code); any other
 * exception (RangeError, TypeError, SyntaxError…) is a bug. Each input must take under 50 ms of CPU.
 *
 * A failure prints fast-check's shrunk counterexample with its seed and path; rerun exactly
 * that case with `FUZZ_SEED=<seed> FUZZ_PATH=<path> deno test -A tests/fuzz/<file>`.
 */
import fc from "fast-check";
import { cpuUsage } from "node:process";
import { EdgeVpnError, InputError, UsageError } from "../../lib/util/errors.ts";

const env = (name: string) => Deno.env.get(name);

/** Inputs per target: `FUZZ_RUNS`, else 10^6 in long mode (`deno task fuzz`), else 20 000. */
export const FUZZ_RUNS = Number(env("FUZZ_RUNS") ?? (env("FUZZ_LONG") ? 1_000_000 : 20_000));

/** The time one input may take. */
export const MAX_INPUT_MS = 50;

/** What a target may throw: typed errors of the kinds its input calls for. */
export type Allowed = (e: unknown) => boolean;

/** Bad bytes from the network: an {@link InputError} with a code. */
export const inputErrors: Allowed = (e) => e instanceof InputError && e.code !== "";
/** Bad input from the user (token, config, flags) or the network. */
export const typedErrors: Allowed = (e) =>
  (e instanceof InputError || e instanceof UsageError) && e.code !== "";
/** Any error of the library's own (for example `DHCP_EXHAUSTED`). */
export const libraryErrors: Allowed = (e) => e instanceof EdgeVpnError && e.code !== "";

/** One fuzz target. */
export interface FuzzTarget<T> {
  name: string;
  arbitrary: fc.Arbitrary<T>;
  /** Parses one input (and checks whatever must hold of the result). */
  run(input: T): unknown;
  /** Errors the parser may throw; default {@link inputErrors}. */
  allowed?: Allowed;
}

/**
 * Registers `target` as a Deno test.
 *
 * @example
 * ```ts
 * fuzz({ name: "envelope", arbitrary: fc.uint8Array(), run: (b) => decodeEnvelope(b) });
 * ```
 */
export function fuzz<T>(target: FuzzTarget<T>): void {
  const allowed = target.allowed ?? inputErrors;
  const runs = FUZZ_RUNS;
  Deno.test(`fuzz: ${target.name} (${runs} inputs; only typed errors, each < ${MAX_INPUT_MS} ms)`, async () => {
    let accepted = 0;
    let slowest = 0;
    /** The input's cost in CPU time (user + system) of this process, in ms. */
    const once = async (input: T, count: boolean): Promise<number> => {
      const t0 = cpuUsage();
      try {
        await target.run(input);
        if (count) accepted++;
      } catch (e) {
        if (!allowed(e)) throw e;
      }
      const t = cpuUsage(t0);
      return (t.user + t.system) / 1000;
    };
    const property = fc.asyncProperty(target.arbitrary, async (input) => {
      // CPU time, not wall time: on a loaded machine (other processes, a load of 40 on 2
      // cores) an input waits for a core far longer than it runs. A pause of this process
      // (GC) is not the input's cost either: an input is slow only if it is slow every time.
      let ms = await once(input, true);
      for (let i = 0; i < 2 && ms > MAX_INPUT_MS; i++) ms = Math.min(ms, await once(input, false));
      if (ms > MAX_INPUT_MS) {
        throw new Error(`one input took ${ms.toFixed(1)} ms of CPU (limit ${MAX_INPUT_MS} ms)`);
      }
      slowest = Math.max(slowest, ms);
    });
    const seed = env("FUZZ_SEED");
    await fc.assert(property, {
      numRuns: runs,
      seed: seed === undefined ? undefined : Number(seed),
      path: env("FUZZ_PATH"),
      endOnFailure: env("FUZZ_PATH") !== undefined,
    });
    console.log(
      `  ${target.name}: ${runs} inputs, ${(100 * accepted / runs).toFixed(1)} % parsed, slowest ${
        slowest.toFixed(2)
      } ms of CPU`,
    );
  });
}

/**
 * Bytes that start as a valid encoding from `valid` and get up to 8 byte edits, then maybe a
 * cut or some random tail: most of them fail deep inside the parser, not at its first check.
 *
 * @example
 * ```ts
 * const frames = mutated(fc.constant(validFrame));
 * ```
 */
export function mutated(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(
    valid,
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
    fc.option(fc.nat(), { freq: 3 }),
    fc.option(fc.uint8Array({ maxLength: 16 }), { freq: 5 }),
  ).map(([bytes, edits, cut, tail]) => {
    let out = bytes.slice();
    if (out.length > 0) { for (const [at, value] of edits) out[at % out.length] = value; }
    if (cut !== null) out = out.subarray(0, cut % (out.length + 1));
    if (tail !== null) {
      const longer = new Uint8Array(out.length + tail.length);
      longer.set(out);
      longer.set(tail, out.length);
      out = longer;
    }
    return out;
  });
}

/**
 * The same bytes cut into chunks at random points (empty chunks included), as a stream
 * delivers them.
 *
 * @example
 * ```ts
 * fc.sample(chunked(fc.constant(new Uint8Array(10))), 1)[0]; // e.g. [3 bytes, 0 bytes, 7 bytes]
 * ```
 */
export function chunked(bytes: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array[]> {
  return fc.tuple(bytes, fc.array(fc.nat(), { maxLength: 12 })).map(([all, cuts]) => {
    const points = cuts.map((c) => c % (all.length + 1)).sort((a, b) => a - b);
    const chunks: Uint8Array[] = [];
    let at = 0;
    for (const p of points) {
      chunks.push(all.subarray(at, p));
      at = p;
    }
    chunks.push(all.subarray(at));
    return chunks;
  });
}

/** Concatenates byte arrays. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export { fc };
