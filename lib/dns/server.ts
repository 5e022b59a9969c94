/** The DNS server: UDP and TCP listeners on one address, bounded, answering through a {@link DnsResolver}. */
import type { Clock } from "../util/clock.ts";
import { errorMessage } from "../util/errors.ts";
import type { Logger } from "../util/logger.ts";
import { formatHostPort, type HostPort } from "./address.ts";
import { Forwarder, type ForwarderCounters } from "./forwarder.ts";
import { type AnswerSource, type DnsLedger, DnsResolver } from "./resolver.ts";
import { frame, readFrame, writeAll } from "./tcp_framing.ts";
import {
  CLASSIC_UDP_BYTES,
  decodeMessage,
  type DnsMessage,
  DnsWireError,
  EDNS_UDP_BYTES,
  encodeMessage,
  FLAG,
  MAX_MESSAGE_BYTES,
  MAX_QUERY_BYTES,
  OPCODE_QUERY,
  opcodeOf,
  RCODE,
} from "./wire.ts";

/** Questions being answered at once (UDP and TCP); more are dropped as `overload`. */
export const MAX_IN_FLIGHT = 256;
/** Open TCP connections at once; more are closed at once as `tcp_overload`. */
export const MAX_TCP_CONNECTIONS = 64;
/** A TCP connection with no complete query for this long is closed (RFC 7766 suggests seconds). */
export const TCP_IDLE_MS = 10_000;

/** Why a query got no answer: the `reason` label of the drops counter. */
export type DropReason =
  | "oversize"
  | "truncated"
  | "malformed"
  | "not_query"
  | "overload"
  | "tcp_overload"
  | "tcp_idle"
  | "internal";

/** Counters of a DNS server. */
export interface DnsCounters {
  /** Queries received, by transport. */
  queries: { udp: number; tcp: number };
  /** Responses sent, by where the answer came from. */
  answers: Partial<Record<AnswerSource | "formerr", number>>;
  /** UDP answers cut to the header with TC set (the client retries over TCP). */
  truncated: number;
  /** TCP connections open now. */
  tcpConnections: number;
  /** Queries dropped without an answer, by reason. */
  drops: Partial<Record<DropReason, number>>;
  /** Keys of the `dns` bucket skipped as unusable expressions; records skipped as invalid. */
  invalidKeys: number;
  invalidRecords: number;
  /** Queries whose key matching stopped at the work budget. */
  budgetExhausted: number;
  forwarder?: ForwarderCounters;
  /** Cached forwarded questions. */
  cacheEntries: number;
}

/** Forwarding settings (Go's `--dns-forwarder`, `--dns-forward-server`, `--dns-cache-size`). */
export interface DnsForwardOptions {
  servers: readonly HostPort[];
  cacheSize: number;
  timeoutMs?: number;
}

/** Options of {@link createDnsServer}. */
export interface DnsServerOptions {
  listen: HostPort;
  /** Zone of machine names (absolute, lower case); none when undefined. */
  zone?: string;
  /** Forwarding; off when undefined. */
  forward?: DnsForwardOptions;
  /** Bounds (defaults {@link MAX_IN_FLIGHT}, {@link MAX_TCP_CONNECTIONS}, {@link TCP_IDLE_MS}). */
  limits?: { maxInFlight?: number; maxTcpConnections?: number; tcpIdleMs?: number };
}

/** Components of {@link createDnsServer}. */
export interface DnsServerComponents {
  ledger: DnsLedger;
  logger: Logger;
  clock: Clock;
}

/**
 * A DNS server: {@link start} binds UDP and TCP on the same address, {@link stop} closes
 * everything it opened.
 */
export interface DnsServer {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The bound address (the real port when 0 was asked), once started. */
  readonly address: HostPort | undefined;
  /** A snapshot of the counters. */
  counters(): DnsCounters;
}

/**
 * Creates a DNS server answering from the ledger (see {@link DnsResolver}) over UDP and TCP.
 * Every query is bounded: at most {@link MAX_QUERY_BYTES} bytes, {@link MAX_IN_FLIGHT}
 * answered at once, {@link MAX_TCP_CONNECTIONS} TCP connections idle at most
 * {@link TCP_IDLE_MS}; anything else is dropped and counted, and the server keeps answering.
 *
 * @example
 * ```ts
 * const dns = createDnsServer({ ledger: mesh.ledger, logger, clock: systemClock }, {
 *   listen: { hostname: "127.0.0.1", port: 5353 },
 *   zone: "edgevpn.",
 *   forward: { servers: [{ hostname: "1.1.1.1", port: 53 }], cacheSize: 200 },
 * });
 * await dns.start();
 * await dns.stop();
 * ```
 */
export function createDnsServer(
  components: DnsServerComponents,
  options: DnsServerOptions,
): DnsServer {
  return new Server(components, options);
}

class Server implements DnsServer {
  readonly #resolver: DnsResolver;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #options: DnsServerOptions;
  readonly #limits: { maxInFlight: number; maxTcpConnections: number; tcpIdleMs: number };
  readonly #forwarder?: Forwarder;
  #udp?: Deno.DatagramConn;
  #tcp?: Deno.TcpListener;
  readonly #conns = new Set<Deno.TcpConn>();
  readonly #loops: Promise<void>[] = [];
  readonly #handlers = new Set<Promise<void>>();
  #inFlight = 0;
  #address?: HostPort;
  #stopping = false;
  readonly #counters = {
    queries: { udp: 0, tcp: 0 },
    answers: {} as Record<string, number>,
    truncated: 0,
    drops: {} as Record<string, number>,
  };

  constructor(components: DnsServerComponents, options: DnsServerOptions) {
    this.#log = components.logger.child("dns");
    this.#clock = components.clock;
    this.#options = options;
    this.#limits = {
      maxInFlight: options.limits?.maxInFlight ?? MAX_IN_FLIGHT,
      maxTcpConnections: options.limits?.maxTcpConnections ?? MAX_TCP_CONNECTIONS,
      tcpIdleMs: options.limits?.tcpIdleMs ?? TCP_IDLE_MS,
    };
    if (options.forward) {
      this.#forwarder = new Forwarder({ clock: this.#clock, logger: this.#log }, options.forward);
    }
    this.#resolver = new DnsResolver({
      ledger: components.ledger,
      logger: this.#log,
      clock: this.#clock,
      forwarder: this.#forwarder,
    }, { zone: options.zone });
  }

  get address(): HostPort | undefined {
    return this.#address;
  }

  counters(): DnsCounters {
    const resolver = this.#resolver.counters;
    return {
      queries: { ...this.#counters.queries },
      answers: { ...this.#counters.answers },
      truncated: this.#counters.truncated,
      tcpConnections: this.#conns.size,
      drops: { ...this.#counters.drops },
      invalidKeys: resolver.invalidKeys,
      invalidRecords: resolver.invalidRecords,
      budgetExhausted: resolver.budgetExhausted,
      forwarder: this.#forwarder?.counters,
      cacheEntries: this.#forwarder?.cacheSize ?? 0,
    };
  }

  async start(): Promise<void> {
    const { hostname, port } = this.#options.listen;
    // With port 0, UDP picks the port and TCP takes the same one (retried if it is taken).
    for (let attempt = 0;; attempt++) {
      const udp = Deno.listenDatagram({ transport: "udp", hostname, port });
      const bound = (udp.addr as Deno.NetAddr).port;
      try {
        this.#tcp = Deno.listen({ transport: "tcp", hostname, port: bound });
        this.#udp = udp;
        this.#address = { hostname, port: bound };
        break;
      } catch (e) {
        udp.close();
        if (port !== 0 || attempt >= 8 || !(e instanceof Deno.errors.AddrInUse)) throw e;
      }
    }
    this.#resolver.start();
    this.#loops.push(this.#udpLoop(this.#udp!), this.#tcpLoop(this.#tcp!));
    this.#log.info(`DNS server listening on ${formatHostPort(this.#address!)} (UDP and TCP)`);
    await Promise.resolve();
  }

  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#resolver.stop();
    this.#forwarder?.stop();
    try {
      this.#udp?.close();
    } catch { /* closed */ }
    try {
      this.#tcp?.close();
    } catch { /* closed */ }
    for (const conn of this.#conns) closeQuietly(conn);
    await Promise.allSettled(this.#loops);
    await Promise.allSettled([...this.#handlers]);
  }

  #drop(reason: DropReason): void {
    this.#counters.drops[reason] = (this.#counters.drops[reason] ?? 0) + 1;
  }

  #track(work: Promise<void>): void {
    const tracked: Promise<void> = work.catch((e) => {
      this.#drop("internal");
      this.#log.warn("DNS handler failed", { error: errorMessage(e) });
    }).finally(() => this.#handlers.delete(tracked));
    this.#handlers.add(tracked);
  }

  async #udpLoop(udp: Deno.DatagramConn): Promise<void> {
    const buffer = new Uint8Array(MAX_QUERY_BYTES + 1);
    let failures = 0;
    while (!this.#stopping) {
      let data: Uint8Array;
      let from: Deno.Addr;
      try {
        [data, from] = await udp.receive(buffer);
        failures = 0;
      } catch (e) {
        if (this.#stopping) return;
        // A failed receive (an ICMP error reported on the socket) does not stop the server;
        // a socket that only fails does, instead of spinning.
        if (++failures >= 100 || e instanceof Deno.errors.BadResource) {
          this.#log.error("DNS over UDP stopped: the socket fails", { error: errorMessage(e) });
          return;
        }
        this.#log.debug("UDP receive failed", { error: errorMessage(e) });
        continue;
      }
      this.#counters.queries.udp++;
      const query = this.#decode(data);
      if (!query) continue;
      if (this.#inFlight >= this.#limits.maxInFlight) {
        this.#drop("overload");
        continue;
      }
      this.#track(
        this.#answer(query, "udp").then(async (response) => {
          if (!response || this.#stopping) return;
          try {
            await udp.send(response, from);
          } catch (e) {
            this.#log.debug("UDP send failed", { error: errorMessage(e) });
          }
        }),
      );
    }
  }

  async #tcpLoop(listener: Deno.TcpListener): Promise<void> {
    let failures = 0;
    while (!this.#stopping) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
        failures = 0;
      } catch (e) {
        if (this.#stopping) return;
        // Out of file descriptors, for one: wait a little rather than spin.
        if (++failures >= 100 || e instanceof Deno.errors.BadResource) {
          this.#log.error("DNS over TCP stopped: the listener fails", { error: errorMessage(e) });
          return;
        }
        this.#log.debug("TCP accept failed", { error: errorMessage(e) });
        await new Promise((resolve) => this.#clock.setTimeout(() => resolve(undefined), 10));
        continue;
      }
      if (this.#conns.size >= this.#limits.maxTcpConnections) {
        this.#drop("tcp_overload");
        closeQuietly(conn);
        continue;
      }
      this.#conns.add(conn);
      this.#track(
        this.#serveConn(conn).finally(() => {
          this.#conns.delete(conn);
          closeQuietly(conn);
        }),
      );
    }
  }

  /** Answers the queries of one TCP connection in order until it ends, idles or misbehaves. */
  async #serveConn(conn: Deno.TcpConn): Promise<void> {
    while (!this.#stopping) {
      let idle = false;
      const timer = this.#clock.setTimeout(() => {
        idle = true;
        closeQuietly(conn);
      }, this.#limits.tcpIdleMs);
      let result;
      try {
        result = await readFrame(conn, MAX_QUERY_BYTES);
      } catch {
        result = { ok: false as const, error: "eof" as const };
      } finally {
        this.#clock.clearTimeout(timer);
      }
      if (idle) {
        this.#drop("tcp_idle");
        return;
      }
      if (!result.ok) {
        if (result.error !== "eof") {
          this.#counters.queries.tcp++;
          this.#drop(result.error);
        }
        return;
      }
      this.#counters.queries.tcp++;
      const query = this.#decode(result.message);
      if (!query) return;
      if (this.#inFlight >= this.#limits.maxInFlight) {
        this.#drop("overload");
        return;
      }
      const response = await this.#answer(query, "tcp");
      if (!response) return;
      try {
        await writeAll(conn, frame(response));
      } catch {
        return;
      }
    }
  }

  #decode(data: Uint8Array): DnsMessage | undefined {
    try {
      const query = decodeMessage(data, MAX_QUERY_BYTES);
      if ((query.flags & FLAG.QR) !== 0) {
        this.#drop("not_query");
        return undefined;
      }
      return query;
    } catch (e) {
      this.#drop(e instanceof DnsWireError ? e.reason : "malformed");
      return undefined;
    }
  }

  /** The encoded response to `query`, cut to fit UDP; undefined when nothing is sent. */
  async #answer(query: DnsMessage, transport: "udp" | "tcp"): Promise<Uint8Array | undefined> {
    this.#inFlight++;
    try {
      const response = await this.#respond(query);
      let bytes = encodeMessage(response);
      const limit = transport === "tcp"
        ? MAX_MESSAGE_BYTES
        : query.edns
        ? Math.min(Math.max(query.edns.udpPayloadSize, CLASSIC_UDP_BYTES), EDNS_UDP_BYTES)
        : CLASSIC_UDP_BYTES;
      if (bytes.length > limit) {
        this.#counters.truncated++;
        bytes = encodeMessage({
          ...response,
          flags: response.flags | FLAG.TC,
          answers: [],
          authorities: [],
          additionals: [],
        });
      }
      return bytes;
    } catch (e) {
      if (e instanceof DnsWireError) {
        // A question dns-packet decoded but cannot encode back (odd bytes in a label).
        this.#drop("malformed");
      } else {
        this.#drop("internal");
        this.#log.warn("DNS query failed", { error: errorMessage(e) });
      }
      return undefined;
    } finally {
      this.#inFlight--;
    }
  }

  async #respond(query: DnsMessage): Promise<DnsMessage> {
    const opcode = opcodeOf(query.flags);
    const base = {
      id: query.id,
      questions: query.questions.slice(0, 1),
      answers: [],
      authorities: [],
      additionals: [],
      edns: query.edns ? { udpPayloadSize: EDNS_UDP_BYTES, dnssecOk: false } : undefined,
    };
    const flags = FLAG.QR | (opcode << 11) | (query.flags & (FLAG.RD | FLAG.CD)) |
      (this.#forwarder ? FLAG.RA : 0);
    const count = (source: AnswerSource | "formerr") => {
      this.#counters.answers[source] = (this.#counters.answers[source] ?? 0) + 1;
    };
    if (opcode !== OPCODE_QUERY) {
      count("notimp");
      return { ...base, flags: flags | RCODE.NOTIMP };
    }
    if (query.questions.length === 0) {
      count("formerr");
      return { ...base, flags: flags | RCODE.FORMERR };
    }
    const r = await this.#resolver.resolve(query.questions[0]);
    count(r.source);
    return {
      ...base,
      flags: flags | (r.authoritative ? FLAG.AA : 0) | r.rcode,
      answers: r.answers,
      authorities: r.authorities,
      additionals: r.additionals,
    };
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}
