/**
 * The DNS server on loopback, asked by `dig` and `Deno.resolveDns`: records written on another
 * real node, machine names, forwarding to an upstream server the test runs, its TTL-honouring
 * cache, TCP fallback, and hostile input.
 */
import assert from "node:assert/strict";
import { generateNetworkConfig } from "../../lib/config/token.ts";
import { createDnsServer, type DnsServer, type DnsServerOptions } from "../../lib/dns/server.ts";
import { systemClock } from "../../lib/util/clock.ts";
import type { Clock } from "../../lib/util/clock.ts";
import { createLedger, type Ledger } from "../../lib/ledger/ledger.ts";
import { createLogger, type LogRecord } from "../../lib/util/logger.ts";
import { startLoopbackMesh } from "../mesh/helpers.ts";
import { eventually } from "../helpers/process.ts";
import {
  aRecord,
  dig,
  digSkipReason,
  garbagePackets,
  query,
  SteppedClock,
  udpExchange,
  Upstream,
} from "./helpers.ts";
import { frame, readFrame } from "../../lib/dns/tcp_framing.ts";
import { decodeMessage, FLAG, RCODE } from "../../lib/dns/wire.ts";

const skip = digSkipReason();
if (skip) console.log(`DNS server tests with dig skipped: ${skip}`);

async function startServer(
  ledger: Ledger,
  options: Partial<DnsServerOptions> = {},
  clock: Clock = systemClock,
): Promise<{ server: DnsServer; port: number; logs: LogRecord[] }> {
  const logs: LogRecord[] = [];
  const server = createDnsServer({
    ledger,
    logger: createLogger({ level: "debug", sink: (r) => logs.push(r) }),
    clock,
  }, { listen: { hostname: "127.0.0.1", port: 0 }, zone: "edgevpn.", ...options });
  await server.start();
  return { server, port: server.address!.port, logs };
}

Deno.test({
  name: "records and machines written on one node answer on another node's DNS, over UDP and TCP",
  ignore: skip !== undefined,
  async fn() {
    const network = generateNetworkConfig();
    const a = await startLoopbackMesh(network);
    const b = await startLoopbackMesh(network, {
      bootstrap: a.node.multiaddrs().map(String),
    });
    const { server, port } = await startServer(b.ledger);
    try {
      await a.ledger.add("dns", {
        "^web\\.mesh\\.$": { "1": "10.1.0.20", "16": '"hello world" two', "28": "fd00::20" },
        "^mail\\.mesh\\.$": { "15": "10 web.mesh." },
        "^_sip\\._udp\\.mesh\\.$": { "33": "10 5 5060 web.mesh." },
        "^alias\\.mesh\\.$": { "5": "alpha.edgevpn." },
      });
      await a.ledger.add("machines", {
        "10.1.0.7": {
          PeerID: a.peerId,
          Hostname: "Alpha",
          OS: "linux",
          Arch: "amd64",
          Address: "",
          Version: "test",
        },
      });
      await eventually(
        () =>
          b.ledger.currentData().get("machines")?.has("10.1.0.7") === true &&
          b.ledger.currentData().get("dns")?.size === 4,
        "records reach node B",
      );

      for (const tcp of [false, true]) {
        const web = await dig(port, "web.mesh", "A", { tcp });
        assert.equal(web.status, "NOERROR");
        assert.deepEqual(web.answers.map((r) => [r.name, r.type, r.data]), [
          ["web.mesh.", "A", "10.1.0.20"],
        ]);
        const txt = await dig(port, "web.mesh", "TXT", { tcp });
        assert.deepEqual(txt.answers.map((r) => r.data), ['"hello world" "two"']);
      }
      assert.deepEqual((await dig(port, "web.mesh", "AAAA")).answers.map((r) => r.data), [
        "fd00::20",
      ]);
      assert.deepEqual((await dig(port, "mail.mesh", "MX")).answers.map((r) => r.data), [
        "10 web.mesh.",
      ]);
      assert.deepEqual((await dig(port, "_sip._udp.mesh", "SRV")).answers.map((r) => r.data), [
        "10 5 5060 web.mesh.",
      ]);

      // The machine's names: its hostname and its peer ID, under our zone, authoritative.
      const alpha = await dig(port, "alpha.edgevpn", "A", { tcp: true });
      assert.equal(alpha.status, "NOERROR");
      assert.ok(alpha.flags.includes("aa"), alpha.flags.join(" "));
      assert.deepEqual(alpha.answers.map((r) => r.data), ["10.1.0.7"]);
      const byId = await dig(port, `${a.peerId.toLowerCase()}.edgevpn`, "A");
      assert.deepEqual(byId.answers.map((r) => r.data), ["10.1.0.7"]);
      const ptr = await dig(port, "7.0.1.10.in-addr.arpa", "PTR");
      assert.deepEqual(ptr.answers.map((r) => r.data), ["alpha.edgevpn."]);
      const noV6 = await dig(port, "alpha.edgevpn", "AAAA");
      assert.equal(noV6.status, "NOERROR");
      assert.deepEqual(noV6.answers, []);
      assert.equal(noV6.authority[0]?.type, "SOA");
      assert.equal((await dig(port, "nobody.edgevpn", "A")).status, "NXDOMAIN");

      // A CNAME in the ledger to a machine's name is followed.
      const alias = await dig(port, "alias.mesh", "A");
      assert.deepEqual(alias.answers.map((r) => [r.type, r.data]), [
        ["CNAME", "alpha.edgevpn."],
        ["A", "10.1.0.7"],
      ]);

      // Deno's own resolver agrees.
      const nameServer = { ipAddr: "127.0.0.1", port };
      assert.deepEqual(await Deno.resolveDns("web.mesh", "A", { nameServer }), ["10.1.0.20"]);
      assert.deepEqual(await Deno.resolveDns("alpha.edgevpn", "A", { nameServer }), [
        "10.1.0.7",
      ]);

      // Forwarding is off here: other names are refused, so a client asks its next server.
      assert.equal((await dig(port, "example.org", "A")).status, "REFUSED");

      // A record removed from the ledger stops answering.
      await a.ledger.delete("dns", "^web\\.mesh\\.$");
      await eventually(
        async () => (await dig(port, "web.mesh", "A")).status === "REFUSED",
        "the removed record stops answering",
      );
    } finally {
      await server.stop();
      await b.stop();
      await a.stop();
    }
  },
});

Deno.test({
  name: "other names are forwarded, cached for their TTL and asked again once it runs out",
  ignore: skip !== undefined,
  async fn() {
    const ledger = await createLedger({ mode: "off" });
    const upstream = new Upstream((q) => {
      if (q.name === "short.example.") {
        return { answers: [aRecord("short.example.", "192.0.2.1", 30)] };
      }
      if (q.name === "zero.example.") {
        return { answers: [aRecord("zero.example.", "192.0.2.2", 0)] };
      }
      if (q.name === "big.example.") {
        return {
          truncateUdp: true,
          answers: Array.from(
            { length: 60 },
            (_, i) => aRecord("big.example.", `192.0.2.${i + 1}`, 300),
          ),
        };
      }
      if (q.name === "fail.example.") return { rcode: RCODE.SERVFAIL };
      return {
        rcode: RCODE.NXDOMAIN,
        authorities: [{
          name: "example.",
          type: "SOA",
          class: "IN",
          ttl: 3600,
          data: {
            mname: "ns.example.",
            rname: "hostmaster.example.",
            serial: 1,
            refresh: 1,
            retry: 1,
            expire: 1,
            minimum: 20,
          },
        }],
      };
    });
    const clock = new SteppedClock();
    const { server, port } = await startServer(ledger, {
      forward: { servers: [{ hostname: "127.0.0.1", port: upstream.port }], cacheSize: 100 },
    }, clock);
    try {
      const first = await dig(port, "short.example", "A");
      assert.equal(first.status, "NOERROR");
      assert.deepEqual(first.answers.map((r) => [r.data, r.ttl]), [["192.0.2.1", 30]]);
      assert.equal(upstream.count("short.example."), 1);

      clock.offset += 10_000;
      const cached = await dig(port, "SHORT.example", "A", { tcp: true });
      assert.deepEqual(cached.answers.map((r) => [r.data, r.ttl]), [["192.0.2.1", 20]]);
      assert.equal(
        upstream.count("short.example."),
        1,
        "answered from the cache, TTL counted down",
      );

      clock.offset += 21_000;
      await dig(port, "short.example", "A");
      assert.equal(upstream.count("short.example."), 2, "asked again once the TTL ran out");

      // TTL 0 is never cached.
      await dig(port, "zero.example", "A");
      await dig(port, "zero.example", "A");
      assert.equal(upstream.count("zero.example."), 2);

      // NXDOMAIN is cached for the SOA's negative TTL, min(3600, 20).
      assert.equal((await dig(port, "missing.example", "A")).status, "NXDOMAIN");
      clock.offset += 15_000;
      assert.equal((await dig(port, "missing.example", "A")).status, "NXDOMAIN");
      assert.equal(upstream.count("missing.example."), 1);
      clock.offset += 6_000;
      await dig(port, "missing.example", "A");
      assert.equal(upstream.count("missing.example."), 2);

      // A truncated UDP answer upstream is fetched again over TCP; our UDP answer is too big
      // for 512 bytes so dig retries over TCP, which gets it all.
      const big = await dig(port, "big.example", "A");
      assert.equal(big.answers.length, 60);
      assert.equal(upstream.count("big.example.", "udp"), 1);
      assert.equal(upstream.count("big.example.", "tcp"), 1);

      // An upstream failure is SERVFAIL, not cached.
      assert.equal((await dig(port, "fail.example", "A")).status, "SERVFAIL");
      assert.equal((await dig(port, "fail.example", "A")).status, "SERVFAIL");
      assert.equal(upstream.count("fail.example."), 2);

      const c = server.counters();
      assert.equal(c.forwarder?.cacheHits, 3, "dig's TCP retry of big.example came from the cache");
      assert.equal(c.forwarder?.tcpFallbacks, 1);
      assert.deepEqual(c.forwarder?.upstreamFailures, { servfail: 2 });
      assert.equal(c.answers.cache, 3);
      assert.ok((c.answers.forward ?? 0) >= 6);
      assert.equal(c.truncated, 1);
    } finally {
      await server.stop();
      await upstream.close();
      await ledger.stop();
    }
  },
});

Deno.test({
  name: "a forward server that does not answer is skipped for the next one after the timeout",
  ignore: skip !== undefined,
  async fn() {
    const ledger = await createLedger({ mode: "off" });
    const silent = new Upstream(() => ({ silent: true }));
    const good = new Upstream((q) => ({ answers: [aRecord(q.name, "192.0.2.9", 60)] }));
    const { server, port } = await startServer(ledger, {
      forward: {
        servers: [{ hostname: "127.0.0.1", port: silent.port }, {
          hostname: "127.0.0.1",
          port: good.port,
        }],
        cacheSize: 0,
        timeoutMs: 300,
      },
    });
    try {
      const r = await dig(port, "any.example", "A");
      assert.deepEqual(r.answers.map((a) => a.data), ["192.0.2.9"]);
      assert.equal(silent.count("any.example."), 1);
      assert.deepEqual(server.counters().forwarder?.upstreamFailures, { timeout: 1 });
    } finally {
      await server.stop();
      await silent.close();
      await good.close();
      await ledger.stop();
    }
  },
});

Deno.test("10 000 garbage packets are dropped and counted; the server keeps answering", async () => {
  const ledger = await createLedger({ mode: "off" });
  await ledger.add("dns", { "^ok\\.mesh\\.$": { "1": "10.1.0.1" } });
  const { server, port } = await startServer(ledger);
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    const target = { transport: "udp" as const, hostname: "127.0.0.1", port };
    let sent = 0;
    const kinds = new Set<string>();
    const batch: Uint8Array[] = [];
    for (const { kind, bytes } of garbagePackets(10_000)) {
      kinds.add(kind);
      batch.push(bytes);
      if (batch.length === 100) {
        for (const b of batch.splice(0)) await socket.send(b, target);
        sent += 100;
        // Paced by what the server counted, so the socket's buffer never overflows.
        const deadline = Date.now() + 20_000;
        while (server.counters().queries.udp < sent) {
          if (Date.now() > deadline) throw new Error(`the server counted no ${sent} packets`);
          await new Promise((r) => setTimeout(r, 2));
        }
      }
    }
    assert.equal(kinds.size, 7);
    const c = server.counters();
    const dropped = Object.values(c.drops).reduce((x, y) => x + (y ?? 0), 0);
    assert.equal(c.queries.udp, 10_000);
    assert.equal(dropped, 10_000, JSON.stringify(c.drops));
    assert.deepEqual(Object.keys(c.answers), []);
    for (const reason of ["truncated", "not_query", "malformed", "oversize"] as const) {
      assert.ok((c.drops[reason] ?? 0) > 0, reason);
    }
    const reply = await udpExchange(port, query("ok.mesh", 1, { id: 77 }));
    assert.equal(reply?.id, 77);
    assert.equal(reply?.answers[0]?.data, "10.1.0.1");
  } finally {
    socket.close();
    await server.stop();
    await ledger.stop();
  }
});

Deno.test("TCP: oversize, truncated and garbage frames close the connection; surplus connections are closed", async () => {
  const ledger = await createLedger({ mode: "off" });
  await ledger.add("dns", { "^ok\\.mesh\\.$": { "1": "10.1.0.1" } });
  const { server, port } = await startServer(ledger, { limits: { maxTcpConnections: 4 } });
  const send = async (bytes: Uint8Array) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(bytes).catch(() => 0);
    const n = await conn.read(new Uint8Array(100)).catch(() => null);
    conn.close();
    return n;
  };
  try {
    assert.equal(await send(new Uint8Array([0xff, 0xff, 1, 2, 3])), null, "oversize length");
    assert.equal(await send(new Uint8Array([0, 0])), null, "zero length");
    assert.equal(await send(frame(new Uint8Array(30).fill(0xc0))), null, "garbage message");
    // A frame cut short by the client's half-close.
    const cut = await Deno.connect({ hostname: "127.0.0.1", port });
    await cut.write(new Uint8Array([0, 40, 1, 2, 3]));
    await cut.closeWrite();
    assert.equal(await cut.read(new Uint8Array(10)), null);
    cut.close();
    // Surplus connections are closed at once while the first four stay open.
    await eventually(() => server.counters().tcpConnections === 0, "connections closed");
    const open = await Promise.all(
      [0, 1, 2, 3].map(() => Deno.connect({ hostname: "127.0.0.1", port })),
    );
    await eventually(() => server.counters().tcpConnections === 4, "four connections accepted");
    const surplus = await Deno.connect({ hostname: "127.0.0.1", port });
    assert.equal(await surplus.read(new Uint8Array(10)), null);
    surplus.close();
    for (const c of open) c.close();
    await eventually(() => server.counters().tcpConnections === 0, "connections closed");
    // Pipelined queries on one connection are answered in order.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(
      new Uint8Array([
        ...frame(query("ok.mesh", 1, { id: 1 })),
        ...frame(query("ok.mesh", 1, { id: 2 })),
      ]),
    );
    for (const id of [1, 2]) {
      const f = await readFrame(conn, 65535);
      assert.ok(f.ok);
      if (f.ok) assert.equal(decodeMessage(f.message, 65535).id, id);
    }
    conn.close();
    const c = server.counters();
    assert.equal(c.drops.oversize, 2, JSON.stringify(c.drops));
    assert.equal(c.drops.truncated, 1, JSON.stringify(c.drops));
    assert.equal(c.drops.malformed, 1, JSON.stringify(c.drops));
    assert.equal(c.drops.tcp_overload, 1, JSON.stringify(c.drops));
  } finally {
    await server.stop();
    await ledger.stop();
  }
});

Deno.test("TCP: a connection that sends no complete query is closed after the idle time", async () => {
  const ledger = await createLedger({ mode: "off" });
  const { server, port } = await startServer(ledger, { limits: { tcpIdleMs: 100 } });
  try {
    const idle = await Deno.connect({ hostname: "127.0.0.1", port });
    await idle.write(new Uint8Array([0, 40, 1])); // a frame that never completes
    assert.equal(await idle.read(new Uint8Array(10)), null);
    idle.close();
    assert.equal(server.counters().drops.tcp_idle, 1);
  } finally {
    await server.stop();
    await ledger.stop();
  }
});

Deno.test("unusable keys and invalid record data are skipped and logged once; other records answer", async () => {
  const ledger = await createLedger({ mode: "off" });
  await ledger.add("dns", {
    "((": { "1": "10.9.9.9" },
    "(a+)+$": { "1": "10.9.9.8" },
    "^bad\\.mesh\\.$": { "1": "300.1.1.1", "16": '"still fine"' },
    "^ok\\.mesh\\.$": { "1": "10.1.0.1" },
    "^big\\.mesh\\.$": { "16": Array.from({ length: 12 }, () => `"${"t".repeat(200)}"`).join(" ") },
  });
  const upstream = new Upstream(() => ({ rcode: RCODE.NXDOMAIN }));
  const { server, port, logs } = await startServer(ledger, {
    forward: { servers: [{ hostname: "127.0.0.1", port: upstream.port }], cacheSize: 10 },
  });
  try {
    for (let i = 0; i < 3; i++) {
      const ok = await udpExchange(port, query("ok.mesh", 1));
      assert.equal(ok?.answers[0]?.data, "10.1.0.1");
      // The A record is invalid: skipped, so the question goes on to forwarding.
      const bad = await udpExchange(port, query("bad.mesh", 1));
      assert.equal(bad?.flags && bad.flags & 0xf, RCODE.NXDOMAIN);
      const txt = await udpExchange(port, query("bad.mesh", 16));
      assert.equal(String((txt?.answers[0]?.data as unknown[])[0]), "still fine");
    }
    // Linear-time matching: a name that makes `(a+)+$` backtrack exponentially elsewhere.
    const evil = await udpExchange(port, query(`${"a".repeat(60)}.${"a".repeat(60)}!`, 1));
    assert.equal(evil?.flags && evil.flags & 0xf, RCODE.NXDOMAIN);
    // A 2.4 kB answer is cut for UDP (TC set) and whole over TCP.
    const cut = await udpExchange(port, query("big.mesh", 16, { edns: 4096 }));
    assert.equal((cut?.flags ?? 0) & FLAG.TC, FLAG.TC);
    assert.deepEqual(cut?.answers, []);
    const whole = await dig(port, "big.mesh", "TXT", { tcp: true }).catch(() => undefined);
    if (whole) assert.equal(whole.answers.length, 1);
    const warned = logs.filter((r) => r.level === "warn").map((r) => r.msg);
    assert.equal(warned.filter((m) => m.includes("not a usable regular expression")).length, 1);
    assert.equal(warned.filter((m) => m.includes("not valid for its type")).length, 1);
    assert.equal(upstream.count("bad.mesh."), 3, "an NXDOMAIN without SOA is not cached");
  } finally {
    await server.stop();
    await upstream.close();
    await ledger.stop();
  }
});
