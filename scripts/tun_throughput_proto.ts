/** Prototype measurement: iperf3 through two TUNs relayed over TCP between two network namespaces. */
// Not a product benchmark. Run as root: ./deno run -A scripts/tun_throughput_proto.ts [--seconds 5]
// [--runs 2] [--only plain,offload,...]. Each variant builds nsA ⇄ veth ⇄ nsB, a TUN in each,
// and one relay process per namespace that reads its TUN and sends u16-length-prefixed frames
// over one TCP connection on the veth, batching whatever one readBatch returned.

import { forEachPacket } from "../lib/vpn/gso.ts";
import { TunDevice } from "../ffi/tun.ts";

interface Variant {
  name: string;
  description: string;
  mtu: number;
  /** Offload (vnet_hdr) on the sending side A and on the receiving side B. */
  offloadA: boolean;
  offloadB: boolean;
  /** A cuts super-packets into MTU-sized packets before sending (a Go EdgeVPN peer). */
  segment: boolean;
  /** Packets read per readBatch (1 = no batching). */
  batch: number;
  /** How the relay waits for the TUN: drain+poll (TunDevice) or a blocking read on a worker. */
  reader: "poll" | "worker-read";
}

const VARIANTS: Variant[] = [
  {
    name: "plain",
    description: "MTU 1420, drain until EAGAIN + nonblocking poll, ≤256 packets per write",
    mtu: 1420,
    offloadA: false,
    offloadB: false,
    segment: false,
    batch: 256,
    reader: "poll",
  },
  {
    name: "plain-nobatch",
    description: "MTU 1420, one packet per readBatch and per socket write",
    mtu: 1420,
    offloadA: false,
    offloadB: false,
    segment: false,
    batch: 1,
    reader: "poll",
  },
  {
    name: "plain-worker-read",
    description: "MTU 1420, blocking fd, every read() is a nonblocking FFI call (worker thread)",
    mtu: 1420,
    offloadA: false,
    offloadB: false,
    segment: false,
    batch: 256,
    reader: "worker-read",
  },
  {
    name: "plain-9000",
    description: "MTU 9000, drain + poll",
    mtu: 9000,
    offloadA: false,
    offloadB: false,
    segment: false,
    batch: 256,
    reader: "poll",
  },
  {
    name: "offload",
    description: "MTU 1420, vnet_hdr on both TUNs, super-packets forwarded whole",
    mtu: 1420,
    offloadA: true,
    offloadB: true,
    segment: false,
    batch: 64,
    reader: "poll",
  },
  {
    name: "offload-segment",
    description: "MTU 1420, A reads super-packets and segments them in JS; B is a plain TUN",
    mtu: 1420,
    offloadA: true,
    offloadB: false,
    segment: true,
    batch: 64,
    reader: "poll",
  },
];

const PORT = 5555;
const encoder = new TextEncoder();

if (Deno.args[0] === "relay") {
  await relay(JSON.parse(Deno.args[1]));
} else {
  await orchestrate();
}

// ---------------------------------------------------------------------------------------------
// Orchestrator

async function orchestrate(): Promise<void> {
  const seconds = Number(flag("--seconds") ?? "5");
  const runs = Number(flag("--runs") ?? "2");
  const only = flag("--only")?.split(",");
  const results: Record<string, number[]> = {};
  const variants = VARIANTS.filter((v) => !only || only.includes(v.name));
  // Round-robin over the variants so that load from other work on the machine spreads evenly:
  // compare figures within one invocation only.
  for (let r = 0; r < runs; r++) {
    for (const variant of variants) {
      const { mbits, rtt, stats } = await measure(variant, seconds);
      (results[variant.name] ??= []).push(mbits);
      console.log(
        `${variant.name.padEnd(18)} run ${r + 1}: ${mbits.toFixed(0).padStart(5)} Mbit/s` +
          `  idle ping ${rtt}  ${stats}`,
      );
    }
  }
  console.log("\nvariant            Mbit/s per run        description");
  for (const variant of VARIANTS.filter((v) => results[v.name])) {
    const figures = results[variant.name].map((m) => m.toFixed(0)).join(", ");
    console.log(`${variant.name.padEnd(18)} ${figures.padEnd(21)} ${variant.description}`);
  }
}

async function measure(
  variant: Variant,
  seconds: number,
): Promise<{ mbits: number; rtt: string; stats: string }> {
  const id = crypto.randomUUID().slice(0, 6);
  const nsA = `evp-a-${id}`, nsB = `evp-b-${id}`;
  const children: Deno.ChildProcess[] = [];
  try {
    await sh("ip", "netns", "add", nsA);
    await sh("ip", "netns", "add", nsB);
    await sh(
      "ip",
      "link",
      "add",
      `va${id}`,
      "netns",
      nsA,
      "type",
      "veth",
      "peer",
      `vb${id}`,
      "netns",
      nsB,
    );
    await sh("ip", "-n", nsA, "addr", "add", "10.250.0.1/24", "dev", `va${id}`);
    await sh("ip", "-n", nsB, "addr", "add", "10.250.0.2/24", "dev", `vb${id}`);
    for (const [ns, dev] of [[nsA, `va${id}`], [nsB, `vb${id}`]]) {
      await sh("ip", "-n", ns, "link", "set", dev, "up");
      await sh("ip", "-n", ns, "link", "set", "lo", "up");
    }
    const common = { mtu: variant.mtu, batch: variant.batch, reader: variant.reader };
    const b = spawnRelay(nsB, {
      ...common,
      tun: "10.251.0.2/24",
      offload: variant.offloadB,
      segment: false,
      listen: true,
      peerFrames: variant.offloadA && !variant.segment,
    });
    children.push(b.child);
    await b.ready;
    const a = spawnRelay(nsA, {
      ...common,
      tun: "10.251.0.1/24",
      offload: variant.offloadA,
      segment: variant.segment,
      listen: false,
      peerFrames: variant.offloadB,
    });
    children.push(a.child);
    await a.ready;
    const rtt = await idlePing(nsA);
    const server = new Deno.Command("ip", {
      args: ["netns", "exec", nsB, "iperf3", "-s", "-1", "-B", "10.251.0.2"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    children.push(server);
    let report: { end: { sum_received: { bits_per_second: number } } } | undefined;
    for (let attempt = 0; attempt < 30 && !report; attempt++) {
      await sleep(100);
      const out = await new Deno.Command("ip", {
        args: ["netns", "exec", nsA, "iperf3", "-c", "10.251.0.2", "-t", String(seconds), "-J"],
        stdout: "piped",
        stderr: "null",
      }).output();
      if (out.success) report = JSON.parse(new TextDecoder().decode(out.stdout));
    }
    if (!report) throw new Error(`iperf3 failed for ${variant.name}`);
    const stats = await Promise.all([a, b].map((r) => r.stop()));
    return {
      mbits: report.end.sum_received.bits_per_second / 1e6,
      rtt,
      stats: `A ${stats[0]} | B ${stats[1]}`,
    };
  } finally {
    for (const child of children) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
      await child.status;
    }
    await sh("ip", "netns", "delete", nsA).catch(() => {});
    await sh("ip", "netns", "delete", nsB).catch(() => {});
  }
}

interface RelayConfig {
  tun: string;
  mtu: number;
  offload: boolean;
  segment: boolean;
  batch: number;
  reader: "poll" | "worker-read";
  listen: boolean;
  /** The peer sends vnet_hdr frames (offload without segmentation), not plain packets. */
  peerFrames: boolean;
}

function spawnRelay(ns: string, config: RelayConfig) {
  const child = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      ns,
      Deno.execPath(),
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      "relay",
      JSON.stringify(config),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const nextLine = async (): Promise<string> => {
    while (!buffered.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error("relay exited");
      buffered += value;
    }
    const at = buffered.indexOf("\n");
    const line = buffered.slice(0, at);
    buffered = buffered.slice(at + 1);
    return line;
  };
  return {
    child,
    ready: nextLine(),
    stop: async (): Promise<string> => {
      const writer = child.stdin.getWriter();
      await writer.write(encoder.encode("stop\n"));
      await writer.close();
      const line = await nextLine();
      await lines.cancel();
      return line;
    },
  };
}

async function idlePing(ns: string): Promise<string> {
  const out = await new Deno.Command("ip", {
    args: ["netns", "exec", ns, "ping", "-c", "5", "-i", "0.2", "-q", "10.251.0.2"],
    stdout: "piped",
  }).output();
  const m = /= [\d.]+\/([\d.]+)\//.exec(new TextDecoder().decode(out.stdout));
  return m ? `${m[1]} ms` : "n/a";
}

// ---------------------------------------------------------------------------------------------
// Relay (runs inside a namespace)

async function relay(config: RelayConfig): Promise<void> {
  const tun = TunDevice.open({ ipv4: config.tun, mtu: config.mtu, offload: config.offload });
  let conn: Deno.TcpConn;
  if (config.listen) {
    const listener = Deno.listen({ hostname: "10.250.0.2", port: PORT });
    console.log("listening");
    conn = await listener.accept();
    listener.close();
  } else {
    conn = await Deno.connect({ hostname: "10.250.0.2", port: PORT });
    console.log("connected");
  }
  conn.setNoDelay(true);
  const counters = { socketWrites: 0, segments: 0 };
  const toSocket = config.reader === "worker-read"
    ? tunToSocketWorkerRead(tun, conn, counters)
    : tunToSocket(tun, conn, config, counters);
  const fromSocket = socketToTun(conn, tun, config.peerFrames);
  await waitForStop();
  const s = tun.stats;
  const perWait = s.readWaits ? (s.rxPackets / s.readWaits).toFixed(1) : "-";
  console.log(
    `rx ${s.rxPackets} pkts/${mb(s.rxBytes)} (${perWait}/wait) tx ${s.txPackets}/${
      mb(s.txBytes)
    } drop ${s.txDropped} sockWrites ${counters.socketWrites}` +
      (config.segment ? ` segments ${counters.segments}` : ""),
  );
  conn.close();
  await tun.close();
  await Promise.allSettled([toSocket, fromSocket]);
  Deno.exit(0);
}

async function tunToSocket(
  tun: TunDevice,
  conn: Deno.TcpConn,
  config: RelayConfig,
  counters: { socketWrites: number; segments: number },
): Promise<void> {
  const buffers = Array.from({ length: config.batch }, () => new Uint8Array(tun.frameSize));
  const lengths = new Uint32Array(config.batch);
  const out = new Uint8Array(1 << 20);
  const scratch = new Uint8Array(65535);
  let used = 0;
  const append = (frame: Uint8Array) => {
    if (used + 2 + frame.length > out.length) throw new Error("batch buffer overflow");
    out[used] = frame.length >> 8;
    out[used + 1] = frame.length & 0xff;
    out.set(frame, used + 2);
    used += 2 + frame.length;
  };
  for (;;) {
    const n = await tun.readBatch(buffers, lengths);
    if (n === 0) return;
    for (let i = 0; i < n; i++) {
      const frame = buffers[i].subarray(0, lengths[i]);
      if (config.segment) {
        counters.segments += forEachPacket(frame, scratch, append);
      } else {
        append(frame);
      }
      if (used > out.length - 70_000) {
        await writeAll(conn, out.subarray(0, used));
        counters.socketWrites++;
        used = 0;
      }
    }
    if (used > 0) {
      await writeAll(conn, out.subarray(0, used));
      counters.socketWrites++;
      used = 0;
    }
  }
}

// Strategy kept for comparison only: the fd is made blocking and every read() runs on a
// worker thread (one thread hop per packet, no poll).
async function tunToSocketWorkerRead(
  tun: TunDevice,
  conn: Deno.TcpConn,
  counters: { socketWrites: number; segments: number },
): Promise<void> {
  const lib = Deno.dlopen(
    "libc.so.6",
    {
      read: { parameters: ["i32", "buffer", "usize"], result: "isize", nonblocking: true },
      fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
    } as const,
  );
  const F_GETFL = 3, F_SETFL = 4, O_NONBLOCK = 0x800;
  lib.symbols.fcntl(tun.fd, F_SETFL, lib.symbols.fcntl(tun.fd, F_GETFL, 0) & ~O_NONBLOCK);
  const buffer = new Uint8Array(tun.frameSize + 2);
  for (;;) {
    const n = Number(await lib.symbols.read(tun.fd, buffer.subarray(2), BigInt(tun.frameSize)));
    if (n <= 0) return;
    buffer[0] = n >> 8;
    buffer[1] = n & 0xff;
    await writeAll(conn, buffer.subarray(0, n + 2));
    counters.socketWrites++;
  }
}

async function socketToTun(
  conn: Deno.TcpConn,
  tun: TunDevice,
  peerFrames: boolean,
): Promise<void> {
  const buffer = new Uint8Array(4 << 20);
  let start = 0, end = 0;
  for (;;) {
    if (end === buffer.length) {
      buffer.copyWithin(0, start, end);
      end -= start;
      start = 0;
    }
    const n = await conn.read(buffer.subarray(end)).catch(() => null);
    if (n === null) return;
    end += n;
    while (end - start >= 2) {
      const length = (buffer[start] << 8) | buffer[start + 1];
      if (end - start < 2 + length) break;
      const frame = buffer.subarray(start + 2, start + 2 + length);
      if (tun.closed) return;
      // Plain packets from the peer go behind a zeroed vnet header on an offload TUN.
      const ok = peerFrames ? tun.writeSync(frame) : tun.writePacketSync(frame);
      if (!ok) await tun.writable();
      start += 2 + length;
    }
    if (start === end) start = end = 0;
  }
}

async function writeAll(conn: Deno.TcpConn, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await conn.write(bytes.subarray(at));
}

async function waitForStop(): Promise<void> {
  const reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("stop")) {
    const { value, done } = await reader.read();
    if (done) return;
    text += value;
  }
}

// ---------------------------------------------------------------------------------------------

function flag(name: string): string | undefined {
  const at = Deno.args.indexOf(name);
  return at >= 0 ? Deno.args[at + 1] : undefined;
}

async function sh(cmd: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(0)}MB`;
}
