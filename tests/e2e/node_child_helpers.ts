/** Runs `node_start_child.ts` in child processes and reads its JSON event lines. */
import type { ChildConfig } from "./node_start_child.ts";

const CHILD = new URL("./node_start_child.ts", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;

/** One JSON line of the child. */
export type ChildEvent = { event: string } & Record<string, unknown>;

/** A running child node. */
export interface ChildNode {
  process: Deno.ChildProcess;
  events: ChildEvent[];
  /** Resolves with the first event (past or future) matching `match`. */
  waitFor(match: (e: ChildEvent) => boolean, what: string, timeoutMs?: number): Promise<ChildEvent>;
  /** Everything the child wrote on stderr so far. */
  stderr(): string;
  /** Sends a signal and resolves with the exit code and the ms until the process ended. */
  terminate(signal?: Deno.Signal): Promise<{ code: number; exitMs: number }>;
}

/**
 * Starts a child node; `wrap` prefixes the command (e.g. `ip netns exec <ns>`).
 *
 * @example
 * ```ts
 * const child = spawnChildNode({ network });
 * await child.waitFor((e) => e.event === "ready", "ready");
 * ```
 */
export function spawnChildNode(config: ChildConfig, wrap: string[] = []): ChildNode {
  return spawnJsonChild(CHILD, config, { wrap });
}

/**
 * Runs `script` with its JSON `config` as argument in a child Deno process that writes one JSON
 * event per line on stdout. `wrap` prefixes the command (e.g. `ip netns exec <ns>`),
 * `denoFlags` go before the script.
 *
 * @example
 * ```ts
 * const child = spawnJsonChild("./tests/e2e/vpn_child.ts", config, { wrap: ["ip", "netns", "exec", "ns1"] });
 * ```
 */
export function spawnJsonChild(
  script: string,
  config: unknown,
  options: { wrap?: string[]; denoFlags?: string[] } = {},
): ChildNode {
  const wrap = options.wrap ?? [];
  const args = [
    "run",
    "-A",
    "--unstable-net",
    ...(options.denoFlags ?? []),
    script,
    JSON.stringify(config),
  ];
  const [cmd, ...rest] = wrap.length
    ? [...wrap, Deno.execPath(), ...args]
    : [Deno.execPath(), ...args];
  const process = new Deno.Command(cmd, {
    args: rest,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const events: ChildEvent[] = [];
  const waiters = new Set<
    { match: (e: ChildEvent) => boolean; resolve: (e: ChildEvent) => void }
  >();
  let err = "";
  let exited: Deno.CommandStatus | undefined;
  process.status.then((s) => exited = s);
  const stdout = (async () => {
    let buffered = "";
    for await (const text of process.stdout.pipeThrough(new TextDecoderStream())) {
      buffered += text;
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const e = JSON.parse(buffered.slice(0, nl)) as ChildEvent;
        buffered = buffered.slice(nl + 1);
        events.push(e);
        for (const w of [...waiters]) {
          if (w.match(e)) {
            waiters.delete(w);
            w.resolve(e);
          }
        }
      }
    }
  })();
  const stderr = (async () => {
    for await (const text of process.stderr.pipeThrough(new TextDecoderStream())) {
      err = (err + text).slice(-100_000);
    }
  })();
  return {
    process,
    events,
    stderr: () => err,
    waitFor(match, what, timeoutMs = 20_000) {
      const hit = events.find(match);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const w = {
          match,
          resolve: (e: ChildEvent) => {
            clearTimeout(timer);
            resolve(e);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          const state = exited
            ? `had exited (code ${exited.code}, signal ${exited.signal})`
            : "still running";
          reject(
            new Error(
              `child ${process.pid} (${state}): timed out waiting for ${what}; stderr:\n${
                err.slice(-2000)
              }`,
            ),
          );
        }, timeoutMs);
        waiters.add(w);
      });
    },
    async terminate(signal: Deno.Signal = "SIGTERM") {
      const t0 = performance.now();
      try {
        process.kill(signal);
      } catch {
        // already gone
      }
      const status = await process.status;
      const exitMs = performance.now() - t0;
      await Promise.all([stdout, stderr]);
      return { code: status.code, exitMs };
    },
  };
}

/**
 * For the child scripts: resolves with the first SIGTERM or SIGINT, its listeners removed.
 *
 * @example
 * ```ts
 * const signal = await untilStopSignal(); // "SIGTERM"
 * ```
 */
export async function untilStopSignal(): Promise<"SIGTERM" | "SIGINT"> {
  const { promise, resolve } = Promise.withResolvers<"SIGTERM" | "SIGINT">();
  const handlers = (["SIGTERM", "SIGINT"] as const).map((s) => [s, () => resolve(s)] as const);
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);
  const signal = await promise;
  for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  return signal;
}
