/** Two VPN nodes (ours or Go EdgeVPN's) joined over a namespace pair, for benchmarks and traces. */
import { encodeToken, generateNetworkConfig } from "../lib/config/token.ts";
import { generateIdentity } from "../lib/crypto/identity.ts";
import type { Namespace } from "./netns.ts";

/**
 * Which program runs one end: our `cli.ts join` (this checkout's, or the `cli.ts` of another
 * checkout, to compare two versions) or a Go EdgeVPN binary.
 */
export type Implementation = { kind: "deno"; cli?: string } | { kind: "go"; binary: string };

/** How to start the pair. */
export interface VpnPairOptions {
  /** Programs on side a and side b. */
  sides: [Implementation, Implementation];
  /** `--vpn-protocol` of our nodes (Go nodes only speak `/edgevpn/0.1`). */
  protocol: "auto" | "legacy";
  mtu: number;
  /** Tunnel subnet `10.<subnet>.0.0/24`. */
  subnet: number;
  /** Extra environment of our node on side a and on side b (e.g. `EDGEVPNVPNTRACE`). */
  env?: [Record<string, string>, Record<string, string>];
  /** Where our nodes' stderr goes (default discarded). */
  stderr?: "null" | "inherit" | "piped";
}

/** A running pair. */
export interface VpnPair {
  /** Tunnel addresses of side a and side b. */
  addressA: string;
  addressB: string;
  /** Node processes, side a first. */
  children: Deno.ChildProcess[];
  /** Milliseconds from starting side b to the first ping reply through the tunnel. */
  firstPingMs: number;
  /** Stops both nodes (SIGTERM) and removes their state. */
  close(): Promise<void>;
}

const ROOT = new URL("../", import.meta.url).pathname;
// Our nodes run exactly as `deno task join` runs them (same runtime flags).
const JOIN_TASK: string = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks.join;
const JOIN_ARGS = JOIN_TASK.split(/\s+/).slice(1).map((a) => a === "cli.ts" ? `${ROOT}cli.ts` : a);

/**
 * Starts a node on each side of `a`/`b` with a fresh network and keys (side b bootstraps from
 * side a and the other way round) and waits for the first ping reply through the tunnel.
 *
 * @example
 * ```ts
 * const vpn = await startVpnPair(pair.a, pair.b, {
 *   sides: [{ kind: "deno" }, { kind: "deno" }], protocol: "auto", mtu: 1420, subnet: 96,
 * });
 * await pair.a.run("ping", ["-c", "3", vpn.addressB]);
 * await vpn.close();
 * ```
 */
export async function startVpnPair(
  a: Namespace,
  b: Namespace,
  options: VpnPairOptions,
): Promise<VpnPair> {
  const dir = await Deno.makeTempDir({ prefix: "bench-vpn-" });
  const token = encodeToken(generateNetworkConfig());
  const ids = [await generateIdentity(), await generateIdentity()];
  const nodes = [
    { ns: a, vpn: `10.${options.subnet}.0.1`, id: ids[0], dir: `${dir}/a` },
    { ns: b, vpn: `10.${options.subnet}.0.2`, id: ids[1], dir: `${dir}/b` },
  ];
  for (const n of nodes) {
    await Deno.mkdir(n.dir, { recursive: true });
    await Deno.writeFile(`${n.dir}/privkey`, n.id.privateKeyProtobuf, { mode: 0o600 });
  }
  const children: Deno.ChildProcess[] = [];
  const close = async () => {
    for (const c of children) {
      try {
        c.kill("SIGTERM");
      } catch { /* gone */ }
      await c.status;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const start = (i: number) => {
    const n = nodes[i];
    const peer = nodes[1 - i];
    const side = options.sides[i];
    const common = [
      "--token",
      token,
      "--address",
      `${n.vpn}/24`,
      "--interface",
      `evb${i}`,
      "--mtu",
      String(options.mtu),
      "--listen-maddrs",
      `/ip4/${n.ns.address}/tcp/4001`,
      "--discovery-bootstrap-peers",
      `/ip4/${peer.ns.address}/tcp/4001/p2p/${peer.id.peerId}`,
      "--mdns=false",
      "--dht=false",
      "--privkey-cache",
      "--privkey-cache-dir",
      n.dir,
      "--log-level",
      "warn",
    ];
    if (side.kind === "go") {
      children.push(n.ns.spawn(side.binary, [...common, "--packet-mtu", String(options.mtu)], {
        env: { HOME: n.dir },
        stdout: "null",
        stderr: options.stderr ?? "null",
      }));
      return;
    }
    const join = side.cli === undefined
      ? JOIN_ARGS
      : JOIN_ARGS.map((a) => a === `${ROOT}cli.ts` ? side.cli! : a);
    children.push(n.ns.spawn(Deno.execPath(), [
      ...join,
      ...common,
      "--vpn-protocol",
      options.protocol,
      "--state-dir",
      n.dir,
    ], { env: options.env?.[i] ?? {}, stdout: "null", stderr: options.stderr ?? "null" }));
  };
  try {
    start(0);
    for (let i = 0; i < 100; i++) {
      if ((await a.run("ip", ["-j", "addr", "show"])).includes(nodes[0].vpn)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const t0 = performance.now();
    start(1);
    let firstPingMs = NaN;
    while (performance.now() - t0 < 60_000) {
      const ok = await a.run("ping", ["-c", "1", "-W", "0.2", nodes[1].vpn]).then(
        () => true,
        () => false,
      );
      if (ok) {
        firstPingMs = performance.now() - t0;
        break;
      }
    }
    if (isNaN(firstPingMs)) throw new Error("no ping reply through the tunnel within 60 s");
    return { addressA: nodes[0].vpn, addressB: nodes[1].vpn, children, firstPingMs, close };
  } catch (e) {
    await close();
    throw e;
  }
}
