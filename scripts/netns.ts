/** Network namespaces joined by a veth pair, for end-to-end tests and benchmarks (needs root). */

/** A network namespace created for a test or benchmark. */
export interface Namespace {
  name: string;
  /** Address of this side of the veth pair (no prefix). */
  address: string;
  /** Runs a command inside the namespace and returns its output; throws on failure. */
  run(cmd: string, args: string[]): Promise<string>;
  /** Starts a long-running command inside the namespace. */
  spawn(cmd: string, args: string[], options?: Deno.CommandOptions): Deno.ChildProcess;
}

/** Two namespaces linked by a veth pair on a /24, removed by `close()`. */
export interface NamespacePair {
  a: Namespace;
  b: Namespace;
  close(): Promise<void>;
}

/**
 * Why namespaces cannot be used here, or undefined when they can (root, `ip`, `/dev/net/tun`).
 *
 * @example
 * ```ts
 * const why = namespaceSkipReason();
 * Deno.test({ name: "…", ignore: why !== undefined, fn: async () => {} });
 * ```
 */
export function namespaceSkipReason(options: { tun?: boolean } = {}): string | undefined {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (Deno.uid() !== 0) return "network namespaces need root";
  try {
    Deno.statSync("/usr/sbin/ip");
  } catch {
    try {
      Deno.statSync("/sbin/ip");
    } catch {
      return "the ip command (iproute2) is missing";
    }
  }
  if (options.tun) {
    try {
      Deno.statSync("/dev/net/tun");
    } catch {
      return "/dev/net/tun is missing";
    }
  }
  return undefined;
}

/**
 * Runs a command to completion; throws with its stderr when it fails.
 *
 * @example
 * ```ts
 * await sh("ip", ["link", "show"]);
 * ```
 */
export async function sh(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", stdin: "null" })
    .output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${dec.decode(out.stderr).trim()}`);
  }
  return dec.decode(out.stdout);
}

/**
 * The namespace `name` (which must exist) with its address on the test network.
 *
 * @example
 * ```ts
 * await namespace("evv1", "10.231.0.1").run("ip", ["addr"]);
 * ```
 */
export function namespace(name: string, address: string): Namespace {
  return {
    name,
    address,
    run: (cmd, args) => sh("ip", ["netns", "exec", name, cmd, ...args]),
    spawn: (cmd, args, options = {}) =>
      new Deno.Command("ip", {
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        ...options,
        args: ["netns", "exec", name, cmd, ...args],
      }).spawn(),
  };
}

/**
 * Creates two namespaces `<prefix>a`/`<prefix>b` (unique suffix added) joined by a veth pair
 * with addresses `10.<n>.0.1/24` and `10.<n>.0.2/24`, loopback up in both.
 *
 * @example
 * ```ts
 * const pair = await createNamespacePair("t");
 * try {
 *   await pair.a.run("ping", ["-c", "1", pair.b.address]);
 * } finally {
 *   await pair.close();
 * }
 * ```
 */
export async function createNamespacePair(prefix = "evpn", subnet = 200): Promise<NamespacePair> {
  const id = crypto.randomUUID().slice(0, 6);
  const nsA = `${prefix}${id}a`;
  const nsB = `${prefix}${id}b`;
  const vethA = `v${id}a`;
  const vethB = `v${id}b`;
  const addrA = `10.${subnet}.0.1`;
  const addrB = `10.${subnet}.0.2`;
  const created: string[] = [];
  const close = async () => {
    for (const ns of created.reverse()) {
      await sh("ip", ["netns", "del", ns]).catch(() => {});
    }
  };
  try {
    for (const ns of [nsA, nsB]) {
      await sh("ip", ["netns", "add", ns]);
      created.push(ns);
      await sh("ip", ["-n", ns, "link", "set", "lo", "up"]);
    }
    await sh("ip", [
      "link",
      "add",
      vethA,
      "netns",
      nsA,
      "type",
      "veth",
      "peer",
      vethB,
      "netns",
      nsB,
    ]);
    await sh("ip", ["-n", nsA, "addr", "add", `${addrA}/24`, "dev", vethA]);
    await sh("ip", ["-n", nsB, "addr", "add", `${addrB}/24`, "dev", vethB]);
    await sh("ip", ["-n", nsA, "link", "set", vethA, "up"]);
    await sh("ip", ["-n", nsB, "link", "set", vethB, "up"]);
  } catch (e) {
    await close();
    throw e;
  }
  return { a: namespace(nsA, addrA), b: namespace(nsB, addrB), close };
}

/** Namespaces joined by one bridge (itself in a namespace of its own), removed by `close()`. */
export interface NamespaceLan {
  nodes: Namespace[];
  close(): Promise<void>;
}

/**
 * Creates `count` namespaces with addresses `10.<subnet>.0.1` … on one bridged LAN (/24),
 * loopback up everywhere.
 *
 * @example
 * ```ts
 * const lan = await createNamespaceLan("evv", 3, 231);
 * await lan.nodes[0].run("ping", ["-c", "1", lan.nodes[2].address]);
 * await lan.close();
 * ```
 */
export async function createNamespaceLan(
  prefix: string,
  count: number,
  subnet: number,
): Promise<NamespaceLan> {
  const id = crypto.randomUUID().slice(0, 5);
  const hub = `${prefix}${id}h`;
  const created: string[] = [];
  const close = async () => {
    for (const ns of created.reverse()) await sh("ip", ["netns", "del", ns]).catch(() => {});
  };
  const nodes: Namespace[] = [];
  try {
    await sh("ip", ["netns", "add", hub]);
    created.push(hub);
    await sh("ip", ["-n", hub, "link", "add", "br0", "type", "bridge"]);
    await sh("ip", ["-n", hub, "link", "set", "br0", "up"]);
    for (let i = 0; i < count; i++) {
      const name = `${prefix}${id}${i}`;
      const address = `10.${subnet}.0.${i + 1}`;
      await sh("ip", ["netns", "add", name]);
      created.push(name);
      await sh("ip", ["-n", name, "link", "set", "lo", "up"]);
      await sh("ip", [
        "link",
        "add",
        `v${id}${i}`,
        "netns",
        name,
        "type",
        "veth",
        "peer",
        `b${id}${i}`,
        "netns",
        hub,
      ]);
      await sh("ip", ["-n", hub, "link", "set", `b${id}${i}`, "master", "br0", "up"]);
      await sh("ip", ["-n", name, "addr", "add", `${address}/24`, "dev", `v${id}${i}`]);
      await sh("ip", ["-n", name, "link", "set", `v${id}${i}`, "up"]);
      nodes.push(namespace(name, address));
    }
  } catch (e) {
    await close();
    throw e;
  }
  return { nodes, close };
}
