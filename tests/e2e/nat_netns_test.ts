/**
 * NAT traversal end to end: two members in homes behind NAT routers (iptables MASQUERADE) and
 * one public member, each a VPN node in its own network namespace. Needs root, /dev/net/tun,
 * iproute2 and iptables; skipped with the reason otherwise.
 */
import assert from "node:assert/strict";
import type { ServicePlan } from "../../lib/commands/services.ts";
import { generateNetworkConfig } from "../../lib/config/token.ts";
import type { NatOptions } from "../../lib/node/nat.ts";
import {
  createNatTopology,
  type NatTopology,
  natTopologySkipReason,
  type RouterMode,
} from "../../scripts/nat_topology.ts";
import { type Namespace, namespaceSkipReason } from "../../scripts/netns.ts";
import {
  childConfig,
  type ChildCounters,
  pingUntilReply,
  spawnVpnChild,
  transferOverTcp,
  type TransferResult,
  type VpnChild,
} from "./vpn_helpers.ts";

const skip = namespaceSkipReason({ tun: true }) ?? natTopologySkipReason();
if (skip) console.log(`NAT namespace tests skipped: ${skip}`);

const TCP_BACKEND = new URL("./tcp_backend_tool.ts", import.meta.url).pathname;
const RELAY_PROBE = new URL("../hostile/relay_probe_tool.ts", import.meta.url).pathname;
/** What the client sends through the service (and reads back from the echo backend). */
const SERVICE_BYTES = (1 << 20) + 12_345;
/** Where home B's node listens for connections to home A's service. */
const SERVICE_PORT = 7100;
/**
 * The public relay's data limit per relayed connection and direction in the first test: above
 * what the pair moves through one circuit before its last phase (about 3.3 MiB from A to B),
 * below that plus the last phase's {@link OVER_LIMIT_BYTES}, whose rest after the cut
 * fits in a fresh circuit.
 */
const RELAY_DATA_LIMIT = 8 << 20;
const OVER_LIMIT_BYTES = 8 << 20;

interface Members {
  topo: NatTopology;
  pub: VpnChild;
  a: VpnChild;
  b: VpnChild;
  ids: { pub: string; a: string; b: string };
}

/**
 * The public member (relay service on) and two home members that bootstrap from it and hold
 * a slot on it; `ipv6` puts every libp2p address on the WAN's IPv6 side (3fff::/20).
 */
async function startMembers(
  topo: NatTopology,
  children: VpnChild[],
  options: {
    ipv6?: boolean;
    pubNat?: NatOptions;
    homeNat?: NatOptions;
    services?: { a?: ServicePlan; b?: ServicePlan };
  } = {},
): Promise<Members> {
  const network = generateNetworkConfig();
  const listen = options.ipv6 ? ["/ip6/::/tcp/4001"] : ["/ip4/0.0.0.0/tcp/4001"];
  const pub = spawnVpnChild(
    childConfig(network, { address: "10.1.0.1/24" }, {
      listenMaddrs: listen,
      nat: { relayService: {}, ...options.pubNat },
    }),
    topo.pub.name,
  );
  children.push(pub);
  const pubId = (await pub.waitFor((e) => e.event === "ready", "public member ready"))
    .peerId as string;
  const pubAddr = options.ipv6
    ? `/ip6/${topo.pub.address6}/tcp/4001/p2p/${pubId}`
    : `/ip4/${topo.pub.address}/tcp/4001/p2p/${pubId}`;
  const home = (ns: string, address: string, services?: ServicePlan) => {
    const child = spawnVpnChild(
      childConfig(network, { address }, {
        listenMaddrs: listen,
        bootstrapPeers: [pubAddr],
        nat: { autoRelay: { staticRelays: [pubAddr] }, ...options.homeNat },
        services,
        // NAT_TEST_LOGS=1: debug logs, printed when a step fails.
        logLevel: Deno.env.get("NAT_TEST_LOGS") ? "debug" : undefined,
      }),
      ns,
    );
    children.push(child);
    return child;
  };
  const a = home(topo.homeA.name, "10.1.0.2/24", options.services?.a);
  const b = home(topo.homeB.name, "10.1.0.3/24", options.services?.b);
  const [readyA, readyB] = await Promise.all([
    a.waitFor((e) => e.event === "ready", "home A ready"),
    b.waitFor((e) => e.event === "ready", "home B ready"),
  ]);
  return {
    topo,
    pub,
    a,
    b,
    ids: { pub: pubId, a: readyA.peerId as string, b: readyB.peerId as string },
  };
}

/** A TCP echo backend (`tcp_backend_tool.ts echo`) on 127.0.0.1 inside `ns`. */
async function startEchoBackend(
  ns: Namespace,
  signal: AbortSignal,
): Promise<{ port: number; process: Deno.ChildProcess }> {
  const process = ns.spawn(Deno.execPath(), ["run", "-A", TCP_BACKEND, "echo"], {
    signal,
    stderr: "inherit",
  });
  const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`echo backend in ${ns.name} ended before printing its port`);
    text += value;
  }
  await reader.cancel();
  return { port: JSON.parse(text.split("\n")[0]).port, process };
}

/**
 * Runs `tcp_backend_tool.ts client` in `ns` against 127.0.0.1:`port`: sends `bytes` of a
 * pattern and compares every byte that comes back.
 */
async function echoClient(
  ns: Namespace,
  port: number,
  bytes: number,
): Promise<{ sent: number; received: number; match: boolean }> {
  const out = await ns.spawn(
    Deno.execPath(),
    ["run", "-A", TCP_BACKEND, "client", String(port), String(bytes), "30"],
    { signal: AbortSignal.timeout(60_000) },
  ).output();
  const dec = new TextDecoder();
  if (!out.success) throw new Error(`echo client failed (${out.code}): ${dec.decode(out.stderr)}`);
  return JSON.parse(dec.decode(out.stdout).trim().split("\n").at(-1)!);
}

/**
 * Runs `relay_probe_tool.ts` in `ns`: a libp2p host without the token asks the relay at
 * `relay` for a slot and for a circuit to `member`; resolves with the relay's status codes.
 */
async function probeRelay(
  ns: Namespace,
  relay: string,
  member: string,
): Promise<{ peerId: string; reserve: number | string; connect: number | string }> {
  const out = await ns.spawn(Deno.execPath(), ["run", "-A", RELAY_PROBE, relay, member], {
    signal: AbortSignal.timeout(60_000),
  }).output();
  const dec = new TextDecoder();
  if (!out.success) throw new Error(`relay probe failed (${out.code}): ${dec.decode(out.stderr)}`);
  return JSON.parse(dec.decode(out.stdout).trim().split("\n").at(-1)!);
}

/** Polls the child's counters until `ok` holds. */
async function until(
  child: VpnChild,
  ok: (c: Awaited<ReturnType<VpnChild["counters"]>>) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<Awaited<ReturnType<VpnChild["counters"]>>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = await child.counters();
    if (ok(c)) return c;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(c).slice(0, 3000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function withTopology(
  mode: RouterMode,
  wan: number,
  body: (topo: NatTopology, children: VpnChild[]) => Promise<void>,
): Promise<void> {
  const topo = await createNatTopology(mode, wan);
  const children: VpnChild[] = [];
  try {
    await body(topo, children);
    for (const c of children.splice(0)) {
      const { code } = await c.terminate();
      assert.equal(code, 0, `child exit code; stderr:\n${c.stderr().slice(-2000)}`);
    }
  } finally {
    for (const c of children) await c.terminate("SIGKILL").catch(() => {});
    await topo.close();
  }
}

Deno.test({
  name:
    "two members behind NAT join through a public relay member: ledgers converge, they ping, move TCP over the VPN, one reaches the other's exposed TCP service through the relay; the relay refuses a non-member behind NAT and ends a circuit at its data limit",
  ignore: skip !== undefined,
  async fn() {
    await withTopology("plain", 71, async (topo, children) => {
      const backendStop = new AbortController();
      const backend = await startEchoBackend(topo.homeA, backendStop.signal);
      try {
        await relayedMembers(topo, children, backend.port);
      } finally {
        backendStop.abort();
        await backend.process.status;
      }
    });
  },
});

/**
 * The first test's body: home A exposes the echo backend on `backendPort` as service "echo",
 * home B connects it to 127.0.0.1:{@link SERVICE_PORT}.
 */
async function relayedMembers(
  topo: NatTopology,
  children: VpnChild[],
  backendPort: number,
): Promise<void> {
  const m = await startMembers(topo, children, {
    pubNat: { relayService: { maxDataBytes: RELAY_DATA_LIMIT } },
    services: {
      a: { expose: [{ name: "echo", address: `127.0.0.1:${backendPort}` }], connect: [] },
      b: { expose: [], connect: [{ name: "echo", listen: `127.0.0.1:${SERVICE_PORT}` }] },
    },
  });
  await until(m.a, (c) => c.relaySlots.length === 1, "A's relay slot");
  await until(m.b, (c) => c.relaySlots.length === 1, "B's relay slot");
  await nonMemberRefused(m);
  // Ledgers converge through the public member: each home routes to the other.
  await until(m.a, (c) => c.routes.some((r) => r.peerId === m.ids.b), "A's route to B");
  await until(m.b, (c) => c.routes.some((r) => r.peerId === m.ids.a), "B's route to A");
  await pingUntilReply(topo.homeA, "10.1.0.3");
  await pingUntilReply(topo.homeB, "10.1.0.2");
  const result = await transferOverTcp(topo.homeA, topo.homeB, "10.1.0.3", 2 << 20);
  assert.equal(result.received.sha256, result.sent.sha256);
  // Home B reaches home A's TCP service through its local port: every byte of the echo
  // comes back, and the relay carried them both ways (hole punching is off here).
  const relayBefore = (await m.pub.counters()).relayPeers;
  const echo = await echoClient(topo.homeB, SERVICE_PORT, SERVICE_BYTES);
  assert.deepEqual(echo, { sent: SERVICE_BYTES, received: SERVICE_BYTES, match: true });
  const relayAfter = (await m.pub.counters()).relayPeers;
  const carried = (peer: string, key: "bytesIn" | "bytesOut") =>
    relayAfter[peer][key] - (relayBefore[peer]?.[key] ?? 0);
  for (const peer of [m.ids.a, m.ids.b]) {
    for (const key of ["bytesIn", "bytesOut"] as const) {
      assert.ok(
        carried(peer, key) >= SERVICE_BYTES,
        `relay ${key} of ${peer}: ${JSON.stringify({ relayBefore, relayAfter })}`,
      );
    }
  }
  const exposer = (await m.a.counters()).services.exposer!;
  assert.ok(
    exposer.served >= 1 && exposer.bytesToBackend === SERVICE_BYTES &&
      exposer.bytesFromBackend === SERVICE_BYTES,
    JSON.stringify(exposer),
  );
  const [connector] = (await m.b.counters()).services.connectors;
  assert.ok(
    connector.served >= 1 && connector.bytesToService === SERVICE_BYTES &&
      connector.bytesFromService === SERVICE_BYTES,
    JSON.stringify(connector),
  );
  const a = await m.a.counters();
  const connsToB = a.connections.filter((c) => c.peer === m.ids.b);
  assert.ok(
    connsToB.length > 0 && connsToB.every((c) => c.relayed),
    JSON.stringify(connsToB),
  );
  const relay = (await m.pub.counters()).relayPeers;
  assert.ok(relay[m.ids.a].bytesIn > 2 << 20, JSON.stringify(relay));
  assert.ok(relay[m.ids.b].bytesOut > 2 << 20, JSON.stringify(relay));
  await dataLimitEnforced(m);
}

/**
 * A libp2p host without the token, behind home B's NAT router, asks the public relay for a
 * slot and for a circuit to home A: both are refused as not a member, the relay counts both
 * refusals and relays none of its bytes.
 */
async function nonMemberRefused(m: Members): Promise<void> {
  const before = (await m.pub.counters()).node.nat.relay!;
  const relayAddr = `/ip4/${m.topo.pub.address}/tcp/4001/p2p/${m.ids.pub}`;
  const probe = await probeRelay(m.topo.homeB, relayAddr, m.ids.a);
  const PERMISSION_DENIED = 202;
  assert.deepEqual(
    { reserve: probe.reserve, connect: probe.connect },
    { reserve: PERMISSION_DENIED, connect: PERMISSION_DENIED },
  );
  const pub = await m.pub.counters();
  const after = pub.node.nat.relay!;
  assert.equal(
    after.reservations.refusedNotMember - before.reservations.refusedNotMember,
    1,
    JSON.stringify(after),
  );
  assert.equal(
    after.circuits.refusedNotMember - before.circuits.refusedNotMember,
    1,
    JSON.stringify(after),
  );
  assert.equal(pub.relayPeers[probe.peerId], undefined, JSON.stringify(pub.relayPeers));
}

/**
 * The relay's data limit holds through the NAT: a flow larger than what one circuit may still
 * carry makes the relay end the circuit (counted); the members open a new circuit and the
 * TCP flow inside the tunnel completes byte-exact.
 */
async function dataLimitEnforced(m: Members): Promise<void> {
  const pub = await m.pub.counters();
  const before = pub.node.nat.relay!;
  assert.equal(before.circuits.endedData, 0, JSON.stringify(before));
  // All A has sent through the relay so far fits under the limit: the cut is this phase's.
  assert.ok(pub.relayPeers[m.ids.a].bytesIn < RELAY_DATA_LIMIT, JSON.stringify(pub.relayPeers));
  const result = await transferOverTcp(m.topo.homeA, m.topo.homeB, "10.1.0.3", OVER_LIMIT_BYTES, {
    port: 7002,
  });
  assert.equal(result.received.sha256, result.sent.sha256);
  const after = (await m.pub.counters()).node.nat.relay!;
  if (Deno.env.get("NAT_TEST_LOGS")) console.log({ relayPeers: pub.relayPeers, before, after });
  assert.ok(after.circuits.endedData >= 1, JSON.stringify(after.circuits));
  assert.ok(after.circuits.opened > before.circuits.opened, JSON.stringify(after.circuits));
}

Deno.test({
  name:
    "where the NAT allows it, hole punching upgrades the pair to a direct connection: a TCP flow through the VPN and a service connection open over the relay survive the switch, and the relay stops carrying their traffic",
  ignore: skip !== undefined,
  async fn() {
    await withTopology("drop", 72, async (topo, children) => {
      const backendStop = new AbortController();
      const backend = await startEchoBackend(topo.homeA, backendStop.signal);
      try {
        await holePunchedMembers(topo, children, backend.port);
      } finally {
        backendStop.abort();
        await backend.process.status;
      }
    });
  },
});

/**
 * A `tcp_backend_tool.ts session` in `ns` against 127.0.0.1:`port`: `next()` reads its next
 * JSON line, `send()` writes a line to it, `end()` waits for it to exit (killing it when it
 * has not printed its result) and resolves with its stderr when it failed.
 */
function startSession(ns: Namespace, port: number, bytes: readonly [number, number]) {
  const process = ns.spawn(
    Deno.execPath(),
    ["run", "-A", TCP_BACKEND, "session", String(port), String(bytes[0]), String(bytes[1]), "30"],
    { stdin: "piped", signal: AbortSignal.timeout(90_000) },
  );
  const errors = new Response(process.stderr).text();
  const lines = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const stdin = process.stdin.getWriter();
  let text = "";
  let finished = false;
  return {
    async next(): Promise<Record<string, unknown>> {
      while (!text.includes("\n")) {
        const { value, done } = await lines.read();
        if (done) throw new Error(`the service session ended: ${await errors}`);
        text += value;
      }
      const line = text.slice(0, text.indexOf("\n"));
      text = text.slice(line.length + 1);
      const event = JSON.parse(line);
      if (event.event === undefined) finished = true;
      return event;
    },
    async send(line: string): Promise<void> {
      await stdin.write(new TextEncoder().encode(line + "\n"));
    },
    async end(): Promise<string | undefined> {
      if (!finished) process.kill("SIGKILL");
      await stdin.close().catch(() => {});
      await lines.cancel().catch(() => {});
      const status = await process.status;
      return status.success ? undefined : await errors;
    },
  };
}

/** What the service session echoes before the hole punch, and after it. */
const SESSION_BYTES = [256 << 10, 1 << 20] as const;

/**
 * The second test's body: home A exposes the echo backend on `backendPort`, home B connects
 * it; a VPN flow and a service session start over the relay, and hole punching happens under
 * both.
 */
async function holePunchedMembers(
  topo: NatTopology,
  children: VpnChild[],
  backendPort: number,
): Promise<void> {
  const m = await startMembers(topo, children, {
    ipv6: true,
    homeNat: { holePunch: true },
    services: {
      a: { expose: [{ name: "echo", address: `127.0.0.1:${backendPort}` }], connect: [] },
      b: { expose: [], connect: [{ name: "echo", listen: `127.0.0.1:${SERVICE_PORT}` }] },
    },
  });
  await until(m.a, (c) => c.relaySlots.length === 1, "A's relay slot");
  await until(m.b, (c) => c.relaySlots.length === 1, "B's relay slot");
  await until(m.a, (c) => c.routes.some((r) => r.peerId === m.ids.b), "A's route to B");
  await until(m.b, (c) => c.routes.some((r) => r.peerId === m.ids.a), "B's route to A");
  // 8 MB at 1 MB/s: the flow opens the relayed connection and outlives the hole punch. The
  // service session (its process already up) starts on that connection as soon as it exists:
  // DCUtR first tries a unilateral dial for 5 s, which the routers drop, before it punches.
  const session = startSession(topo.homeB, SERVICE_PORT, SESSION_BYTES);
  let direct: ChildCounters;
  let relayBefore: ChildCounters["relayPeers"];
  let flow: Promise<TransferResult> | undefined;
  let outcome: Record<string, unknown>;
  try {
    assert.equal((await session.next()).event, "ready");
    flow = transferOverTcp(topo.homeA, topo.homeB, "10.1.0.3", 8_000_000, {
      rateBytes: 1_000_000,
      timeoutMs: 45_000,
    });
    await until(
      m.b,
      (c) => c.connections.some((x) => x.peer === m.ids.a && x.relayed),
      "B's relayed connection from A",
    );
    await session.send("start");
    assert.equal((await session.next()).event, "paused");
    direct = await until(
      m.a,
      (c) => c.connections.some((x) => x.peer === m.ids.b && !x.relayed),
      "a direct connection from A to B",
      30_000,
    ).catch((e) => {
      if (Deno.env.get("NAT_TEST_LOGS")) console.log(m.a.stderr(), "\n-----\n", m.b.stderr());
      throw e;
    });
    // The session goes on after the switch, on the connection it was opened on: the relayed
    // one, which hole punching leaves open while the session needs it.
    relayBefore = (await m.pub.counters()).relayPeers;
    await session.send("go");
    outcome = await session.next();
  } finally {
    const errors = await session.end();
    if (errors) console.error(`service session: ${errors}`);
    await flow?.catch(() => {});
  }
  const total = SESSION_BYTES[0] + SESSION_BYTES[1];
  if (outcome.received !== total || outcome.match !== true) {
    const [a, b] = [await m.a.counters(), await m.b.counters()];
    const links = (c: ChildCounters) => ({ connections: c.connections, staleLinks: c.staleLinks });
    assert.fail(
      `service session across the switch: ${JSON.stringify(outcome)}; A ${
        JSON.stringify(links(a))
      }; B ${JSON.stringify(links(b))}\nA's log: ${m.a.stderr().slice(-6000)}\nB's log: ${
        m.b.stderr().slice(-6000)
      }`,
    );
  }
  const relayAfter = (await m.pub.counters()).relayPeers;
  const carried = relayAfter[m.ids.b].bytesIn - (relayBefore[m.ids.b]?.bytesIn ?? 0);
  assert.ok(
    carried >= SESSION_BYTES[1],
    `the relay carried ${carried} bytes from B while the session sent ${SESSION_BYTES[1]}`,
  );
  // Once the session ended, nothing holds the relayed connection: it closes.
  await until(
    m.a,
    (c) => !c.connections.some((x) => x.peer === m.ids.b && x.relayed),
    "the relayed connection between A and B closed",
  );
  const result = await flow!;
  if (Deno.env.get("NAT_TEST_LOGS")) console.log(m.a.stderr(), "\n-----\n", m.b.stderr());
  assert.equal(result.received.sha256, result.sent.sha256);
  assert.equal(result.received.bytes, 8_000_000);
  const a = await m.a.counters();
  assert.ok(a.vpn.links.moves >= 1, JSON.stringify(a.vpn.links));
  assert.ok(
    !a.connections.some((x) => x.peer === m.ids.b && x.relayed),
    JSON.stringify(direct.connections),
  );
  // After the upgrade, the relay carries none of the pair's traffic.
  const before = (await m.pub.counters()).relayPeers;
  const wanBefore = await topo.pubBytes();
  const more = await transferOverTcp(topo.homeA, topo.homeB, "10.1.0.3", 4 << 20, {
    port: 7001,
  });
  assert.equal(more.received.sha256, more.sent.sha256);
  const echo = await echoClient(topo.homeB, SERVICE_PORT, SERVICE_BYTES);
  assert.deepEqual(echo, { sent: SERVICE_BYTES, received: SERVICE_BYTES, match: true });
  const after = (await m.pub.counters()).relayPeers;
  assert.equal(after[m.ids.a]?.bytesIn ?? 0, before[m.ids.a]?.bytesIn ?? 0);
  assert.equal(after[m.ids.b]?.bytesOut ?? 0, before[m.ids.b]?.bytesOut ?? 0);
  const wan = await topo.pubBytes() - wanBefore;
  assert.ok(wan < 200_000, `the public member's interface moved ${wan} bytes during 5 MiB`);
}
