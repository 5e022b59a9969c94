/** Routes about the network: summary, machines, nodes, peer store, users, services, files, metrics, peer gate. */

import { compareGoStrings } from "../ledger/json.ts";
import { BUCKETS, fileCodec, machineCodec, serviceCodec, userCodec } from "../ledger/buckets.ts";
import type { ApiBandwidth } from "./components.ts";
import { ApiRequestError } from "./errors.ts";
import { type ApiRoute, type ApiRouteContext, pathParam, quoteInput, sendJson } from "./route.ts";

const MINUTE_MS = 60_000;
/** Go's `/api/machines` counts a machine online with a heartbeat in the last 20 minutes. */
const MACHINE_ONLINE_MS = 20 * MINUTE_MS;
/** Go's `/api/nodes` lists peers with a heartbeat in the last 10 minutes. */
const NODE_ONLINE_MS = 10 * MINUTE_MS;

const ZERO_BANDWIDTH: ApiBandwidth = { TotalIn: 0, TotalOut: 0, RateIn: 0, RateOut: 0 };

/**
 * The routes about the network and this node, in Go's shapes.
 *
 * @example
 * ```ts
 * const routes = networkRoutes({ components, settings: DEFAULT_API_SETTINGS });
 * ```
 */
export function networkRoutes(ctx: ApiRouteContext): ApiRoute[] {
  const { ledger, node, peerGate } = ctx.components;

  /** Live values of a bucket in key order (Go iterates a map: random order). */
  const values = (bucket: string): string[] => {
    const live = ledger.currentData().get(bucket);
    if (!live) return [];
    return [...live.keys()].sort(compareGoStrings).map((k) => live.get(k)!);
  };
  const count = (bucket: string) => ledger.currentData().get(bucket)?.size ?? 0;
  const sorted = (peers: Iterable<string>) => [...new Set(peers)].sort(compareGoStrings);
  const bandwidth = (b: ApiBandwidth) => ({
    TotalIn: b.TotalIn,
    TotalOut: b.TotalOut,
    RateIn: b.RateIn,
    RateOut: b.RateOut,
  });
  const bandwidthMap = (m: ReadonlyMap<string, ApiBandwidth>) =>
    new Map([...m].map(([k, v]) => [k, bandwidth(v)]));

  const routes: ApiRoute[] = [
    {
      method: "GET",
      path: "/api/summary",
      handler: (c) =>
        sendJson(c, {
          Files: count(BUCKETS.files),
          Machines: count(BUCKETS.machines),
          Users: count(BUCKETS.users),
          Services: count(BUCKETS.services),
          BlockChain: ledger.index(),
          OnChainNodes: new Set(node.topicPeers()).size,
          Peers: new Set([...node.peerstorePeers(), node.peerId]).size,
          NodeID: node.peerId,
        }),
    },
    {
      method: "GET",
      path: "/api/machines",
      handler: (c) => {
        const online = new Set(ledger.availableNodes(MACHINE_ONLINE_MS));
        const onChain = new Set(node.topicPeers());
        const connected = new Set(node.connectedPeers());
        return sendJson(
          c,
          values(BUCKETS.machines).map((text) => {
            const m = machineCodec.parse(text);
            return {
              ...m,
              Connected: connected.has(m.PeerID),
              OnChain: onChain.has(m.PeerID),
              Online: online.has(m.PeerID),
            };
          }),
        );
      },
    },
    {
      method: "GET",
      path: "/api/nodes",
      handler: (c) =>
        sendJson(
          c,
          sorted([...ledger.availableNodes(NODE_ONLINE_MS), ...node.topicPeers()])
            .map((id) => ({ ID: id, Online: true })),
        ),
    },
    {
      method: "GET",
      path: "/api/peerstore",
      handler: (c) =>
        sendJson(
          c,
          sorted([...node.peerstorePeers(), node.peerId]).map((id) => ({ ID: id, Online: false })),
        ),
    },
    {
      method: "GET",
      path: "/api/users",
      handler: (c) => sendJson(c, values(BUCKETS.users).map((t) => userCodec.parse(t))),
    },
    {
      method: "GET",
      path: "/api/services",
      handler: (c) => sendJson(c, values(BUCKETS.services).map((t) => serviceCodec.parse(t))),
    },
    {
      method: "GET",
      path: "/api/files",
      handler: (c) => sendJson(c, values(BUCKETS.files).map((t) => fileCodec.parse(t))),
    },
    {
      method: "GET",
      path: "/api/counters",
      handler: (c) => sendJson(c, { Ledger: ledger.counters, Node: node.counters?.() ?? {} }),
    },
  ];

  const metrics = node.metrics?.bind(node);
  if (metrics) {
    routes.push({
      method: "GET",
      path: "/api/metrics",
      handler: (c) => sendJson(c, bandwidth(metrics())),
    });
  }
  const byProtocol = node.metricsByProtocol?.bind(node);
  if (byProtocol) {
    routes.push({
      method: "GET",
      path: "/api/metrics/protocol",
      handler: (c) => sendJson(c, bandwidthMap(byProtocol())),
    }, {
      method: "GET",
      path: "/api/metrics/protocol/:protocol",
      handler: (c) =>
        sendJson(c, bandwidth(byProtocol().get(pathParam(c, "protocol")) ?? ZERO_BANDWIDTH)),
    });
  }
  const byPeer = node.metricsByPeer?.bind(node);
  if (byPeer) {
    routes.push({
      method: "GET",
      path: "/api/metrics/peer",
      handler: (c) => sendJson(c, bandwidthMap(byPeer())),
    }, {
      method: "GET",
      path: "/api/metrics/peer/:peer",
      handler: (c) => sendJson(c, bandwidth(byPeer().get(pathParam(c, "peer")) ?? ZERO_BANDWIDTH)),
    });
  }
  if (peerGate) {
    routes.push({
      method: "GET",
      path: "/api/peergate",
      handler: (c) => sendJson(c, peerGate.enabled()),
    }, {
      method: "PUT",
      path: "/api/peergate/:state",
      handler: (c) => {
        const state = pathParam(c, "state");
        if (state !== "enable" && state !== "disable") {
          throw new ApiRequestError(
            400,
            "STATE_INVALID",
            `peergate state: expected "enable" or "disable", got ${quoteInput(state)}`,
          );
        }
        peerGate.setEnabled(state === "enable");
        return sendJson(c, peerGate.enabled());
      },
    });
  }
  return routes;
}
