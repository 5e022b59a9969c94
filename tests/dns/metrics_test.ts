import assert from "node:assert/strict";
import { generateNetworkConfig } from "../../lib/config/token.ts";
import { createDnsServer } from "../../lib/dns/server.ts";
import { systemClock } from "../../lib/util/clock.ts";
import { createNodeMetrics } from "../../lib/metrics/prometheus.ts";
import { silentLogger } from "../../lib/util/logger.ts";
import { startLoopbackMesh } from "../mesh/helpers.ts";
import { parseMetrics, valueOf } from "../metrics/helpers.ts";
import { aRecord, query, udpExchange, Upstream } from "./helpers.ts";

Deno.test("/metrics carries the DNS server's queries, answers by source, forwarding, cache and drops", async () => {
  const mesh = await startLoopbackMesh(generateNetworkConfig());
  const upstream = new Upstream((q) => ({ answers: [aRecord(q.name, "192.0.2.1", 60)] }));
  const server = createDnsServer(
    { ledger: mesh.ledger, logger: silentLogger, clock: systemClock },
    {
      listen: { hostname: "127.0.0.1", port: 0 },
      zone: "edgevpn.",
      forward: { servers: [{ hostname: "127.0.0.1", port: upstream.port }], cacheSize: 10 },
    },
  );
  await server.start();
  const port = server.address!.port;
  try {
    await mesh.ledger.add("dns", {
      "^ok\\.mesh\\.$": { "1": "10.1.0.1" },
      "((": { "1": "1.1.1.1" },
    });
    assert.equal((await udpExchange(port, query("ok.mesh", 1)))?.answers.length, 1);
    await udpExchange(port, query("example.org", 1));
    await udpExchange(port, query("example.org", 1));
    await udpExchange(port, query("nobody.edgevpn", 1));
    await udpExchange(port, new Uint8Array(5), 200);
    const metrics = createNodeMetrics({
      node: mesh.node,
      ledger: mesh.ledger,
      dns: () => server.counters(),
    });
    const f = parseMetrics(await metrics.text());
    assert.equal(valueOf(f, "edgevpn_dns_queries_total", { transport: "udp" }), 5);
    assert.equal(valueOf(f, "edgevpn_dns_answers_total", { source: "ledger" }), 1);
    assert.equal(valueOf(f, "edgevpn_dns_answers_total", { source: "forward" }), 1);
    assert.equal(valueOf(f, "edgevpn_dns_answers_total", { source: "cache" }), 1);
    assert.equal(valueOf(f, "edgevpn_dns_answers_total", { source: "zone" }), 1);
    assert.equal(valueOf(f, "edgevpn_dns_forwarded_total"), 1);
    assert.equal(valueOf(f, "edgevpn_dns_cache_hits_total"), 1);
    assert.equal(valueOf(f, "edgevpn_dns_cache_misses_total"), 1);
    assert.equal(valueOf(f, "edgevpn_dns_cache_entries"), 1);
    assert.equal(valueOf(f, "edgevpn_dns_dropped_total", { reason: "truncated" }), 1);
    assert.equal(valueOf(f, "edgevpn_dns_records_skipped_total", { reason: "invalid_key" }), 1);
    assert.equal(f.get("edgevpn_dns_queries_total")?.type, "COUNTER");
  } finally {
    await server.stop();
    await upstream.close();
    await mesh.stop();
  }
});
