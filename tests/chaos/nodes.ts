/**
 * Chaos-test support: `edgevpn join` processes that can be killed with SIGKILL and restarted on
 * their state, reached through their API's unix socket, and watched for exits nobody asked for.
 */
import { CliProcess } from "../helpers/process.ts";
import type { LabHost } from "./lab.ts";

/** libfaketime, which shifts a process's wall clock (Debian package `faketime`). */
export const LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/**
 * Environment that runs a process with its wall clock `offsetSeconds` away from the machine's:
 * libfaketime preloaded, monotonic clocks left alone (timers keep their real pace).
 */
export function skewedClockEnv(offsetSeconds: number): Record<string, string> {
  return {
    LD_PRELOAD: LIBFAKETIME,
    FAKETIME: `${offsetSeconds >= 0 ? "+" : ""}${offsetSeconds}s`,
    DONT_FAKE_MONOTONIC: "1",
  };
}

/** One node of the chaos test: a `join` process on `host`, restarted on the same state. */
export class ChaosNode {
  readonly name: string;
  readonly host: LabHost;
  readonly socket: string;
  readonly stateDir: string;
  /** Processes that ended without being told to (with their log's tail). */
  readonly unexpectedExits: string[] = [];
  kills = 0;
  starts = 0;
  #proc: CliProcess | undefined;
  /** The last process, kept for its log once stopped or killed. */
  #last: CliProcess | undefined;
  #ready = false;
  #client: Deno.HttpClient | undefined;
  readonly #args: () => string[];

  constructor(name: string, host: LabHost, stateDir: string, args: () => string[]) {
    this.name = name;
    this.host = host;
    this.stateDir = stateDir;
    this.socket = `${stateDir}/api.sock`;
    this.#args = args;
  }

  /** True between "VPN up" and the next kill or stop. */
  get ready(): boolean {
    return this.#ready;
  }

  /** The log of the running process, or of the last one. */
  get log(): string {
    return (this.#proc ?? this.#last)?.log ?? "";
  }

  get pid(): number | undefined {
    return this.#proc?.child.pid;
  }

  /** Starts the process (with `env` added, e.g. a skewed clock); resolves once it is spawned. */
  start(env: Record<string, string> = {}): void {
    if (this.#proc) throw new Error(`${this.name} is running`);
    const proc = new CliProcess(this.#args(), { netns: this.host.name, env });
    this.#proc = proc;
    this.#last = proc;
    this.starts++;
    proc.child.status.then((status) => {
      if (this.#proc === proc) {
        this.#proc = undefined;
        this.#ready = false;
        this.unexpectedExits.push(
          `${this.name} exited by itself (code ${status.code}, signal ${status.signal}):\n` +
            proc.log.slice(-3000),
        );
      }
    });
  }

  /** Waits for "VPN up" of the current process; returns the address it logged. */
  async waitReady(timeoutMs = 60_000): Promise<string> {
    const proc = this.#proc;
    if (!proc) throw new Error(`${this.name} is not running`);
    const m = await proc.waitFor(/VPN up: interface \S+ with address ([\d.]+)\//, timeoutMs);
    if (this.#proc === proc) this.#ready = true;
    return m[1];
  }

  /** SIGKILL, as a crash or power loss would end it. */
  async kill9(): Promise<void> {
    const proc = this.#proc;
    if (!proc) return;
    this.#proc = undefined;
    this.#ready = false;
    this.#closeClient();
    await proc.kill();
    this.kills++;
  }

  /** SIGTERM; returns the exit code and how long the exit took. */
  async stop(): Promise<{ code: number; ms: number; log: string }> {
    const proc = this.#proc;
    if (!proc) throw new Error(`${this.name} is not running`);
    this.#proc = undefined;
    this.#ready = false;
    this.#closeClient();
    const out = await proc.stop("SIGTERM");
    return { ...out, log: proc.log };
  }

  /** A request to the node's API over its unix socket; throws on failure to connect. */
  async request(method: string, path: string, timeoutMs = 5_000): Promise<Response> {
    this.#client ??= Deno.createHttpClient({ proxy: { transport: "unix", path: this.socket } });
    return await fetch(`http://localhost${path}`, {
      method,
      client: this.#client,
      signal: AbortSignal.timeout(timeoutMs),
    });
  }

  /** GET `path` as JSON. */
  async json<T>(path: string): Promise<T> {
    const res = await this.request("GET", path);
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`${this.name} GET ${path}: ${res.status}`);
    }
    return await res.json() as T;
  }

  /** The hash of the node's last block. */
  async head(): Promise<string> {
    const text = await (await this.request("GET", "/api/blockchain")).text();
    const m = text.match(/"Hash":"([0-9a-f]*)","PrevHash":"[0-9a-f]*"\}\s*$/);
    if (!m) throw new Error(`${this.name}: no block hash in ${text.slice(-200)}`);
    return m[1];
  }

  /** Kills whatever still runs (for `finally`). */
  async dispose(): Promise<void> {
    this.#closeClient();
    const proc = this.#proc;
    this.#proc = undefined;
    await proc?.kill();
  }

  #closeClient(): void {
    this.#client?.close();
    this.#client = undefined;
  }
}
