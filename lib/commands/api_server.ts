/** Starts the HTTP API of a running mesh in one call, as every command with an API does: access rules, token, login link. */
import {
  allowedHostsFor,
  apiAccess,
  type ApiBandwidth,
  type ApiPeerGate,
  type ApiRoute,
  type ApiServer,
  ApiSessions,
  createApiServer,
  exposureOf,
  formatApiAddress,
  loadOrCreateApiToken,
  parseApiListen,
} from "../api/mod.ts";
import type { Settings } from "../config/options.ts";
import type { DnsCounters } from "../dns/server.ts";
import type { EgressCounters } from "../egress/egress.ts";
import type { ProxyCounters } from "../proxy/proxy.ts";
import { expandHome } from "../config/settings.ts";
import type { Mesh } from "../mesh/mesh.ts";
import { createDashboard } from "../dashboard/dashboard.ts";
import { createNodeMetrics, type DhcpStatus } from "../metrics/prometheus.ts";
import type { TrafficStats } from "../node/traffic.ts";
import { VERSION } from "../version.ts";
import type { VpnCountersSnapshot } from "../vpn/vpn.ts";
import type { Logger } from "../util/logger.ts";
import { flattenCounters } from "./common.ts";

/** What {@link startNodeApi} needs besides the mesh. */
export interface NodeApiContext {
  /** `host:port` or `unix:///path`. */
  listen: string;
  settings: Settings;
  home: string | undefined;
  logger: Logger;
  /** Where the login link is printed (standard output). */
  out: (text: string) => void;
  /** Routes of other features served beside the API (the API's access rules apply). */
  routes?: ApiRoute[];
  /** The trust zone's peer gate (`/api/peergate`), once a command runs one. */
  peerGate?: ApiPeerGate;
  /** The VPN's counters once it runs (for `/metrics` and the dashboard). */
  vpn?: () => VpnCountersSnapshot | undefined;
  /** Where the VPN address comes from. */
  dhcp?: () => DhcpStatus;
  /** The DNS server's counters once it runs. */
  dns?: () => DnsCounters | undefined;
  /** The egress node's counters once it runs. */
  egress?: () => EgressCounters | undefined;
  /** The proxy's counters once it runs. */
  proxy?: () => ProxyCounters | undefined;
}

/** Go's `metrics.Stats` of a traffic meter. */
function goStats(s: TrafficStats): ApiBandwidth {
  return { TotalIn: s.bytesIn, TotalOut: s.bytesOut, RateIn: s.rateIn, RateOut: s.rateOut };
}

function goStatsMap(m: Map<string, TrafficStats>): Map<string, ApiBandwidth> {
  return new Map([...m].map(([k, v]) => [k, goStats(v)]));
}

/**
 * Starts the API of `mesh` on `listen`: loads or creates the API token in the state directory
 * (unless `--api-auth=false`), applies the access rules of its exposure, and prints a one-time
 * login link for the dashboard on TCP addresses.
 *
 * @throws {UsageError} `API_LISTEN_INVALID`.
 * @example
 * ```ts ignore
 * const api = await startNodeApi(mesh, { listen: "127.0.0.1:8080", settings, home, logger, out });
 * await api.stop();
 * ```
 */
export async function startNodeApi(mesh: Mesh, ctx: NodeApiContext): Promise<ApiServer> {
  const { settings, logger } = ctx;
  const mode = settings.apiListenUnixMode;
  const target = parseApiListen(ctx.listen);
  const exposure = exposureOf(target);
  const token = settings.apiAuth && exposure !== "unix"
    ? (await loadOrCreateApiToken(expandHome(settings.stateDir, ctx.home))).token
    : undefined;
  if (!settings.apiAuth && exposure === "network") {
    logger.warn("the API is open to the network without authentication (--api-auth=false)");
  }
  const sessions = new ApiSessions();
  const access = apiAccess({
    token,
    exposure,
    hosts: allowedHostsFor(target, settings.apiHosts),
    refreshHosts: () => allowedHostsFor(target, settings.apiHosts),
    sessions,
  });
  const node = mesh.node;
  const metrics = createNodeMetrics({
    node,
    ledger: mesh.ledger,
    vpn: ctx.vpn,
    dhcp: ctx.dhcp,
    dns: ctx.dns,
    egress: ctx.egress,
    proxy: ctx.proxy,
  });
  const dashboard = createDashboard({
    node,
    ledger: mesh.ledger,
    version: VERSION,
    credential: access.credential,
    openWrites: token === undefined,
    vpn: ctx.vpn,
    dhcp: ctx.dhcp,
  });
  const api = createApiServer({
    ledger: mesh.ledger,
    node: {
      peerId: mesh.peerId,
      peerstorePeers: () => node.knownPeers(),
      topicPeers: () => node.topicPeers(),
      connectedPeers: () => node.connectedPeers(),
      counters: () => flattenCounters(node.counters()),
      metrics: () => goStats(node.traffic.total.stats()),
      metricsByProtocol: () => goStatsMap(node.traffic.byProtocol()),
      metricsByPeer: () => goStatsMap(node.traffic.byPeer()),
    },
    peerGate: ctx.peerGate ?? mesh.trustZone,
    logger,
  }, {
    listen: ctx.listen,
    unixSocketMode: mode,
    middleware: access.middleware,
    routes: [...access.routes, ...metrics.routes, ...dashboard.routes, ...(ctx.routes ?? [])],
  });
  await api.start();
  metrics.start();
  dashboard.start();
  const address = api.address!;
  logger.info(`API listening on ${formatApiAddress(address)}`);
  if (address.transport === "tcp") {
    const host = address.hostname === "0.0.0.0" || address.hostname === "::"
      ? "127.0.0.1"
      : address.hostname;
    const base = `http://${formatApiAddress({ ...address, hostname: host })}`;
    ctx.out(
      token === undefined
        ? `Dashboard: ${base}/\n`
        : `Dashboard (one-time login link): ${base}/login?code=${sessions.newLoginCode()}\n`,
    );
  }
  return {
    app: api.app,
    get address() {
      return api.address;
    },
    start: () => api.start(),
    stop: async () => {
      metrics.stop();
      dashboard.stop();
      await api.stop();
    },
  };
}
