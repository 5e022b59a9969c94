/** Test support for DNS: queries, garbage packets, `dig`, a tiny upstream DNS server on loopback. */
import { frame, readFrame, writeAll } from "../../lib/dns/tcp_framing.ts";
import {
  decodeMessage,
  type DnsMessage,
  type DnsRecord,
  encodeMessage,
  FLAG,
  MAX_MESSAGE_BYTES,
} from "../../lib/dns/wire.ts";

/** The encoded query for `name`/`type`. */
export function query(
  name: string,
  type: number,
  options: { id?: number; edns?: number; flags?: number } = {},
): Uint8Array {
  return encodeMessage({
    id: options.id ?? 4242,
    flags: options.flags ?? FLAG.RD,
    questions: [{ name, type, class: 1 }],
    answers: [],
    authorities: [],
    additionals: [],
    edns: options.edns ? { udpPayloadSize: options.edns, dnssecOk: false } : undefined,
  });
}

/**
 * `count` packets that are not answerable queries, cycling through kinds: short headers,
 * responses, cut names, compression pointers to themselves, bad label types, oversize
 * datagrams and random bytes with the response bit set.
 */
export function* garbagePackets(count: number): Generator<{ kind: string; bytes: Uint8Array }> {
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
  const header = (
    flags: number,
  ) => [random(), random(), flags >> 8, flags & 0xff, 0, 1, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < count; i++) {
    switch (i % 7) {
      case 0:
        yield {
          kind: "short",
          bytes: new Uint8Array(Array.from({ length: i % 12 }, random)),
        };
        break;
      case 1:
        yield { kind: "response", bytes: query("x.mesh", 1, { flags: FLAG.QR }) };
        break;
      case 2:
        yield {
          kind: "cut name",
          bytes: new Uint8Array([...header(0x0100), 63, 0x61, 0x62, 0x63]),
        };
        break;
      case 3:
        yield {
          kind: "compression loop",
          bytes: new Uint8Array([...header(0x0100), 0xc0, 12, 0, 1, 0, 1]),
        };
        break;
      case 4:
        yield {
          kind: "bad label",
          bytes: new Uint8Array([...header(0x0100), 0x41, 0x61, 0, 0, 1, 0, 1]),
        };
        break;
      case 5:
        yield { kind: "oversize", bytes: new Uint8Array(5000).fill(random()) };
        break;
      default: {
        const bytes = new Uint8Array(Array.from({ length: 12 + (i % 300) }, random));
        bytes[2] |= 0x80;
        yield { kind: "random response", bytes };
      }
    }
  }
}

/** One UDP exchange with a server on 127.0.0.1; undefined when nothing came back in time. */
export async function udpExchange(
  port: number,
  bytes: Uint8Array,
  timeoutMs = 3000,
): Promise<DnsMessage | undefined> {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const timer = setTimeout(() => socket.close(), timeoutMs);
  try {
    await socket.send(bytes, { transport: "udp", hostname: "127.0.0.1", port });
    const [data] = await socket.receive();
    return decodeMessage(data, MAX_MESSAGE_BYTES);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    try {
      socket.close();
    } catch { /* closed by the timer */ }
  }
}

/** Why `dig` cannot be used, or undefined. */
export function digSkipReason(): string | undefined {
  try {
    new Deno.Command("dig", { args: ["-v"], stdout: "null", stderr: "null" }).outputSync();
    return undefined;
  } catch {
    return "dig is not installed (Debian package bind9-dnsutils)";
  }
}

/** What `dig` printed, parsed. */
export interface DigResult {
  status: string;
  flags: string[];
  answers: { name: string; ttl: number; type: string; data: string }[];
  authority: { name: string; ttl: number; type: string; data: string }[];
}

/** Asks the server on 127.0.0.1:`port` with `dig` (over TCP with `tcp`). */
export async function dig(
  port: number,
  name: string,
  type: string,
  options: { tcp?: boolean; server?: string; netns?: string } = {},
): Promise<DigResult> {
  const args = [
    `@${options.server ?? "127.0.0.1"}`,
    "-p",
    String(port),
    "+tries=1",
    "+time=5",
    "+noall",
    "+comments",
    "+answer",
    "+authority",
    ...(options.tcp ? ["+tcp"] : []),
    name,
    type,
  ];
  const [cmd, ...rest] = options.netns
    ? ["ip", "netns", "exec", options.netns, "dig", ...args]
    : ["dig", ...args];
  const out = await new Deno.Command(cmd, { args: rest, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  const status = /status: (\w+)/.exec(text)?.[1];
  if (!out.success || !status) throw new Error(`dig ${args.join(" ")} failed:\n${text}`);
  const flags = (/;; flags: ([\w ]+);/.exec(text)?.[1] ?? "").split(" ");
  const section = (title: string) => {
    const start = text.indexOf(`;; ${title} SECTION:`);
    if (start < 0) return [];
    const lines = text.slice(start).split("\n").slice(1);
    const end = lines.findIndex((l) => l.trim() === "");
    return lines.slice(0, end < 0 ? undefined : end).map((l) => {
      const [n, ttl, , t, ...data] = l.split(/\s+/);
      return { name: n, ttl: Number(ttl), type: t, data: data.join(" ") };
    });
  };
  return { status, flags, answers: section("ANSWER"), authority: section("AUTHORITY") };
}

/** A query the upstream test server received. */
export interface UpstreamQuery {
  transport: "udp" | "tcp";
  name: string;
  type: number;
}

/** How the upstream test server answers: records, rcode, and whether UDP answers are cut. */
export interface UpstreamAnswer {
  rcode?: number;
  answers?: DnsRecord[];
  authorities?: DnsRecord[];
  /** Answer UDP with TC set and no records (the full answer only over TCP). */
  truncateUdp?: boolean;
  /** Do not answer at all. */
  silent?: boolean;
}

/** A tiny DNS server on 127.0.0.1 (UDP and TCP, one port) that counts what it is asked. */
export class Upstream {
  readonly queries: UpstreamQuery[] = [];
  readonly port: number;
  readonly #udp: Deno.DatagramConn;
  readonly #tcp: Deno.TcpListener;
  readonly #loops: Promise<void>[];
  readonly #conns = new Set<Deno.Conn>();

  constructor(readonly answer: (q: UpstreamQuery) => UpstreamAnswer) {
    for (;;) {
      const udp = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
      const port = (udp.addr as Deno.NetAddr).port;
      try {
        this.#tcp = Deno.listen({ hostname: "127.0.0.1", port });
        this.#udp = udp;
        this.port = port;
        break;
      } catch {
        udp.close();
      }
    }
    this.#loops = [this.#serveUdp(), this.#serveTcp()];
  }

  /** Queries for `name` (any case, with its trailing dot). */
  count(name: string, transport?: "udp" | "tcp"): number {
    return this.queries.filter((q) =>
      q.name.toLowerCase() === name.toLowerCase() && (!transport || q.transport === transport)
    ).length;
  }

  #reply(bytes: Uint8Array, transport: "udp" | "tcp"): Uint8Array | undefined {
    const m = decodeMessage(bytes, MAX_MESSAGE_BYTES);
    const q = { transport, name: m.questions[0].name, type: m.questions[0].type };
    this.queries.push(q);
    const a = this.answer(q);
    if (a.silent) return undefined;
    const cut = transport === "udp" && a.truncateUdp;
    return encodeMessage({
      id: m.id,
      flags: FLAG.QR | FLAG.RD | FLAG.RA | (cut ? FLAG.TC : 0) | (a.rcode ?? 0),
      questions: m.questions,
      answers: cut ? [] : a.answers ?? [],
      authorities: cut ? [] : a.authorities ?? [],
      additionals: [],
    });
  }

  async #serveUdp(): Promise<void> {
    for (;;) {
      let data: Uint8Array, from: Deno.Addr;
      try {
        [data, from] = await this.#udp.receive();
      } catch {
        return;
      }
      const reply = this.#reply(data, "udp");
      if (reply) await this.#udp.send(reply, from).catch(() => {});
    }
  }

  async #serveTcp(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#tcp.accept();
      } catch {
        return;
      }
      this.#conns.add(conn);
      (async () => {
        try {
          for (;;) {
            const f = await readFrame(conn, MAX_MESSAGE_BYTES);
            if (!f.ok) break;
            const reply = this.#reply(f.message, "tcp");
            if (reply) await writeAll(conn, frame(reply));
          }
        } catch { /* closed */ }
        this.#conns.delete(conn);
        try {
          conn.close();
        } catch { /* closed */ }
      })();
    }
  }

  async close(): Promise<void> {
    this.#udp.close();
    this.#tcp.close();
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await Promise.all(this.#loops);
  }
}

/** An A record for tests. */
export function aRecord(name: string, address: string, ttl: number): DnsRecord {
  return { name, type: "A", class: "IN", ttl, data: address };
}

/** A clock whose time can be moved forward; timers are real. */
export class SteppedClock {
  offset = 0;
  now = (): number => Date.now() + this.offset;
  setTimeout = (fn: () => void, ms: number): unknown => setTimeout(fn, ms);
  clearTimeout = (handle: unknown): void => clearTimeout(handle as number);
}
