/**
 * The chaos tests' network: hosts in namespaces of their own behind one router namespace, with
 * partitions and packet loss as iptables rules in the router and a userspace delay line (see
 * delay_line.ts) that policy routing switches on for every host.
 *
 * The hosts sit on a router rather than a bridge because the delay line replaces `tc netem`,
 * which these kernels lack: a packet must be routed to reach the delay line's TUN device.
 */
import { type Namespace, namespace, sh } from "../../scripts/netns.ts";

const DELAY_LINE = new URL("./delay_line.ts", import.meta.url).pathname;
const DELAY_DEVICE = "dly0";
const DELAY_TABLE = "100";
const PARTITION_CHAIN = "CHAOS_PART";
const LOSS_CHAIN = "CHAOS_LOSS";

/** A host of the lab: a namespace with one address on its own link to the router. */
export interface LabHost extends Namespace {
  /** Index of the host, which is also its link's subnet (`10.<lan>.<index>.0/24`). */
  index: number;
  /** Name of the router's side of the host's link. */
  routerLink: string;
}

/** The lab; everything it made goes away with `close()`. */
export interface ChaosLab {
  /** The router namespace. */
  router: Namespace;
  hosts: LabHost[];
  /** Adds `count` hosts (on new links to the router) and returns them. */
  addHosts(count: number): Promise<LabHost[]>;
  /** Drops every packet between a host of `a` and a host of `b`, both ways. */
  partition(a: LabHost[], b: LabHost[]): Promise<void>;
  /** Removes the partition. */
  heal(): Promise<void>;
  /** Drops each forwarded packet with `probability` (0 removes the rule). */
  setLoss(probability: number): Promise<void>;
  /** Sends every packet between hosts through the delay line (or stops doing so). */
  setDelay(on: boolean): Promise<void>;
  close(): Promise<void>;
}

/**
 * Creates a router namespace running a delay line of `delayMs`, and `count` hosts.
 *
 * @example
 * ```ts
 * const lab = await createChaosLab("evc", 5, 240, 200);
 * await lab.setDelay(true);
 * await lab.close();
 * ```
 */
export async function createChaosLab(
  prefix: string,
  count: number,
  lan: number,
  delayMs: number,
): Promise<ChaosLab> {
  const id = crypto.randomUUID().slice(0, 5);
  const created: string[] = [];
  const hosts: LabHost[] = [];
  let delayOn = false;
  let delayLine: Deno.ChildProcess | undefined;
  const routerName = `${prefix}${id}r`;
  const router = namespace(routerName, `10.${lan}.0.1`);
  const inRouter = (cmd: string, args: string[]) => router.run(cmd, args);

  const close = async () => {
    if (delayLine) {
      try {
        delayLine.kill("SIGTERM");
      } catch { /* already gone */ }
      await delayLine.output().catch(() => {});
      delayLine = undefined;
    }
    for (const ns of created.reverse()) await sh("ip", ["netns", "del", ns]).catch(() => {});
    created.length = 0;
  };

  const addHost = async (index: number): Promise<LabHost> => {
    const name = `${prefix}${id}${index}`;
    const address = `10.${lan}.${index}.2`;
    const routerLink = `b${id}${index}`;
    const hostLink = `v${id}${index}`;
    await sh("ip", ["netns", "add", name]);
    created.push(name);
    await sh("ip", ["-n", name, "link", "set", "lo", "up"]);
    await sh("ip", [
      "link",
      "add",
      hostLink,
      "netns",
      name,
      "type",
      "veth",
      "peer",
      routerLink,
      "netns",
      routerName,
    ]);
    await sh("ip", ["-n", routerName, "addr", "add", `10.${lan}.${index}.1/24`, "dev", routerLink]);
    await sh("ip", ["-n", routerName, "link", "set", routerLink, "up"]);
    await sh("ip", ["-n", name, "addr", "add", `${address}/24`, "dev", hostLink]);
    await sh("ip", ["-n", name, "link", "set", hostLink, "up"]);
    await sh("ip", ["-n", name, "route", "add", `10.${lan}.0.0/16`, "via", `10.${lan}.${index}.1`]);
    if (delayOn) await delayRule("add", routerLink);
    const host: LabHost = { ...namespace(name, address), index, routerLink };
    hosts.push(host);
    return host;
  };

  const delayRule = (verb: "add" | "del", link: string) =>
    sh("ip", [
      "-n",
      routerName,
      "rule",
      verb,
      "iif",
      link,
      "lookup",
      DELAY_TABLE,
      "priority",
      "100",
    ]);

  const iptables = (...args: string[]) => inRouter("iptables", ["-w", ...args]);

  try {
    await sh("ip", ["netns", "add", routerName]);
    created.push(routerName);
    await sh("ip", ["-n", routerName, "link", "set", "lo", "up"]);
    for (
      const key of [
        "net.ipv4.ip_forward=1",
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.default.rp_filter=0",
      ]
    ) await inRouter("sysctl", ["-q", "-w", key]);
    await iptables("-N", PARTITION_CHAIN);
    await iptables("-N", LOSS_CHAIN);
    await iptables("-A", "FORWARD", "-j", PARTITION_CHAIN);
    await iptables("-A", "FORWARD", "-j", LOSS_CHAIN);
    delayLine = router.spawn(Deno.execPath(), [
      "run",
      "-A",
      DELAY_LINE,
      DELAY_DEVICE,
      `${delayMs}`,
    ]);
    const reader = delayLine.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const first = await reader.read();
    reader.releaseLock();
    if (!first.value?.includes("ready")) {
      const err = await new Response(delayLine.stderr).text();
      throw new Error(`the delay line did not start: ${err}`);
    }
    // Its output is read again only on close; drain it meanwhile so it never blocks.
    void delayLine.stdout.pipeTo(new WritableStream()).catch(() => {});
    void delayLine.stderr.pipeTo(new WritableStream()).catch(() => {});
    await inRouter("sysctl", ["-q", "-w", `net.ipv4.conf.${DELAY_DEVICE}.rp_filter=0`]);
    await sh("ip", [
      "-n",
      routerName,
      "route",
      "add",
      "default",
      "dev",
      DELAY_DEVICE,
      "table",
      DELAY_TABLE,
    ]);
    for (let i = 1; i <= count; i++) await addHost(i);
  } catch (e) {
    await close();
    throw e;
  }

  return {
    router,
    hosts,
    async addHosts(n) {
      const start = hosts.length + 1;
      const added: LabHost[] = [];
      for (let i = 0; i < n; i++) added.push(await addHost(start + i));
      return added;
    },
    async partition(a, b) {
      for (const x of a) {
        for (const y of b) {
          await iptables("-A", PARTITION_CHAIN, "-s", x.address, "-d", y.address, "-j", "DROP");
          await iptables("-A", PARTITION_CHAIN, "-s", y.address, "-d", x.address, "-j", "DROP");
        }
      }
    },
    async heal() {
      await iptables("-F", PARTITION_CHAIN);
    },
    async setLoss(probability) {
      await iptables("-F", LOSS_CHAIN);
      if (probability > 0) {
        // Packets on their way into the delay line pass FORWARD twice: count only their
        // second pass, so that each packet is lost with `probability` once.
        await iptables(
          "-A",
          LOSS_CHAIN,
          "!",
          "-o",
          DELAY_DEVICE,
          "-m",
          "statistic",
          "--mode",
          "random",
          "--probability",
          `${probability}`,
          "-j",
          "DROP",
        );
      }
    },
    async setDelay(on) {
      if (on === delayOn) return;
      delayOn = on;
      for (const h of hosts) await delayRule(on ? "add" : "del", h.routerLink);
      // Routes cached for the old path would keep packets on it.
      await sh("ip", ["-n", routerName, "route", "flush", "cache"]).catch(() => {});
    },
    close,
  };
}
