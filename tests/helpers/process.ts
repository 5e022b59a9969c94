/** Long-running child processes (`cli.ts` or another program) whose output is collected for assertions. */
import { REPO_ROOT } from "./cli.ts";

/** Where and how a logged child process runs. */
export interface LoggedProcessOptions {
  /** Network namespace to run in (`ip netns exec`). */
  netns?: string;
  /** Variables added to the environment (or the whole environment with `clearEnv`). */
  env?: Record<string, string>;
  /** Start from an empty environment instead of this process's. */
  clearEnv?: boolean;
}

/** A long-running child process (`argv[0]` is the program), optionally inside a namespace. */
export class LoggedProcess {
  readonly child: Deno.ChildProcess;
  #text = "";
  readonly #done: Promise<void>;

  constructor(argv: string[], options: LoggedProcessOptions = {}) {
    const [cmd, ...rest] = options.netns ? ["ip", "netns", "exec", options.netns, ...argv] : argv;
    const child = new Deno.Command(cmd, {
      args: rest,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", ...options.env },
      clearEnv: options.clearEnv,
    }).spawn();
    this.child = child;
    const dec = new TextDecoder();
    const pump = async (s: ReadableStream<Uint8Array>) => {
      for await (const chunk of s) this.#text += dec.decode(chunk, { stream: true });
    };
    this.#done = Promise.all([pump(child.stdout), pump(child.stderr)]).then(() => {});
  }

  /** Everything the process wrote so far (stdout and stderr interleaved). */
  get log(): string {
    return this.#text;
  }

  /** Waits until the log matches `pattern`; throws with the log after `timeoutMs`. */
  async waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const m = this.#text.match(pattern);
      if (m) return m;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no ${pattern} after ${timeoutMs} ms in:\n${this.#text}`);
  }

  /** Sends `signal` and waits for the exit; returns the code and how long it took. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<{ code: number; ms: number }> {
    const t0 = performance.now();
    try {
      this.child.kill(signal);
    } catch { /* already exited */ }
    const status = await this.child.status;
    const ms = performance.now() - t0;
    await this.#done;
    return { code: status.code, ms };
  }

  /** Kills the process if it is still running (for `finally` blocks). */
  async kill(): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch { /* already exited */ }
    await this.child.status;
    await this.#done;
  }
}

/** A CLI child process (e.g. `start`, `api`, `join`), optionally inside a network namespace. */
export class CliProcess extends LoggedProcess {
  constructor(args: string[], options: LoggedProcessOptions = {}) {
    super([Deno.execPath(), "run", "-A", `${REPO_ROOT}cli.ts`, ...args], options);
  }
}

/** Polls `condition` every 100 ms until it holds; throws `what` after `timeoutMs`. */
export async function eventually(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const holds = async () => {
    try {
      return await condition();
    } catch {
      return false;
    }
  };
  while (!(await holds())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
