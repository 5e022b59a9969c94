import assert from "node:assert/strict";
import { generateNetworkConfig } from "../../lib/config/token.ts";
import type { Mesh } from "../../lib/mesh/mesh.ts";
import { createNodeMetrics } from "../../lib/metrics/prometheus.ts";
import { newVpnCounters, peerTraffic } from "../../lib/vpn/counters.ts";
import { emptyTunStats } from "../../ffi/tun.ts";
import { startLoopbackMesh } from "../mesh/helpers.ts";
import { waitFor } from "../node/helpers.ts";
import { parseMetrics, valueOf } from "./helpers.ts";

Deno.test("/metrics text parses and carries peers, traffic, gossip, ledger, VPN, DHCP and process figures", async () => {
  const network = generateNetworkConfig(360);
  const meshes: Mesh[] = [];
  const vpn = newVpnCounters();
  vpn.sent.fast.packets = 7;
  vpn.sent.fast.bytes = 7000;
  vpn.dropped.noRoute = 3;
  peerTraffic(vpn, "12D3KooWPeer").received.packets = 5;
  const metrics = (mesh: Mesh) =>
    createNodeMetrics({
      node: mesh.node,
      ledger: mesh.ledger,
      vpn: () => ({ vpn, tun: emptyTunStats() }),
      dhcp: () => ({ enabled: true, state: "leased", address: "10.1.0.9/24" }),
    });
  try {
    const a = await startLoopbackMesh(network);
    meshes.push(a);
    const b = await startLoopbackMesh(network, { bootstrap: a.node.multiaddrs() });
    meshes.push(b);
    await waitFor(() => a.node.topicPeers().includes(b.peerId), "the topic");
    await b.ledger.add("services", { web: { PeerID: b.peerId, Name: "web" } });
    await waitFor(() => a.ledger.currentData().get("services")?.size === 1, "b's entry");
    const m = metrics(a);
    m.start();
    await new Promise((r) => setTimeout(r, 600));
    const text = await m.text();
    m.stop();
    const f = parseMetrics(text);
    assert.equal(f.get("edgevpn_peer_bytes_total")?.type, "COUNTER");
    assert.equal(valueOf(f, "edgevpn_peers"), 1);
    assert.equal(valueOf(f, "edgevpn_connections", { transport: "tcp" }), 1);
    assert.ok(valueOf(f, "edgevpn_peer_bytes_total", { peer: b.peerId, direction: "in" }) > 0);
    assert.ok(valueOf(f, "edgevpn_peer_messages_total", { peer: b.peerId, direction: "out" }) > 0);
    const gossip = f.get("edgevpn_protocol_bytes_total")!.metrics.find((x) =>
      x.labels?.protocol.startsWith("/meshsub/") && x.labels.direction === "in"
    );
    assert.ok(Number(gossip?.value) > 0, "gossip bytes in");
    assert.ok(valueOf(f, "edgevpn_gossip_messages_total", { direction: "in" }) > 0);
    assert.equal(valueOf(f, "edgevpn_gossip_messages_dropped_total", { reason: "badSeal" }), 0);
    assert.ok(f.get("edgevpn_gossip_messages_dropped_total")!.metrics.length >= 5);
    assert.equal(valueOf(f, "edgevpn_ledger_height"), a.ledger.index());
    assert.equal(valueOf(f, "edgevpn_ledger_entries", { bucket: "services" }), 1);
    assert.equal(
      valueOf(f, "edgevpn_vpn_packets_total", { direction: "out", protocol: "fast" }),
      7,
    );
    assert.equal(
      valueOf(f, "edgevpn_vpn_bytes_total", { direction: "out", protocol: "fast" }),
      7000,
    );
    assert.equal(valueOf(f, "edgevpn_vpn_packets_dropped_total", { reason: "noRoute" }), 3);
    assert.equal(
      valueOf(f, "edgevpn_vpn_peer_packets_total", { peer: "12D3KooWPeer", direction: "in" }),
      5,
    );
    assert.equal(valueOf(f, "edgevpn_dhcp_state", { state: "leased" }), 1);
    assert.equal(valueOf(f, "edgevpn_dhcp_state", { state: "waiting" }), 0);
    assert.equal(
      valueOf(f, "edgevpn_vpn_address_info", { address: "10.1.0.9/24", source: "dhcp" }),
      1,
    );
    assert.ok(valueOf(f, "process_resident_memory_bytes") > 10e6);
    assert.ok(f.has("edgevpn_event_loop_lag_seconds"));
    assert.ok(valueOf(f, "edgevpn_event_loop_lag_max_seconds") >= 0);
    assert.equal(f.get("edgevpn_event_loop_lag_distribution_seconds")?.type, "HISTOGRAM");
  } finally {
    for (const mesh of meshes.reverse()) await mesh.stop();
  }
});
