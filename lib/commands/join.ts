/** `edgevpn join` (and the root command): the node with the VPN, as Go EdgeVPN's root command. */
import type { CommandContext } from "./context.ts";
import { loadNetworkConfig } from "../config/load.ts";
import type { Settings } from "../config/options.ts";
import { expandHome } from "../config/settings.ts";
import { encodeToken } from "../config/token.ts";
import { leaseFileName } from "../crypto/derive.ts";
import { DHCP_PREFIX, obtainAddress, serveDhcp } from "../dhcp/dhcp.ts";
import { createMesh } from "../mesh/mesh.ts";
import { writeFileAtomic } from "../util/atomic_file.ts";
import { UsageError } from "../util/errors.ts";
import { startTracing, stopTracing } from "../util/trace.ts";
import { tuneMalloc } from "../../ffi/malloc.ts";
import type { DhcpStatus } from "../metrics/prometheus.ts";
import type { DnsServer } from "../dns/server.ts";
import type { Egress } from "../egress/mod.ts";
import {
  createVpn,
  type DataPlane,
  parseVpnAddress,
  type Vpn,
  vpnComponentsOf,
} from "../vpn/mod.ts";
import { meshOptionsOf, untilAborted } from "./common.ts";
import { servicePlanOf, servicesOptionsOf, startServices } from "./services.ts";
import { loadOrCreateStateNetwork } from "./network_state.ts";
import { assertCanCreateTun } from "./privileges.ts";

/**
 * Joins the network with the VPN until SIGINT/SIGTERM. Without a token or config it creates a
 * network in the state directory (or reuses the one created before) and prints its token.
 *
 * @example
 * ```ts
 * // sudo edgevpn join --token $TOKEN --address 10.1.0.2/24
 * ```
 */
export async function runJoin(ctx: CommandContext): Promise<void> {
  const s = { ...ctx.settings };
  s.mtu = vpnMtu(s, ctx);
  const dataPlane: DataPlane = s.vpnProtocol;
  if (!s.dhcp) parseVpnAddress(s.address);
  const dnsModule = s.dns === "" ? undefined : await import("./dns.ts");
  const dnsOptions = dnsModule?.dnsOptionsOf(s, s.dns, "--dns");
  const plan = servicePlanOf(s);
  const network = await loadNetworkConfig({
    token: s.token,
    configPath: s.config === "" ? "" : expandHome(s.config, ctx.home),
  }) ?? await stateNetwork(ctx);
  await assertCanCreateTun(compiledBinary());

  // A stable peer ID keeps this node's address across restarts (the ledger ties machines
  // entries to their owner), so join caches its key unless told otherwise.
  const settings: Settings = {
    ...s,
    privkeyCache: ctx.explicit.has("privkeyCache") ? s.privkeyCache : true,
  };
  if (s.vpnTrace !== "") startTracing();
  // Packet buffers of 64 KiB come and go by the thousand each second: give them pages of their
  // own so that freed ones go back to the system (15–25 MB less peak RSS under a flow).
  tuneMalloc();
  const mesh = await createMesh(
    meshOptionsOf(settings, network, { home: ctx.home, logger: ctx.log, alive: true }),
  );
  await mesh.start();
  ctx.log.info(`Node ID: ${mesh.peerId}`);
  ctx.log.info(`Node Addresses: ${mesh.node.multiaddrs().join(" ")}`);
  const stops: (() => Promise<void>)[] = [() => mesh.stop()];
  try {
    const running: { vpn?: Vpn; dns?: DnsServer; egress?: Egress } = {};
    const dhcp: DhcpStatus = s.dhcp
      ? { enabled: true, state: "waiting" }
      : { enabled: false, state: "static", address: s.address };
    // The API comes first: the dashboard shows the node while DHCP waits for an address.
    if (s.api) {
      // Loaded only when asked for: the API, metrics and dashboard modules take 7 MB of RSS.
      const { startNodeApi } = await import("./api_server.ts");
      const api = await startNodeApi(mesh, {
        listen: s.apiListen,
        settings: s,
        home: ctx.home,
        logger: ctx.log,
        out: ctx.out,
        vpn: () => running.vpn?.counters(),
        dhcp: () => dhcp,
        dns: () => running.dns?.counters(),
        egress: () => running.egress?.counters(),
      });
      stops.unshift(() => api.stop());
    }
    // Services need no VPN address: they run while DHCP waits.
    if (plan.expose.length > 0 || plan.connect.length > 0) {
      const services = await startServices(mesh, plan, {
        ...servicesOptionsOf(ctx),
        giveUpAfterMs: undefined,
      });
      stops.unshift(() => services.stop());
    }
    // Egress needs no VPN address: it serves while DHCP waits.
    if (s.egress) {
      const egress = await (await import("./egress.ts")).startEgressOf(mesh, s, ctx.log);
      running.egress = egress;
      stops.unshift(() => egress.stop());
    }
    let address = s.address;
    if (s.dhcp) {
      const ip = await obtainAddress(mesh.ledger, mesh.peerId, {
        base: s.address.split("/")[0],
        leaseDir: expandHome(s.leaseDir, ctx.home),
        leaseName: leaseFileName(network),
        signal: ctx.signal,
        connectedPeers: () => mesh.node.connectedPeers(),
        logger: ctx.log,
      });
      address = `${ip}/${DHCP_PREFIX}`;
      Object.assign(dhcp, { state: "leased", address });
    }
    const started = createVpn(vpnComponentsOf(mesh, { logger: ctx.log }), {
      interfaceName: s.interface,
      address,
      mtu: s.mtu,
      bootstrapIface: s.bootstrapIface,
      router: s.router,
      staticPeertable: s.staticPeertable,
      streamTimeoutMs: s.timeout,
      announceIntervalMs: s.ledgerAnnounceInterval,
      dataPlane,
      offload: s.tunOffload,
    });
    await started.start();
    running.vpn = started;
    stops.unshift(() => started.stop());
    ctx.log.info(`VPN up: interface ${started.interfaceName} with address ${address}`);
    // The VPN node of the lowest address answers the DHCP requests of nodes joining with --dhcp
    // (every VPN node runs this; see serveDhcp).
    const dhcpServer = new AbortController();
    const serving = serveDhcp(mesh.ledger, mesh.peerId, {
      signal: dhcpServer.signal,
      logger: ctx.log,
    });
    stops.unshift(async () => {
      dhcpServer.abort();
      await serving;
    });
    // After the VPN: the DNS server may listen on the VPN address.
    if (dnsModule && dnsOptions) {
      const dns = await dnsModule.startDnsServer(mesh, dnsOptions, ctx.log);
      running.dns = dns;
      stops.unshift(() => dns.stop());
    }
    // A node that no longer forwards must not look alive: it stops and exits 1.
    const failure = await Promise.race([untilAborted(ctx.signal), started.failure]);
    if (failure) throw failure;
  } finally {
    ctx.log.info("stopping");
    for (const stop of stops) await stop();
    if (s.vpnTrace !== "") {
      const marks = new TextEncoder().encode(JSON.stringify(stopTracing()));
      await writeFileAtomic(expandHome(s.vpnTrace, ctx.home), marks, { mode: 0o644 });
    }
  }
}

/**
 * The interface MTU: IPv6 needs at least 1280, so with an IPv6 address and no `--mtu` the
 * default (1200) is raised to 1280, and an explicit smaller one is refused.
 */
function vpnMtu(s: Settings, ctx: CommandContext): number {
  if (s.dhcp || !s.address.includes(":")) return s.mtu;
  if (s.mtu >= 1280) return s.mtu;
  if (ctx.explicit.has("mtu")) {
    throw new UsageError(
      "FLAG_CONFLICT",
      `--mtu: IPv6 (--address ${s.address}) needs an MTU of at least 1280, got ${s.mtu}`,
    );
  }
  ctx.log.info(`MTU ${s.mtu} raised to 1280, the least IPv6 allows (set --mtu to choose)`);
  return 1280;
}

async function stateNetwork(ctx: CommandContext) {
  const dir = expandHome(ctx.settings.stateDir, ctx.home);
  const state = await loadOrCreateStateNetwork(dir, ctx.settings.keyOtpInterval);
  const token = encodeToken(state.network);
  if (state.created) {
    const binary = compiledBinary();
    const join = binary ? `sudo ${binary} join` : "sudo ./deno task join";
    ctx.out(
      `Created a new network, saved in ${state.path} (later runs of join reuse it).\n\n` +
        `Network token (anyone holding it can join; share it only with your machines):\n\n` +
        `${token}\n\nOn the next machine, run this and paste the token when asked:\n\n` +
        `  ${join} --dhcp --token-file -\n\n` +
        `(or save it in a file only root can read and pass --token-file FILE; --token TOKEN also ` +
        `works, but shows the token to every local user in the process list)\n\n`,
    );
  } else {
    ctx.log.info(`using the network saved in ${state.path}`);
  }
  return state.network;
}

/** The path of this executable when it is a `deno compile` binary, else undefined. */
function compiledBinary(): string | undefined {
  const exe = Deno.execPath();
  return /(^|\/)deno$/.test(exe) ? undefined : exe;
}
