/**
 * The web dashboard served by the node itself: the page and its assets (embedded, no CDN), a
 * state snapshot, a server-sent event stream that pushes it every second and on ledger changes,
 * and the few writes the page makes that the Go API has no route for.
 */
import type { Context } from "hono";
import type { ApiCredential } from "../api/auth.ts";
import type { ApiLedger } from "../api/components.ts";
import { ApiRequestError } from "../api/errors.ts";
import { ANNOUNCING, type ApiRoute, checkName, readBodyText, sendJson } from "../api/route.ts";
import { dnsRecordsFromLedger } from "../api/routes_dns.ts";
import type { Block } from "../ledger/block.ts";
import { compareGoStrings } from "../ledger/json.ts";
import {
  BUCKETS,
  fileCodec,
  machineCodec,
  type Service,
  serviceCodec,
  type SharedFile,
  type ValueCodec,
} from "../ledger/buckets.ts";
import type { DhcpStatus } from "../metrics/prometheus.ts";
import type { TrafficStats } from "../node/traffic.ts";
import type { VpnCountersSnapshot } from "../vpn/vpn.ts";
import { ASSET_TYPES } from "./embed.ts";
import { DASHBOARD_ASSETS } from "./assets.gen.ts";

/** The node as the dashboard reads it (an `EdgeNode` satisfies it). */
export interface DashboardNode {
  readonly peerId: string;
  multiaddrs(): string[];
  knownPeers(): readonly string[];
  topicPeers(): readonly string[];
  connections(): readonly { peer: string; transport: string; direction: string }[];
  readonly traffic: {
    readonly total: { stats(): TrafficStats };
    byPeer(): Map<string, TrafficStats>;
  };
}

/** Components of {@link createDashboard}. */
export interface DashboardComponents {
  node: DashboardNode;
  ledger: ApiLedger & Pick<EventTarget, "addEventListener" | "removeEventListener">;
  version: string;
  /** How the request was authenticated (decides whether the page offers changes). */
  credential(c: Context): ApiCredential;
  /** Whether requests without credentials may write (`--api-auth=false`, unix sockets). */
  openWrites: boolean;
  vpn?: () => VpnCountersSnapshot | undefined;
  dhcp?: () => DhcpStatus;
}

/** A dashboard: routes to serve beside the API, and a stop that ends its event streams. */
export interface Dashboard {
  readonly routes: ApiRoute[];
  /** The snapshot the page shows. */
  state(writable: boolean): DashboardState;
  /** Starts recording recent blocks. */
  start(): void;
  /** Ends every event stream and stops recording. */
  stop(): void;
}

/** One recent block. */
export interface RecentBlock {
  Index: number;
  Hash: string;
  PrevHash: string;
  Timestamp: string;
  /** Buckets with entries in it. */
  Buckets: number;
  Cause: string;
}

/** What the page shows, pushed every second. */
export interface DashboardState {
  node: {
    id: string;
    version: string;
    addresses: string[];
    vpnAddress?: string;
    dhcp?: string;
  };
  writable: boolean;
  summary: Record<string, number>;
  traffic: { RateIn: number; RateOut: number; TotalIn: number; TotalOut: number };
  machines: Record<string, unknown>[];
  peers: {
    ID: string;
    Connected: boolean;
    Transport: string;
    Direction: string;
    OnChain: boolean;
    RateIn: number;
    RateOut: number;
  }[];
  services: Record<string, string>[];
  files: Record<string, string>[];
  dns: { Regex: string; Records: Map<string, string> }[];
  buckets: Record<string, number>;
  blocks: RecentBlock[];
  vpn?: { packetsIn: number; packetsOut: number; dropped: number };
  time: string;
}

const MACHINE_ONLINE_MS = 20 * 60_000;
const PUSH_MS = 1_000;
const CHANGE_PUSH_MS = 100;
const MAX_BACKLOG = 30;
const MAX_STREAMS = 32;
const RECENT_BLOCKS = 20;
/** Content-Security-Policy of the page: everything from this node, nothing inline. */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/**
 * Creates the dashboard of a node.
 *
 * @example
 * ```ts
 * const dashboard = createDashboard({ node, ledger, version, credential, openWrites: false });
 * createApiServer(components, { routes: dashboard.routes });
 * ```
 */
export function createDashboard(components: DashboardComponents): Dashboard {
  const { node, ledger } = components;
  /** Open event streams, each with whether its viewer may write. */
  const streams = new Map<ReadableStreamDefaultController<Uint8Array>, boolean>();
  const blocks: RecentBlock[] = [];
  const encoder = new TextEncoder();
  let timer: ReturnType<typeof setInterval> | undefined;
  let soon: ReturnType<typeof setTimeout> | undefined;

  const onChange = (e: Event) => {
    const { block, cause } = (e as CustomEvent<{ block: Block; cause: string }>).detail;
    blocks.unshift({
      Index: block.index,
      Hash: block.hash,
      PrevHash: block.prevHash,
      Timestamp: block.timestamp,
      Buckets: block.storage.size,
      Cause: cause,
    });
    blocks.length = Math.min(blocks.length, RECENT_BLOCKS);
    // A change shows at once (a burst of blocks in one push), not at the next tick.
    soon ??= setTimeout(() => {
      soon = undefined;
      push();
    }, CHANGE_PUSH_MS);
  };

  const live = (bucket: string) => {
    const b = ledger.currentData().get(bucket);
    return b ? [...b.keys()].sort(compareGoStrings).map((k) => [k, b.get(k)!] as const) : [];
  };

  const state = (writable: boolean): DashboardState => {
    const data = ledger.currentData();
    const byPeer = node.traffic.byPeer();
    const total = node.traffic.total.stats();
    const connections = new Map(node.connections().map((c) => [c.peer, c]));
    const onChain = new Set(node.topicPeers());
    const online = new Set(ledger.availableNodes(MACHINE_ONLINE_MS));
    const rates = (peer: string) => {
      const s = byPeer.get(peer);
      return {
        RateIn: s?.rateIn ?? 0,
        RateOut: s?.rateOut ?? 0,
        TotalIn: s?.bytesIn ?? 0,
        TotalOut: s?.bytesOut ?? 0,
      };
    };
    const machines = live(BUCKETS.machines).map(([, text]) => {
      const m = machineCodec.parse(text);
      const self = m.PeerID === node.peerId;
      return {
        ...m,
        Self: self,
        Online: self || online.has(m.PeerID),
        Connected: connections.has(m.PeerID),
        OnChain: onChain.has(m.PeerID),
        ...rates(m.PeerID),
      };
    });
    const peerIds = new Set([...node.knownPeers(), ...connections.keys()]);
    peerIds.delete(node.peerId);
    const peers = [...peerIds].sort(compareGoStrings).map((id) => {
      const c = connections.get(id);
      const r = rates(id);
      return {
        ID: id,
        Connected: c !== undefined,
        Transport: c?.transport ?? "",
        Direction: c?.direction ?? "",
        OnChain: onChain.has(id),
        RateIn: r.RateIn,
        RateOut: r.RateOut,
      };
    });
    const dhcp = components.dhcp?.();
    const vpn = components.vpn?.()?.vpn;
    const sum = (t: { packets: number }[]) => t.reduce((n, x) => n + x.packets, 0);
    return {
      node: {
        id: node.peerId,
        version: components.version,
        addresses: node.multiaddrs(),
        vpnAddress: dhcp?.address,
        dhcp: dhcp?.state,
      },
      writable,
      summary: {
        Machines: data.get(BUCKETS.machines)?.size ?? 0,
        Services: data.get(BUCKETS.services)?.size ?? 0,
        Files: data.get(BUCKETS.files)?.size ?? 0,
        Users: data.get(BUCKETS.users)?.size ?? 0,
        DNS: data.get(BUCKETS.dns)?.size ?? 0,
        BlockChain: ledger.index(),
        Peers: connections.size,
        OnChainNodes: onChain.size,
      },
      traffic: {
        RateIn: total.rateIn,
        RateOut: total.rateOut,
        TotalIn: total.bytesIn,
        TotalOut: total.bytesOut,
      },
      machines,
      peers,
      services: live(BUCKETS.services).map(([key, t]) => ({
        ...serviceCodec.parse(t),
        Key: key,
      })),
      files: live(BUCKETS.files).map(([key, t]) => ({
        ...fileCodec.parse(t),
        Key: key,
      })),
      dns: live(BUCKETS.dns).map(([regex, t]) => ({
        Regex: regex,
        Records: dnsRecordsFromLedger(t),
      })),
      buckets: Object.fromEntries([...data].map(([b, keys]) => [b, keys.size])),
      blocks: [...blocks],
      vpn: vpn
        ? {
          packetsIn: sum(Object.values(vpn.received)),
          packetsOut: sum(Object.values(vpn.sent)),
          dropped: Object.values(vpn.dropped).reduce((n, x) => n + x, 0),
        }
        : undefined,
      time: new Date().toISOString(),
    };
  };

  const writableFor = (c: Context) => components.openWrites || components.credential(c) !== "none";

  const push = () => {
    if (streams.size === 0) return;
    // Each stream gets the snapshot for its own credentials; they differ only in `writable`.
    const texts = new Map<boolean, Uint8Array>();
    for (const [controller, writable] of streams) {
      let bytes = texts.get(writable);
      if (bytes === undefined) {
        bytes = encoder.encode(`event: state\ndata: ${toJson(state(writable))}\n\n`);
        texts.set(writable, bytes);
      }
      try {
        // A viewer that stopped reading (30 pushes behind) is dropped, not buffered for.
        if ((controller.desiredSize ?? 0) < -MAX_BACKLOG) controller.close();
        else controller.enqueue(bytes);
      } catch {
        streams.delete(controller);
      }
    }
  };

  const page = (c: Context) => {
    c.header("content-security-policy", CSP);
    c.header("x-frame-options", "DENY");
    c.header("referrer-policy", "no-referrer");
    c.header("cache-control", "no-cache");
    return c.body(DASHBOARD_ASSETS["index.html"], 200, {
      "content-type": ASSET_TYPES[".html"],
    });
  };

  const addNamed = (codec: ValueCodec<Service | SharedFile>) => async (c: Context) => {
    const text = await readBodyText(c, 4096);
    let name: unknown;
    try {
      name = JSON.parse(text)?.Name;
    } catch {
      throw new ApiRequestError(400, "BODY_INVALID", 'Body: expected JSON {"Name": "…"}');
    }
    if (typeof name !== "string") {
      throw new ApiRequestError(400, "BODY_INVALID", 'Body: expected JSON {"Name": "…"}');
    }
    checkName("Name", name, 256);
    const value = codec.value({ PeerID: node.peerId, Name: name });
    ledger.persist(5_000, 20_000, codec.bucket, name, value);
    return sendJson(c, ANNOUNCING);
  };

  const routes: ApiRoute[] = [
    { method: "GET", path: "/", handler: page },
    { method: "GET", path: "/app", handler: (c) => c.redirect("/", 301) },
    {
      method: "GET",
      path: "/assets/*",
      handler: (c) => {
        const path = c.req.path.slice("/assets/".length);
        const body = Object.hasOwn(DASHBOARD_ASSETS, path) ? DASHBOARD_ASSETS[path] : undefined;
        if (body === undefined) {
          throw new ApiRequestError(404, "ASSET_MISSING", `no asset ${JSON.stringify(path)}`);
        }
        const type = ASSET_TYPES[path.slice(path.lastIndexOf("."))] ?? "text/plain";
        return c.body(body, 200, {
          "content-type": type,
          "cache-control": "no-cache",
          "x-content-type-options": "nosniff",
        });
      },
    },
    {
      method: "GET",
      path: "/api/dashboard/state",
      handler: (c) => sendJson(c, state(writableFor(c))),
    },
    {
      method: "GET",
      path: "/api/dashboard/events",
      handler: (c) => {
        if (streams.size >= MAX_STREAMS) {
          throw new ApiRequestError(503, "TOO_MANY_STREAMS", "too many dashboards open");
        }
        const writable = writableFor(c);
        let self: ReadableStreamDefaultController<Uint8Array>;
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            self = controller;
            streams.set(controller, writable);
            controller.enqueue(
              encoder.encode(`retry: 2000\nevent: state\ndata: ${toJson(state(writable))}\n\n`),
            );
          },
          cancel() {
            streams.delete(self);
          },
        });
        return new Response(body, {
          headers: {
            "content-type": "text/event-stream",
            "cache-control": "no-store",
            "x-accel-buffering": "no",
          },
        });
      },
    },
    { method: "POST", path: "/api/dashboard/services", handler: addNamed(serviceCodec) },
    { method: "POST", path: "/api/dashboard/files", handler: addNamed(fileCodec) },
  ];

  return {
    routes,
    state,
    start() {
      if (timer !== undefined) return;
      ledger.addEventListener("change", onChange);
      timer = setInterval(push, PUSH_MS);
    },
    stop() {
      clearInterval(timer);
      clearTimeout(soon);
      timer = undefined;
      soon = undefined;
      ledger.removeEventListener("change", onChange);
      for (const controller of streams.keys()) {
        try {
          controller.close();
        } catch {
          // Already closed by the client.
        }
      }
      streams.clear();
    },
  };
}

/** JSON of a snapshot (Maps as objects). */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => v instanceof Map ? Object.fromEntries(v) : v);
}
