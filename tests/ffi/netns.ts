/** Test support: throw-away network namespaces, and running synchronous code inside one. */

import { libc, Linux } from "../../ffi/libc.ts";
import { cString } from "../../ffi/ptr.ts";

const CLONE_NEWNET = 0x40000000;
const O_RDONLY = 0;

let setnsLibrary:
  | Deno.DynamicLibrary<{ setns: { parameters: ["i32", "i32"]; result: "i32" } }>
  | undefined;

/** Why the real TUN tests cannot run here, or undefined when they can. */
export function tunTestsUnavailable(): string | undefined {
  if (Deno.build.os !== "linux") return "TUN tests need Linux";
  if (Deno.uid() !== 0) return "TUN tests need root (CAP_NET_ADMIN)";
  try {
    Deno.statSync("/dev/net/tun");
  } catch {
    return "TUN tests need /dev/net/tun";
  }
  const ip = new Deno.Command("ip", { args: ["netns", "list"], stdout: "null", stderr: "null" });
  try {
    if (!ip.outputSync().success) return "TUN tests need `ip netns`";
  } catch {
    return "TUN tests need iproute2 (`ip`)";
  }
  return undefined;
}

/** Runs a command and returns its stdout; throws with stderr when it fails. */
export async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${text.decode(out.stderr).trim()}`);
  }
  return text.decode(out.stdout);
}

/**
 * A network namespace that exists until disposed: `await using ns = await Netns.create()`.
 */
export class Netns {
  private constructor(readonly name: string) {}

  /** Creates `edgevpn-test-<random>` with its loopback up. */
  static async create(): Promise<Netns> {
    const name = `edgevpn-test-${crypto.randomUUID().slice(0, 8)}`;
    await run("ip", ["netns", "add", name]);
    const ns = new Netns(name);
    try {
      await ns.ip("link", "set", "lo", "up");
    } catch (e) {
      await ns.delete();
      throw e;
    }
    return ns;
  }

  /** Runs `ip -n <ns> ...`. */
  ip(...args: string[]): Promise<string> {
    return run("ip", ["-n", this.name, ...args]);
  }

  /** Runs `ip -n <ns> -j ...` and parses the JSON. */
  async ipJson<T>(...args: string[]): Promise<T> {
    return JSON.parse(await run("ip", ["-n", this.name, "-j", ...args])) as T;
  }

  /** Starts a command inside the namespace. */
  spawn(cmd: string, args: string[]): Deno.ChildProcess {
    return new Deno.Command("ip", {
      args: ["netns", "exec", this.name, cmd, ...args],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  }

  /**
   * Runs synchronous `fn` with this thread inside the namespace, then switches back. Sockets
   * and interfaces created by synchronous FFI calls in `fn` belong to the namespace.
   */
  enter<T>(fn: () => T): T {
    setnsLibrary ??= Deno.dlopen(
      "libc.so.6",
      {
        setns: { parameters: ["i32", "i32"], result: "i32" },
      } as const,
    );
    const { setns } = setnsLibrary.symbols;
    const flags = O_RDONLY | Linux.O_CLOEXEC;
    const own = libc().open(cString("/proc/thread-self/ns/net"), flags, 0);
    const target = libc().open(cString(`/run/netns/${this.name}`), flags, 0);
    try {
      if (own < 0 || target < 0) throw new Error(`Cannot open namespace files of ${this.name}`);
      if (setns(target, CLONE_NEWNET) !== 0) throw new Error(`Cannot enter ${this.name}`);
      let outcome: { value: T } | { error: unknown };
      try {
        outcome = { value: fn() };
      } catch (error) {
        outcome = { error };
      }
      if (setns(own, CLONE_NEWNET) !== 0) throw new Error("Cannot return to own namespace");
      if ("error" in outcome) throw outcome.error;
      return outcome.value;
    } finally {
      if (own >= 0) libc().close(own);
      if (target >= 0) libc().close(target);
    }
  }

  /** Deletes the namespace (and every interface left in it). */
  async delete(): Promise<void> {
    await run("ip", ["netns", "delete", this.name]);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.delete();
  }
}

/** Number of open file descriptors of this process. */
export function openFdCount(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}
