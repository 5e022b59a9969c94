/** Go EdgeVPN v0.35 as the reference peer of the interop tests: finding, checking and running it. */
import { generateIdentity, type Identity } from "../../lib/crypto/identity.ts";
import { PRIVKEY_FILE } from "../../lib/node/privkey.ts";
import { namespaceSkipReason } from "../../scripts/netns.ts";
import { LoggedProcess } from "../helpers/process.ts";

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
 * Writes a new node key into `dir` as both implementations cache it (`<dir>/privkey`), so a
 * test knows every node's peer ID before starting it.
 *
 * @example
 * ```ts
 * const id = await writeNodeKey(`${dir}/go`);
 * const bootstrap = `/ip4/10.9.0.1/tcp/4001/p2p/${id.peerId}`;
 * ```
 */
export async function writeNodeKey(dir: string): Promise<Identity> {
  const identity = await generateIdentity();
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  await Deno.writeFile(`${dir}/${PRIVKEY_FILE}`, identity.privateKeyProtobuf, { mode: 0o600 });
  return identity;
}

/**
 * A Go EdgeVPN process in a network namespace, with `home` as its HOME (Go keeps its key cache
 * and DHCP leases there by default) and an environment holding nothing else, so no EdgeVPN
 * variable of the caller leaks in. Go logs JSON lines on stdout.
 *
 * @example
 * ```ts
 * const go = new GoProcess(binary, ["api", "--token", token], { netns: "ev1", home: dir });
 * await go.waitFor(/Node ID/);
 * ```
 */
export class GoProcess extends LoggedProcess {
  constructor(binary: string, args: string[], options: { netns: string; home: string }) {
    super([binary, ...args], {
      netns: options.netns,
      clearEnv: true,
      env: { HOME: options.home, PATH: Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin" },
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
