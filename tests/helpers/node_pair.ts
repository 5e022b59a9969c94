/** Two nodes in a pair of network namespaces that know each other: keys, flags and clean-up. */
import { encodeToken, generateNetworkConfig } from "../../lib/config/token.ts";
import { generateIdentity, type Identity } from "../../lib/crypto/identity.ts";
import { PRIVKEY_FILE } from "../../lib/node/privkey.ts";
import { createNamespacePair, type Namespace, type NamespacePair } from "../../scripts/netns.ts";

/**
 * Fast ledger rounds and heartbeats; no DHT, no mDNS: each node knows only the bootstrap peers
 * it is given.
 */
export const QUICK_FLAGS: readonly string[] = [
  "--ledger-announce-interval",
  "2",
  "--ledger-synchronization-interval",
  "1",
  "--aliveness-healthcheck-interval",
  "2",
  "--dht=false",
  "--mdns=false",
];

/**
 * Writes a new node key into `dir` as both implementations cache it (`<dir>/privkey`), so a
 * test knows every node's peer ID before starting it.
 *
 * @example
 * ```ts ignore
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

/** Something a test started that must end with it. */
interface Killable {
  kill(): Promise<void>;
}

/** A namespace pair and a temporary directory, removed when the test ends. */
export interface NamespaceScope {
  pair: NamespacePair;
  dir: string;
  /** Killed (in this order) when the test ends, after the `defer`red clean-ups. */
  processes: Killable[];
  /** Runs `cleanup` when the test ends (API clients to close, …). */
  defer(cleanup: () => void | Promise<void>): void;
}

/** Where {@link withNamespacePair} makes its namespaces and its directory. */
export interface NamespaceScopeOptions {
  /** Prefix of the namespaces' names (their names are random after it). */
  prefix: string;
  /** The veth link's /24 is `10.<subnet>.0.0`. */
  subnet: number;
  /** Prefix of the temporary directory. */
  tempPrefix: string;
}

/**
 * Runs `fn` with a fresh namespace pair and temporary directory; whatever happens, then
 * runs the deferred clean-ups, kills the processes, removes the namespaces and the directory.
 *
 * @example
 * ```ts ignore
 * await withNamespacePair({ prefix: "evx", subnet: 230, tempPrefix: "evx" }, async (s) => {
 *   s.processes.push(new CliProcess(["start"], { netns: s.pair.a.name }));
 * });
 * ```
 */
export async function withNamespacePair(
  options: NamespaceScopeOptions,
  fn: (scope: NamespaceScope) => Promise<void>,
): Promise<void> {
  const pair = await createNamespacePair(options.prefix, options.subnet);
  const dir = await Deno.makeTempDir({ prefix: options.tempPrefix });
  const cleanups: (() => void | Promise<void>)[] = [];
  const processes: Killable[] = [];
  try {
    await fn({ pair, dir, processes, defer: (cleanup) => cleanups.push(cleanup) });
  } finally {
    for (const cleanup of cleanups) await cleanup();
    for (const p of processes) await p.kill();
    await pair.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** One node of a {@link NodePair}. */
export interface PairNode {
  /** The namespace it runs in. */
  ns: Namespace;
  /** `<dir>/<name>`: its key (`privkey`), usable as its state directory or Go's HOME. */
  dir: string;
  id: Identity;
  /** Its listen address: `/ip4/<its veth address>/tcp/4001`. */
  listen: string;
  /** Its listen address with its peer ID, for the other node's bootstrap list. */
  peer: string;
  /** `<dir>/<name>.sock`: a path for its API's unix socket. */
  socket: string;
  /**
   * The flags both implementations take: the token, its listen address, the other node as its
   * only bootstrap peer, its key cache.
   */
  flags: string[];
}

/** Two nodes, `a` in namespace a and `b` in namespace b, each bootstrapping from the other. */
export interface NodePair extends NamespaceScope {
  token: string;
  a: PairNode;
  b: PairNode;
}

/**
 * Runs `fn` with two nodes' keys written into `<dir>/<names[0]>` and `<dir>/<names[1]>` (for
 * namespaces a and b) and the flags that make them meet; clean-up as {@link withNamespacePair}.
 * The token is a new one of ours unless given.
 *
 * @example
 * ```ts ignore
 * await withNodePair({ prefix: "evx", subnet: 230, tempPrefix: "evx" }, async (p) => {
 *   p.processes.push(new CliProcess(["join", ...p.a.flags, ...QUICK_FLAGS], { netns: p.a.ns.name }));
 * });
 * ```
 */
export function withNodePair(
  options: NamespaceScopeOptions & { token?: string; names?: readonly [string, string] },
  fn: (nodes: NodePair) => Promise<void>,
): Promise<void> {
  const token = options.token ?? encodeToken(generateNetworkConfig());
  const [nameA, nameB] = options.names ?? ["a", "b"];
  return withNamespacePair(options, async (scope) => {
    const node = async (ns: Namespace, name: string) => {
      const dir = `${scope.dir}/${name}`;
      const id = await writeNodeKey(dir);
      const listen = `/ip4/${ns.address}/tcp/4001`;
      const peer = `${listen}/p2p/${id.peerId}`;
      return { ns, dir, id, listen, peer, socket: `${dir}.sock` };
    };
    const a = await node(scope.pair.a, nameA);
    const b = await node(scope.pair.b, nameB);
    const flags = (self: typeof a, other: typeof a) => [
      "--token",
      token,
      "--listen-maddrs",
      self.listen,
      "--discovery-bootstrap-peers",
      other.peer,
      "--privkey-cache",
      "--privkey-cache-dir",
      self.dir,
    ];
    await fn({
      ...scope,
      token,
      a: { ...a, flags: flags(a, b) },
      b: { ...b, flags: flags(b, a) },
    });
  });
}
