/**
 * Two homes behind two NAT routers and one public member, in network namespaces (needs root,
 * iproute2 and iptables), for NAT tests and the NAT benchmark:
 *
 *     home A (192.168.a.2, fd00:a::2) ── router A [MASQUERADE] ──┐
 *                                                                 ├── WAN bridge ── public member
 *     home B (192.168.b.2, fd00:b::2) ── router B [MASQUERADE] ──┘   (10.w.0.1, 3fff:w::1)
 *
 * The WAN has an IPv4 range js-libp2p calls private (10/8) and an IPv6 range of the
 * documentation prefix 3fff::/20 (RFC 9637), which js-libp2p takes for public: hole punching
 * only tries addresses it believes public, so it can be exercised on the IPv6 side.
 * Router modes: `plain` only masquerades (an unsolicited SYN gets a RST), `drop` also drops
 * unsolicited WAN packets (a home router's usual firewall, which TCP hole punching needs).
 */
import { type Namespace, namespace, sh } from "./netns.ts";

/** How the routers treat unsolicited packets from the WAN. */
export type RouterMode = "plain" | "drop";

/** The namespaces of a NAT topology and their addresses. */
export interface NatTopology {
  /** The public member: reachable from both homes. */
  pub: Namespace & { address6: string };
  homeA: Namespace & { address6: string };
  homeB: Namespace & { address6: string };
  routerA: Namespace & { wan4: string; wan6: string };
  routerB: Namespace & { wan4: string; wan6: string };
  /** Bytes through the public member's WAN interface, both directions. */
  pubBytes(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Why this topology cannot be built here (not root, no `ip` or `iptables`), or undefined.
 *
 * @example
 * ```ts
 * Deno.test({ name: "…", ignore: natTopologySkipReason() !== undefined, fn: async () => {} });
 * ```
 */
export function natTopologySkipReason(): string | undefined {
  if (Deno.build.os !== "linux") return "NAT namespaces need Linux";
  if (Deno.uid() !== 0) return "NAT namespaces need root";
  for (const tool of ["ip", "iptables", "ip6tables"]) {
    const found = ["/usr/sbin/", "/sbin/", "/usr/bin/"].some((dir) => {
      try {
        Deno.statSync(dir + tool);
        return true;
      } catch {
        return false;
      }
    });
    if (!found) return `the ${tool} command is missing (apt-get install iproute2 iptables)`;
  }
  return undefined;
}

/**
 * Builds the topology with unique namespace and interface names; `wan` picks the WAN ranges
 * (10.`wan`.0.0/24 and 3fff:`wan`::/64), so parallel topologies must use different values.
 *
 * @example
 * ```ts
 * const topo = await createNatTopology("drop", 77);
 * try {
 *   await topo.homeA.run("ping", ["-c", "1", topo.pub.address]);
 * } finally {
 *   await topo.close();
 * }
 * ```
 */
export async function createNatTopology(mode: RouterMode, wan: number): Promise<NatTopology> {
  const id = crypto.randomUUID().slice(0, 5);
  const ns = (role: string) => `nat${id}${role}`;
  const names = {
    wan: ns("w"),
    pub: ns("p"),
    rA: ns("ra"),
    rB: ns("rb"),
    hA: ns("ha"),
    hB: ns("hb"),
  };
  const created: string[] = [];
  const close = async () => {
    for (const n of created.reverse()) await sh("ip", ["netns", "del", n]).catch(() => {});
  };
  const x = (n: string, ...args: string[]) => sh("ip", ["netns", "exec", n, ...args]);
  const link = async (a: string, aNs: string, b: string, bNs: string) => {
    await sh("ip", ["link", "add", a, "netns", aNs, "type", "veth", "peer", b, "netns", bNs]);
  };
  try {
    for (const n of Object.values(names)) {
      await sh("ip", ["netns", "add", n]);
      created.push(n);
      await sh("ip", ["-n", n, "link", "set", "lo", "up"]);
      await x(n, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0");
      await x(n, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0");
    }
    await sh("ip", ["-n", names.wan, "link", "add", "br0", "type", "bridge"]);
    await sh("ip", ["-n", names.wan, "link", "set", "br0", "up"]);
    const pubIf = `p${id}`;
    await link(pubIf, names.pub, `wp${id}`, names.wan);
    await sh("ip", ["-n", names.wan, "link", "set", `wp${id}`, "master", "br0", "up"]);
    const pub4 = `10.${wan}.0.1`;
    const pub6 = `3fff:${wan}::1`;
    await sh("ip", ["-n", names.pub, "addr", "add", `${pub4}/24`, "dev", pubIf]);
    await sh("ip", ["-n", names.pub, "-6", "addr", "add", `${pub6}/64`, "dev", pubIf, "nodad"]);
    await sh("ip", ["-n", names.pub, "link", "set", pubIf, "up"]);
    const sides = [];
    for (const [i, side] of [[0, "a"], [1, "b"]] as const) {
      const router = i === 0 ? names.rA : names.rB;
      const home = i === 0 ? names.hA : names.hB;
      const lanNet = 11 + i;
      const wanIf = `r${side}${id}`;
      const lanIf = `l${side}${id}`;
      const homeIf = `h${side}${id}`;
      await link(wanIf, router, `w${side}${id}`, names.wan);
      await sh("ip", ["-n", names.wan, "link", "set", `w${side}${id}`, "master", "br0", "up"]);
      await link(homeIf, home, lanIf, router);
      const wan4 = `10.${wan}.0.${2 + i}`;
      const wan6 = `3fff:${wan}::${2 + i}`;
      const home4 = `192.168.${lanNet}.2`;
      const home6 = `fd00:${lanNet}::2`;
      await sh("ip", ["-n", router, "addr", "add", `${wan4}/24`, "dev", wanIf]);
      await sh("ip", ["-n", router, "-6", "addr", "add", `${wan6}/64`, "dev", wanIf, "nodad"]);
      await sh("ip", ["-n", router, "addr", "add", `192.168.${lanNet}.1/24`, "dev", lanIf]);
      await sh("ip", [
        "-n",
        router,
        "-6",
        "addr",
        "add",
        `fd00:${lanNet}::1/64`,
        "dev",
        lanIf,
        "nodad",
      ]);
      await sh("ip", ["-n", router, "link", "set", wanIf, "up"]);
      await sh("ip", ["-n", router, "link", "set", lanIf, "up"]);
      await x(router, "sysctl", "-qw", "net.ipv4.ip_forward=1");
      await x(router, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1");
      await sh("ip", ["-n", home, "addr", "add", `${home4}/24`, "dev", homeIf]);
      await sh("ip", ["-n", home, "-6", "addr", "add", `${home6}/64`, "dev", homeIf, "nodad"]);
      await sh("ip", ["-n", home, "link", "set", homeIf, "up"]);
      await sh("ip", ["-n", home, "route", "add", "default", "via", `192.168.${lanNet}.1`]);
      await sh("ip", ["-n", home, "-6", "route", "add", "default", "via", `fd00:${lanNet}::1`]);
      for (const t of ["iptables", "ip6tables"]) {
        await x(router, t, "-t", "nat", "-A", "POSTROUTING", "-o", wanIf, "-j", "MASQUERADE");
        if (mode === "drop") {
          const established = [
            "-m",
            "conntrack",
            "--ctstate",
            "ESTABLISHED,RELATED",
            "-j",
            "ACCEPT",
          ];
          const icmp = t === "iptables" ? "icmp" : "ipv6-icmp";
          for (const chain of ["INPUT", "FORWARD"]) {
            await x(router, t, "-A", chain, "-i", wanIf, ...established);
            await x(router, t, "-A", chain, "-i", wanIf, "-p", icmp, "-j", "ACCEPT");
            await x(router, t, "-A", chain, "-i", wanIf, "-j", "DROP");
          }
        }
      }
      sides.push({
        home: Object.assign(namespace(home, home4), { address6: home6 }),
        router: Object.assign(namespace(router, wan4), { wan4, wan6 }),
      });
    }
    return {
      pub: Object.assign(namespace(names.pub, pub4), { address6: pub6 }),
      homeA: sides[0].home,
      homeB: sides[1].home,
      routerA: sides[0].router,
      routerB: sides[1].router,
      async pubBytes() {
        const read = (what: string) =>
          x(names.pub, "cat", `/sys/class/net/${pubIf}/statistics/${what}`).then(Number);
        return await read("rx_bytes") + await read("tx_bytes");
      },
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
