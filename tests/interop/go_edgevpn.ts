/** Go EdgeVPN v0.35 as the reference peer of the interop tests: finding, checking and running it. */
import assert from "node:assert/strict";
import { namespaceSkipReason } from "../../scripts/netns.ts";
import { LoggedProcess } from "../helpers/process.ts";
import { type NamespaceScopeOptions, type NodePair, withNodePair } from "../helpers/node_pair.ts";

/** The environment variable naming the Go EdgeVPN binary. */
export const GO_BINARY_ENV = "EDGEVPN_GO";

/** The release line the interop tests are written against. */
const GO_VERSION = /^edgevpn version (v0\.35\.\d+)\b/m;

/** The Go binary's path and version, or why the interop tests cannot run. */
export type GoBinary = { path: string; version: string } | { skip: string };

/**
 * Finds the Go EdgeVPN binary named by `EDGEVPN_GO` and checks that it runs and is v0.35.x.
 *
 * @example
 * ```ts
 * const go = findGoBinary();
 * if ("skip" in go) console.log(go.skip);
 * ```
 */
export function findGoBinary(): GoBinary {
  const path = Deno.env.get(GO_BINARY_ENV);
  if (!path) return { skip: `${GO_BINARY_ENV} is not set (path of a Go EdgeVPN v0.35 binary)` };
  let out: Deno.CommandOutput;
  try {
    out = new Deno.Command(path, { args: ["--version"], stdin: "null", clearEnv: true })
      .outputSync();
  } catch (e) {
    return { skip: `${GO_BINARY_ENV}=${path} cannot be run: ${(e as Error).message}` };
  }
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const version = text.match(GO_VERSION)?.[1];
  if (!out.success || version === undefined) {
    const said = text.trim().split("\n")[0] || `exit code ${out.code}`;
    return { skip: `${GO_BINARY_ENV}=${path} is not Go EdgeVPN v0.35 (--version: ${said})` };
  }
  return { path, version };
}

/**
 * The Go binary when the interop tests can run here (binary, root, `ip`, and `/dev/net/tun` when
 * `tun`), else undefined after printing why, prefixed by `what`.
 *
 * @example
 * ```ts
 * const go = interopGoBinary("ledger interop tests", { tun: false });
 * Deno.test({ name: "…", ignore: go === undefined, fn: async () => {} });
 * ```
 */
export function interopGoBinary(
  what: string,
  options: { tun?: boolean } = {},
): { path: string; version: string } | undefined {
  const go = findGoBinary();
  const skip = "skip" in go ? go.skip : namespaceSkipReason(options);
  if (skip === undefined) return go as { path: string; version: string };
  console.log(`${what} skipped: ${skip}`);
  return undefined;
}

/**
 * Runs the Go binary with `args` (no environment) and returns what it printed; fails the test
 * with its stderr when it fails.
 *
 * @example
 * ```ts ignore
 * const token = await runGo(binary, ["-g", "-b"]);
 * ```
 */
export async function runGo(binary: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(binary, { args, clearEnv: true }).output();
  assert.ok(out.success, `${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout).trim();
}

/**
 * {@link withNodePair} with a token made by Go (`-g -b`): the Go node is `a` in `<dir>/go`
 * and ours `b` in `<dir>/deno` unless `names` say otherwise.
 *
 * @example
 * ```ts ignore
 * await withGoPair(binary, { prefix: "evx", subnet: 230, tempPrefix: "evx" }, async (p) => {
 *   p.processes.push(new GoProcess(binary, p.a.flags, { netns: p.a.ns.name, home: p.a.dir }));
 * });
 * ```
 */
export async function withGoPair(
  binary: string,
  options: NamespaceScopeOptions & { names?: readonly [string, string] },
  fn: (nodes: NodePair) => Promise<void>,
): Promise<void> {
  const token = await runGo(binary, ["-g", "-b"]);
  await withNodePair({ names: ["go", "deno"], ...options, token }, fn);
}

/**
 * A Go EdgeVPN process in a network namespace, with `home` as its HOME (Go keeps its key cache
 * and DHCP leases there by default) and an environment holding nothing else but `env`, so no
 * EdgeVPN variable of the caller leaks in. Go logs JSON lines on stdout.
 *
 * @example
 * ```ts
 * const go = new GoProcess(binary, ["api", "--token", token], { netns: "ev1", home: dir });
 * await go.waitFor(/Node ID/);
 * ```
 */
export class GoProcess extends LoggedProcess {
  constructor(
    binary: string,
    args: string[],
    options: { netns: string; home: string; env?: Record<string, string> },
  ) {
    super([binary, ...args], {
      netns: options.netns,
      clearEnv: true,
      env: {
        ...options.env,
        HOME: options.home,
        PATH: Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      },
    });
  }
}

/**
 * An HTTP client for a node's API on a unix socket (reachable from any network namespace).
 *
 * @example
 * ```ts
 * const api = new UnixApi(`${dir}/go.sock`);
 * const summary = await api.get("/api/summary");
 * api.close();
 * ```
 */
export class UnixApi {
  readonly #client: Deno.HttpClient;

  constructor(readonly socket: string) {
    this.#client = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
  }

  /** Sends `method path` and returns the parsed JSON answer; throws on a non-2xx status. */
  async request(method: string, path: string): Promise<unknown> {
    const res = await fetch(`http://edgevpn${path}`, { method, client: this.#client });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path} on ${this.socket}: ${res.status} ${text}`);
    return JSON.parse(text);
  }

  /** `GET path` as parsed JSON. */
  get(path: string): Promise<unknown> {
    return this.request("GET", path);
  }

  /** Closes the client's connections. */
  close(): void {
    this.#client.close();
  }
}

/**
 * The ownership violations in a node's log (Go's or ours) that are not stale deliveries. A
 * gossiped block can arrive after a newer one (a message published before a peer's subscription
 * was known reaches it later through gossip, and a full block built just before a peer's own
 * write relays that peer's previous entry); both implementations then refuse the older entry
 * and log it (Go: "rollback to an older version", "stale …"; ours: `rollback`, `…_stale`). Any
 * other violation (signature, owner, hijack) means the two implementations disagree.
 *
 * @example
 * ```ts
 * assert.deepEqual(unexpectedViolations(goNode.log), []);
 * ```
 */
export function unexpectedViolations(log: string): string[] {
  return log.split("\n").filter((line) =>
    /ownership violation/.test(line) && !/rollback|stale/.test(line)
  );
}

/**
 * The gossip messages our node dropped, by reason, from its `/api/counters`: ledger messages it
 * could not decode or verify, and hub messages with a bad envelope or seal. Empty when every
 * message of the Go peer was understood.
 *
 * @example
 * ```ts
 * assert.deepEqual(await droppedMessages(ourApi), {});
 * ```
 */
export async function droppedMessages(api: UnixApi): Promise<Record<string, number>> {
  const counters = await api.get("/api/counters") as {
    Ledger: { rejectedMessages: Record<string, number> };
    Node: Record<string, number>;
  };
  const dropped: Record<string, number> = {};
  for (const [reason, n] of Object.entries(counters.Ledger.rejectedMessages)) {
    dropped[`ledger.${reason}`] = n;
  }
  for (const [name, n] of Object.entries(counters.Node)) {
    if (name.startsWith("hub.dropped.") && n > 0) dropped[name] = n;
  }
  return dropped;
}
