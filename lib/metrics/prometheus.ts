/** Prometheus metrics of a node at `GET /metrics` (text exposition format, via prom-client), read from the live counters at each scrape. */
import { Counter, Gauge, Registry } from "prom-client";
import type { ApiRoute } from "../api/route.ts";
import type { DnsCounters } from "../dns/server.ts";
import type { EgressCounters } from "../egress/egress.ts";
import type { ProxyCounters } from "../proxy/proxy.ts";
import type { Ledger } from "../ledger/ledger.ts";
import type { NodeCounters } from "../node/node.ts";
import type { TrafficStats } from "../node/traffic.ts";
import { createEventLoopLag, LAG_SAMPLE_MS } from "./event_loop_lag.ts";
import { processErrorCounts } from "../util/process_guard.ts";
import type { VpnCountersSnapshot } from "../vpn/vpn.ts";

/** What the VPN's address came from, for the DHCP metrics. */
export interface DhcpStatus {
  /** `--dhcp` was given. */
  enabled: boolean;
  /** `waiting` for a lease, `leased` (DHCP), `static` (`--address`), `none` (no VPN). */
  state: "waiting" | "leased" | "static" | "none";
  address?: string;
}

/** The node as the metrics read it (an `EdgeNode` satisfies it). */
export interface MetricsNode {
  connectedPeers(): readonly string[];
  knownPeers(): readonly string[];
  topicPeers(): readonly string[];
  connections(): readonly { transport: string; direction: string }[];
  counters(): NodeCounters;
  /** The gossip hub's per-peer figures (an `EdgeNode`'s hub). */
  readonly hub?: { peerStats(): Map<string, { received: number; dropped: number }> };
  readonly traffic: {
    readonly total: { stats(): TrafficStats };
    byPeer(): Map<string, TrafficStats>;
    byProtocol(): Map<string, TrafficStats>;
  };
}

/** Components of {@link createNodeMetrics}. */
export interface MetricsComponents {
  node: MetricsNode;
  ledger: Pick<Ledger, "index" | "currentData" | "counters">;
  /** The VPN's counters once it runs (undefined before, or without a VPN). */
  vpn?: () => VpnCountersSnapshot | undefined;
  dhcp?: () => DhcpStatus;
  /** The DNS server's counters once it runs. */
  dns?: () => DnsCounters | undefined;
  /** The egress node's counters once it runs. */
  egress?: () => EgressCounters | undefined;
  /** The proxy's counters once it runs. */
  proxy?: () => ProxyCounters | undefined;
}

/** A started metrics collector. */
export interface NodeMetrics {
  readonly registry: Registry;
  /** `GET /metrics`. */
  readonly routes: ApiRoute[];
  /** The exposition text, as `GET /metrics` serves it. */
  text(): Promise<string>;
  /** Starts the event-loop lag sampler. */
  start(): void;
  /** Stops the sampler. */
  stop(): void;
}

type Labelled = [Record<string, string>, number];

// One sample per key of `counts`, the key as the value of `label` (an absent count reads 0).
function byLabel(label: string, counts: Record<string, number | undefined>): Labelled[] {
  return Object.entries(counts).map(([key, n]): Labelled => [{ [label]: key }, n ?? 0]);
}

// The samples of a part that may not run (VPN, DNS, egress, proxy): none while it does not.
function whenRunning<T>(part: (() => T | undefined) | undefined) {
  return (pick: (counters: T) => Labelled[]) => (): Labelled[] => {
    const counters = part?.();
    return counters === undefined ? [] : pick(counters);
  };
}

/**
 * Creates the metrics of a node. Every value is read from the node's own counters when
 * Prometheus scrapes; only the event-loop lag needs a sampler (started by `start()`).
 *
 * @example
 * ```ts ignore
 * const metrics = createNodeMetrics({ node: mesh.node, ledger: mesh.ledger });
 * metrics.start();
 * console.log(await metrics.text());
 * metrics.stop();
 * ```
 */
export function createNodeMetrics(components: MetricsComponents): NodeMetrics {
  const registry = new Registry();
  const { node, ledger } = components;
  const counter = (name: string, help: string, labels: string[], read: () => Labelled[]) =>
    new Counter({
      name,
      help,
      labelNames: labels,
      registers: [registry],
      collect() {
        this.reset();
        for (const [l, v] of read()) this.inc(l, v);
      },
    });
  const gauge = (name: string, help: string, labels: string[], read: () => Labelled[]) =>
    new Gauge({
      name,
      help,
      labelNames: labels,
      registers: [registry],
      collect() {
        this.reset();
        for (const [l, v] of read()) this.set(l, v);
      },
    });
  const inOut = (key: string, m: Map<string, TrafficStats>, pick: "bytes" | "messages") =>
    [...m].flatMap(([k, s]): Labelled[] => [
      [{ [key]: k, direction: "in" }, pick === "bytes" ? s.bytesIn : s.messagesIn],
      [{ [key]: k, direction: "out" }, pick === "bytes" ? s.bytesOut : s.messagesOut],
    ]);
  const vpnRead = whenRunning(components.vpn);

  // Peers and connections.
  gauge(
    "edgevpn_peers",
    "Peers with an open connection",
    [],
    () => [[{}, node.connectedPeers().length]],
  );
  gauge("edgevpn_known_peers", "Peers met since the node started (Go's peerstore)", [], () => [
    [{}, node.knownPeers().length],
  ]);
  gauge("edgevpn_topic_peers", "Peers on the network's gossip topic", [], () => [
    [{}, node.topicPeers().length],
  ]);
  gauge("edgevpn_connections", "Open connections by transport and direction", [
    "transport",
    "direction",
  ], () => {
    const count = new Map<string, Labelled>();
    for (const c of node.connections()) {
      const key = `${c.transport} ${c.direction}`;
      const entry = count.get(key) ?? [{ transport: c.transport, direction: c.direction }, 0];
      entry[1]++;
      count.set(key, entry);
    }
    return [...count.values()];
  });

  // Bytes and messages per peer and per protocol (every libp2p stream and frame-level path).
  counter("edgevpn_bytes_total", "Bytes of every protocol, in and out", ["direction"], () => {
    const s = node.traffic.total.stats();
    return [[{ direction: "in" }, s.bytesIn], [{ direction: "out" }, s.bytesOut]];
  });
  counter(
    "edgevpn_peer_bytes_total",
    "Bytes exchanged with each peer",
    ["peer", "direction"],
    () => inOut("peer", node.traffic.byPeer(), "bytes"),
  );
  counter("edgevpn_peer_messages_total", "Stream writes and data frames exchanged with each peer", [
    "peer",
    "direction",
  ], () => inOut("peer", node.traffic.byPeer(), "messages"));
  counter(
    "edgevpn_protocol_bytes_total",
    "Bytes by libp2p protocol",
    ["protocol", "direction"],
    () => inOut("protocol", node.traffic.byProtocol(), "bytes"),
  );
  counter("edgevpn_protocol_messages_total", "Stream writes and data frames by libp2p protocol", [
    "protocol",
    "direction",
  ], () => inOut("protocol", node.traffic.byProtocol(), "messages"));
  counter("edgevpn_streams_refused_total", "Inbound streams and connections refused, by reason", [
    "reason",
  ], () => {
    const c = node.counters();
    return [[{ reason: "nonMember" }, c.streams.nonMember], ...byLabel("reason", c.refused)];
  });

  // VPN packets.
  const vpnTraffic = (pick: "packets" | "bytes") =>
    vpnRead(({ vpn: v }) =>
      (["fastGso", "fast", "legacy"] as const).flatMap((p): Labelled[] => [
        [{ direction: "out", protocol: p }, v.sent[p][pick]],
        [{ direction: "in", protocol: p }, v.received[p][pick]],
      ])
    );
  counter("edgevpn_vpn_packets_total", "IP packets carried by the VPN, by data-plane protocol", [
    "direction",
    "protocol",
  ], vpnTraffic("packets"));
  counter("edgevpn_vpn_bytes_total", "IP bytes carried by the VPN, by data-plane protocol", [
    "direction",
    "protocol",
  ], vpnTraffic("bytes"));
  const vpnPeers = (pick: "packets" | "bytes") =>
    vpnRead(({ vpn: v }) =>
      [...v.peers].flatMap(([peer, t]): Labelled[] => [
        [{ peer, direction: "out" }, t.sent[pick]],
        [{ peer, direction: "in" }, t.received[pick]],
      ])
    );
  counter("edgevpn_vpn_peer_packets_total", "IP packets carried by the VPN, by peer", [
    "peer",
    "direction",
  ], vpnPeers("packets"));
  counter("edgevpn_vpn_peer_bytes_total", "IP bytes carried by the VPN, by peer", [
    "peer",
    "direction",
  ], vpnPeers("bytes"));
  counter(
    "edgevpn_vpn_packets_dropped_total",
    "VPN packets dropped, by reason",
    ["reason"],
    // Both directions may drop for the same reason (badOffload): their samples add up.
    vpnRead((s) => [
      ...byLabel("reason", s.vpn.dropped),
      ...byLabel("reason", s.vpn.inbound),
      ...byLabel("reason", { tunRxTruncated: s.tun.rxTruncated, tunTxDropped: s.tun.txDropped }),
    ]),
  );

  // Gossip and the ledger.
  counter(
    "edgevpn_gossip_messages_total",
    "Gossip messages received and published",
    ["direction"],
    () => {
      const h = node.counters().hub;
      return [[{ direction: "in" }, h.received], [{ direction: "out" }, h.published]];
    },
  );
  counter(
    "edgevpn_gossip_messages_dropped_total",
    "Gossip messages dropped, by reason",
    ["reason"],
    () => byLabel("reason", node.counters().hub.dropped),
  );
  counter(
    "edgevpn_gossip_peer_messages_total",
    "Gossip messages opened and dropped (rate limits, overload, junk) per delivering peer",
    ["peer", "outcome"],
    () =>
      [...node.hub?.peerStats() ?? []].flatMap(([peer, s]): Labelled[] => [
        [{ peer, outcome: "received" }, s.received],
        [{ peer, outcome: "dropped" }, s.dropped],
      ]),
  );
  counter(
    "edgevpn_peers_banned_total",
    "Peers that are not members banned for sending gossip that does not open",
    [],
    () => [[{}, node.counters().bans]],
  );
  gauge(
    "edgevpn_ledger_height",
    "Index of the ledger's last block",
    [],
    () => [[{}, ledger.index()]],
  );
  gauge(
    "edgevpn_ledger_entries",
    "Live entries per ledger bucket",
    ["bucket"],
    () => [...ledger.currentData()].map(([bucket, keys]): Labelled => [{ bucket }, keys.size]),
  );
  counter(
    "edgevpn_ledger_messages_dropped_total",
    "Ledger messages dropped, by reason",
    ["reason"],
    () => byLabel("reason", ledger.counters.rejectedMessages),
  );
  counter(
    "edgevpn_ledger_sync_total",
    "Ledger sync traffic: full blocks and digests sent, replies sent and withheld, better heads taken from a digest",
    ["kind"],
    () => {
      const c = ledger.counters;
      return [
        [{ kind: "full_block_sent" }, c.fullBlocksSent],
        [{ kind: "digest_sent" }, c.digestsSent],
        [{ kind: "reply_sent" }, c.repliesSent],
        [{ kind: "reply_suppressed" }, c.repliesSuppressed],
        [{ kind: "block_received" }, c.blocksReceived],
        [{ kind: "digest_received" }, c.digestsReceived],
        [{ kind: "head_adopted" }, c.headsAdopted],
      ];
    },
  );
  counter(
    "edgevpn_ledger_entries_rejected_total",
    "Ledger entries rejected, by reason",
    ["reason"],
    () => byLabel("reason", ledger.counters.rejectedEntries),
  );
  counter(
    "edgevpn_ledger_signature_checks_total",
    "Entry signatures of received blocks: verified, answered from the cache, left unchecked",
    ["result"],
    () => byLabel("result", ledger.counters.signatures),
  );
  counter(
    "edgevpn_ledger_broadcasts_total",
    "Full blocks and deltas sent, local writes whose broadcast joined a later one, failed sends",
    ["kind"],
    () => [
      [{ kind: "sent" }, ledger.counters.fullBlocksSent],
      [{ kind: "delta" }, ledger.counters.deltasSent],
      [{ kind: "coalesced" }, ledger.counters.broadcastsCoalesced],
      [{ kind: "failed" }, ledger.counters.sendFailures],
    ],
  );

  // DNS server (when one runs).
  const dnsRead = whenRunning(components.dns);
  const dnsEntries = (
    pick: (d: DnsCounters) => Record<string, number | undefined>,
    key: string,
  ) => dnsRead((d) => byLabel(key, pick(d)));
  const dnsValue = (pick: (d: DnsCounters) => number) => dnsRead((d) => [[{}, pick(d)]]);
  counter(
    "edgevpn_dns_queries_total",
    "DNS queries received, by transport",
    ["transport"],
    dnsEntries((d) => d.queries, "transport"),
  );
  counter(
    "edgevpn_dns_answers_total",
    "DNS answers sent, by source (zone, ledger, forward, cache, refused, servfail, …)",
    ["source"],
    dnsEntries((d) => d.answers, "source"),
  );
  counter(
    "edgevpn_dns_dropped_total",
    "DNS queries dropped without an answer, by reason",
    ["reason"],
    dnsEntries((d) => d.drops, "reason"),
  );
  counter(
    "edgevpn_dns_truncated_total",
    "DNS answers over UDP cut to the header (TC set)",
    [],
    dnsValue((d) => d.truncated),
  );
  counter(
    "edgevpn_dns_forwarded_total",
    "DNS queries sent to forward servers",
    [],
    dnsValue((d) => d.forwarder?.upstreamQueries ?? 0),
  );
  counter(
    "edgevpn_dns_forward_failures_total",
    "Failed exchanges with forward servers, by reason",
    ["reason"],
    dnsEntries((d) => d.forwarder?.upstreamFailures ?? {}, "reason"),
  );
  counter(
    "edgevpn_dns_cache_hits_total",
    "Forwarded questions answered from the cache",
    [],
    dnsValue((d) => d.forwarder?.cacheHits ?? 0),
  );
  counter(
    "edgevpn_dns_cache_misses_total",
    "Forwarded questions not in the cache",
    [],
    dnsValue((d) => d.forwarder?.cacheMisses ?? 0),
  );
  gauge(
    "edgevpn_dns_cache_entries",
    "Forwarded answers in the cache",
    [],
    dnsValue((d) => d.cacheEntries),
  );
  counter(
    "edgevpn_dns_records_skipped_total",
    "Entries of the dns bucket skipped: keys that are not usable expressions, data invalid for its type",
    ["reason"],
    dnsRead((d) =>
      byLabel("reason", { invalid_key: d.invalidKeys, invalid_record: d.invalidRecords })
    ),
  );

  // Egress node (when one runs).
  const egressRead = whenRunning(components.egress);
  counter(
    "edgevpn_egress_requests_total",
    "Requests served as an egress node: Go's HTTP protocol, our tunnel",
    ["kind"],
    egressRead((e) => [[{ kind: "http" }, e.httpRequests], [{ kind: "tunnel" }, e.tunnels]]),
  );
  gauge(
    "edgevpn_egress_active",
    "Egress requests and tunnels open now",
    [],
    egressRead((e) => [[{}, e.active]]),
  );
  counter(
    "edgevpn_egress_refused_total",
    "Egress requests refused or failed, by reason",
    ["reason"],
    egressRead((e) =>
      byLabel("reason", {
        forbidden: e.forbidden,
        target_failure: e.targetFailures,
        malformed: e.malformed,
        timeout: e.timedOut,
        overloaded: e.overloaded,
      })
    ),
  );
  counter(
    "edgevpn_egress_bytes_total",
    "Bytes an egress node sent to destinations (out) and received from them (in)",
    ["direction"],
    egressRead((e) => [
      [{ direction: "out" }, e.bytesToTargets],
      [{ direction: "in" }, e.bytesFromTargets],
    ]),
  );

  // Proxy (when one runs).
  const proxyRead = whenRunning(components.proxy);
  counter(
    "edgevpn_proxy_requests_total",
    "Requests the proxy took: plain HTTP, CONNECT, SOCKS5 CONNECT",
    ["kind"],
    proxyRead((p) => byLabel("kind", p.requests)),
  );
  counter(
    "edgevpn_proxy_egress_total",
    "Requests sent out through an egress node, by protocol: our tunnel, Go's egress",
    ["protocol"],
    proxyRead((p) => byLabel("protocol", p.via)),
  );
  gauge(
    "edgevpn_proxy_connections",
    "Proxy client connections open now",
    [],
    proxyRead((p) => [[{}, p.active]]),
  );
  counter(
    "edgevpn_proxy_dropped_total",
    "Proxy requests refused or failed, by reason",
    ["reason"],
    proxyRead((p) =>
      byLabel("reason", {
        no_egress: p.noEgress,
        go_only: p.goOnly,
        egress_failure: p.egressFailures,
        target_failure: p.targetFailures,
        malformed: p.malformed,
        timeout: p.timedOut,
        over_limit: p.overLimit,
      })
    ),
  );
  counter(
    "edgevpn_proxy_retries_total",
    "Proxy requests retried on another egress node",
    [],
    proxyRead((p) => [[{}, p.retries]]),
  );
  counter(
    "edgevpn_proxy_bytes_total",
    "Bytes the proxy carried from clients (out) and back to them (in)",
    ["direction"],
    proxyRead((p) => [[{ direction: "out" }, p.bytesUp], [{ direction: "in" }, p.bytesDown]]),
  );

  // DHCP.
  gauge("edgevpn_dhcp_state", "Where the VPN address comes from: 1 for the current state", [
    "state",
  ], () => {
    const state = components.dhcp?.().state ?? "none";
    return (["waiting", "leased", "static", "none"] as const).map((s): Labelled => [
      { state: s },
      s === state ? 1 : 0,
    ]);
  });
  gauge(
    "edgevpn_vpn_address_info",
    "The VPN address of this node (value 1)",
    ["address", "source"],
    () => {
      const d = components.dhcp?.();
      return d?.address ? [[{ address: d.address, source: d.enabled ? "dhcp" : "static" }, 1]] : [];
    },
  );

  // The process.
  counter(
    "edgevpn_process_errors_total",
    "Errors nothing caught (the node keeps running), by kind",
    ["kind"],
    () => {
      const c = processErrorCounts();
      return [
        [{ kind: "uncaught_error" }, c.uncaughtErrors],
        [{ kind: "unhandled_rejection" }, c.unhandledRejections],
      ];
    },
  );
  gauge("process_resident_memory_bytes", "Resident memory size in bytes", [], () => [
    [{}, Deno.memoryUsage().rss],
  ]);
  gauge("edgevpn_heap_used_bytes", "V8 heap in use, in bytes", [], () => [
    [{}, Deno.memoryUsage().heapUsed],
  ]);
  const lag = createEventLoopLag(registry);
  gauge(
    "edgevpn_event_loop_lag_seconds",
    `Delay of the last event-loop sample (one every ${LAG_SAMPLE_MS / 1000} s)`,
    [],
    () => [[{}, lag.lastMs / 1000]],
  );
  gauge(
    "edgevpn_event_loop_lag_max_seconds",
    "Largest event-loop delay since the previous scrape",
    [],
    () => [[{}, lag.takeMaxMs() / 1000]],
  );
  gauge(
    "edgevpn_event_loop_stall_max_seconds",
    "Largest event-loop delay since the previous scrape that the process spent running",
    [],
    () => [[{}, lag.takeMaxStallMs() / 1000]],
  );

  const text = () => registry.metrics();
  return {
    registry,
    text,
    routes: [{
      method: "GET",
      path: "/metrics",
      handler: async (c) =>
        c.body(await text(), 200, {
          "content-type": registry.contentType,
          "cache-control": "no-store",
        }),
    }],
    start() {
      lag.start();
    },
    stop() {
      lag.stop();
    },
  };
}
