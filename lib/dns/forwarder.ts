/** Forwarding to upstream DNS servers: UDP with TCP fallback on truncation, a timeout, one query in flight per question, and a cache that honours TTLs. */
import { LRUCache } from "lru-cache";
import type { Clock } from "../util/clock.ts";
import { parseIP } from "../net/ip.ts";
import { errorMessage } from "../util/errors.ts";
import type { Logger } from "../util/logger.ts";
import { formatHostPort, type HostPort } from "./address.ts";
import { frame, readFrame, writeAll } from "./tcp_framing.ts";
import {
  decodeMessage,
  type DnsMessage,
  type DnsQuestion,
  type DnsRecord,
  EDNS_UDP_BYTES,
  encodeMessage,
  FLAG,
  MAX_MESSAGE_BYTES,
  packetTypeNumber,
  RCODE,
  rcodeOf,
} from "./wire.ts";

/** Time allowed to each upstream server for one question (UDP and a TCP retry together). */
export const DEFAULT_FORWARD_TIMEOUT_MS = 5_000;
/** Longest time an answer stays cached, whatever its TTL. */
export const MAX_CACHE_TTL_S = 86_400;

/** An upstream answer: its rcode and sections (without OPT), TTLs as they are now. */
export interface ForwardAnswer {
  rcode: number;
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
  /** Where it came from. */
  source: "upstream" | "cache";
}

/** Counters of a forwarder. */
export interface ForwarderCounters {
  /** Questions answered from the cache. */
  cacheHits: number;
  /** Questions that needed an upstream answer. */
  cacheMisses: number;
  /** Questions that joined one already in flight. */
  coalesced: number;
  /** Queries sent upstream (UDP), and TCP retries after a truncated UDP answer. */
  upstreamQueries: number;
  tcpFallbacks: number;
  /** Upstream exchanges that failed, by reason (`timeout`, `error`, `servfail`, `refused`, …). */
  upstreamFailures: Record<string, number>;
  /** UDP datagrams ignored while waiting: wrong sender, id or question, or undecodable. */
  upstreamMismatches: number;
  /** Questions every server failed. */
  failures: number;
}

/** Options of a {@link Forwarder}. */
export interface ForwarderOptions {
  servers: readonly HostPort[];
  /** Cached questions at most; 0 disables the cache. */
  cacheSize: number;
  /** Per server; default {@link DEFAULT_FORWARD_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/** Components of a {@link Forwarder}. */
export interface ForwarderComponents {
  clock: Clock;
  logger: Logger;
}

interface CacheEntry {
  rcode: number;
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
  storedAt: number;
}

/** Every server failed to answer a question. */
export class ForwardError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ForwardError";
  }
}

/**
 * Asks the forward servers in order until one gives a usable answer (NOERROR or NXDOMAIN;
 * SERVFAIL, REFUSED, timeouts and errors move to the next). Positive answers are cached for
 * the smallest TTL of their records, negative ones (NXDOMAIN, no data) for the SOA's negative
 * TTL (RFC 2308); TTLs count down while cached.
 *
 * @example
 * ```ts
 * const forwarder = new Forwarder({ clock: systemClock, logger }, {
 *   servers: [{ hostname: "127.0.0.1", port: 5300 }],
 *   cacheSize: 200,
 * });
 * const answer = await forwarder.resolve({ name: "example.com.", type: 1, class: 1 });
 * forwarder.stop();
 * ```
 */
export class Forwarder {
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #servers: readonly HostPort[];
  readonly #timeoutMs: number;
  readonly #cache?: LRUCache<string, CacheEntry>;
  readonly #inFlight = new Map<string, Promise<ForwardAnswer>>();
  readonly #closers = new Set<() => void>();
  #stopped = false;
  readonly #counters: ForwarderCounters = {
    cacheHits: 0,
    cacheMisses: 0,
    coalesced: 0,
    upstreamQueries: 0,
    tcpFallbacks: 0,
    upstreamFailures: {},
    upstreamMismatches: 0,
    failures: 0,
  };

  constructor(components: ForwarderComponents, options: ForwarderOptions) {
    this.#clock = components.clock;
    this.#log = components.logger;
    this.#servers = options.servers;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_FORWARD_TIMEOUT_MS;
    if (options.cacheSize > 0) {
      this.#cache = new LRUCache<string, CacheEntry>({
        max: options.cacheSize,
        ttlResolution: 0,
        perf: { now: () => this.#clock.now() },
      });
    }
  }

  /** A snapshot of the counters. */
  get counters(): ForwarderCounters {
    return structuredClone(this.#counters);
  }

  /** Cached questions (expired ones may still count until looked up). */
  get cacheSize(): number {
    return this.#cache?.size ?? 0;
  }

  /**
   * The answer to `question`, from the cache or from the first server that answers.
   *
   * @throws {ForwardError} when every server failed.
   */
  resolve(question: DnsQuestion): Promise<ForwardAnswer> {
    const key = `${question.name.toLowerCase()}|${question.type}|${question.class}`;
    const cached = this.#fromCache(key);
    if (cached) {
      this.#counters.cacheHits++;
      return Promise.resolve(cached);
    }
    const pending = this.#inFlight.get(key);
    if (pending) {
      this.#counters.coalesced++;
      return pending;
    }
    this.#counters.cacheMisses++;
    const asked = this.#ask(question, key).finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, asked);
    return asked;
  }

  /** Closes every upstream socket; questions in flight fail. */
  stop(): void {
    this.#stopped = true;
    for (const close of [...this.#closers]) close();
    this.#cache?.clear();
  }

  async #ask(question: DnsQuestion, key: string): Promise<ForwardAnswer> {
    const reasons: string[] = [];
    for (const server of this.#servers) {
      if (this.#stopped) break;
      let reply: DnsMessage;
      try {
        reply = await this.#exchange(question, server);
      } catch (e) {
        const reason = e instanceof UpstreamTimeout ? "timeout" : "error";
        this.#fail(reason);
        reasons.push(`${formatHostPort(server)}: ${errorMessage(e)}`);
        continue;
      }
      const rcode = rcodeOf(reply.flags);
      if (rcode !== RCODE.NOERROR && rcode !== RCODE.NXDOMAIN) {
        const reason = rcode === RCODE.SERVFAIL
          ? "servfail"
          : rcode === RCODE.REFUSED
          ? "refused"
          : "rcode";
        this.#fail(reason);
        reasons.push(`${formatHostPort(server)}: rcode ${rcode}`);
        continue;
      }
      this.#store(key, rcode, reply);
      return {
        rcode,
        answers: reply.answers,
        authorities: reply.authorities,
        additionals: reply.additionals,
        source: "upstream",
      };
    }
    this.#counters.failures++;
    const why = reasons.join("; ") || "no forward server";
    this.#log.debug("forwarding failed", { name: question.name, why });
    throw new ForwardError(`No forward server answered ${question.name}: ${why}`);
  }

  #fail(reason: string): void {
    this.#counters.upstreamFailures[reason] = (this.#counters.upstreamFailures[reason] ?? 0) + 1;
  }

  #store(key: string, rcode: number, reply: DnsMessage): void {
    if (!this.#cache) return;
    const ttl = cacheTtl(rcode, reply);
    if (ttl === undefined || ttl <= 0) return;
    this.#cache.set(key, {
      rcode,
      answers: reply.answers,
      authorities: reply.authorities,
      additionals: reply.additionals,
      storedAt: this.#clock.now(),
    }, { ttl: Math.min(ttl, MAX_CACHE_TTL_S) * 1000 });
  }

  #fromCache(key: string): ForwardAnswer | undefined {
    const entry = this.#cache?.get(key);
    if (!entry) return undefined;
    const age = Math.floor((this.#clock.now() - entry.storedAt) / 1000);
    const aged = (records: DnsRecord[]) =>
      records.map((r) => ({ ...r, ttl: Math.max(0, (r.ttl ?? 0) - age) }));
    return {
      rcode: entry.rcode,
      answers: aged(entry.answers),
      authorities: aged(entry.authorities),
      additionals: aged(entry.additionals),
      source: "cache",
    };
  }

  /** One question to one server: UDP, then TCP when the UDP answer is truncated. */
  async #exchange(question: DnsQuestion, server: HostPort): Promise<DnsMessage> {
    const deadline = this.#clock.now() + this.#timeoutMs;
    const id = crypto.getRandomValues(new Uint16Array(1))[0];
    const query = encodeMessage({
      id,
      flags: FLAG.RD,
      questions: [question],
      answers: [],
      authorities: [],
      additionals: [],
      edns: { udpPayloadSize: EDNS_UDP_BYTES, dnssecOk: false },
    });
    this.#counters.upstreamQueries++;
    const reply = await this.#exchangeUdp(query, id, question, server, deadline);
    if ((reply.flags & FLAG.TC) === 0) return reply;
    this.#counters.tcpFallbacks++;
    return await this.#exchangeTcp(query, id, question, server, deadline);
  }

  async #exchangeUdp(
    query: Uint8Array,
    id: number,
    question: DnsQuestion,
    server: HostPort,
    deadline: number,
  ): Promise<DnsMessage> {
    const socket = Deno.listenDatagram({
      transport: "udp",
      hostname: server.hostname.includes(":") ? "::" : "0.0.0.0",
      port: 0,
    });
    return await this.#withDeadline(deadline, () => socket.close(), async (expired) => {
      await socket.send(query, { transport: "udp", ...server });
      const buffer = new Uint8Array(MAX_MESSAGE_BYTES);
      for (;;) {
        let data: Uint8Array;
        let from: Deno.Addr;
        try {
          [data, from] = await socket.receive(buffer);
        } catch (e) {
          if (expired()) throw new UpstreamTimeout();
          throw e;
        }
        const reply = this.#check(data, from, id, question, server);
        if (reply) return reply;
      }
    });
  }

  async #exchangeTcp(
    query: Uint8Array,
    id: number,
    question: DnsQuestion,
    server: HostPort,
    deadline: number,
  ): Promise<DnsMessage> {
    let conn: Deno.TcpConn | undefined;
    let closed = false;
    const close = () => {
      closed = true;
      try {
        conn?.close();
      } catch { /* closed */ }
    };
    return await this.#withDeadline(deadline, close, async (expired) => {
      try {
        conn = await Deno.connect({ transport: "tcp", ...server });
        if (closed) close();
        await writeAll(conn, frame(query));
        const result = await readFrame(conn, MAX_MESSAGE_BYTES);
        if (!result.ok) throw new Error(`TCP answer: ${result.error}`);
        const reply = this.#check(result.message, undefined, id, question, server);
        if (!reply) throw new Error("TCP answer does not match the question");
        return reply;
      } catch (e) {
        if (expired()) throw new UpstreamTimeout();
        throw e;
      } finally {
        close();
      }
    });
  }

  /** Runs `work` until `deadline`, when `close` is called to end it. */
  async #withDeadline<T>(
    deadline: number,
    close: () => void,
    work: (expired: () => boolean) => Promise<T>,
  ): Promise<T> {
    let expired = false;
    const closeOnce = () => {
      this.#closers.delete(closeOnce);
      try {
        close();
      } catch { /* already closed */ }
    };
    this.#closers.add(closeOnce);
    const timer = this.#clock.setTimeout(() => {
      expired = true;
      closeOnce();
    }, Math.max(0, deadline - this.#clock.now()));
    try {
      return await work(() => expired);
    } finally {
      this.#clock.clearTimeout(timer);
      closeOnce();
    }
  }

  /** The decoded reply when it answers our query from our server; undefined (counted) otherwise. */
  #check(
    data: Uint8Array,
    from: Deno.Addr | undefined,
    id: number,
    question: DnsQuestion,
    server: HostPort,
  ): DnsMessage | undefined {
    if (
      from && (from.transport !== "udp" || from.port !== server.port ||
        !sameHost(from.hostname, server.hostname))
    ) {
      this.#counters.upstreamMismatches++;
      return undefined;
    }
    let reply: DnsMessage;
    try {
      reply = decodeMessage(data, MAX_MESSAGE_BYTES);
    } catch {
      this.#counters.upstreamMismatches++;
      return undefined;
    }
    const q = reply.questions[0];
    if (
      reply.id !== id || (reply.flags & FLAG.QR) === 0 || reply.questions.length !== 1 ||
      q.name.toLowerCase() !== question.name.toLowerCase() || q.type !== question.type ||
      q.class !== question.class
    ) {
      this.#counters.upstreamMismatches++;
      return undefined;
    }
    return reply;
  }
}

class UpstreamTimeout extends Error {
  constructor() {
    super("timed out");
  }
}

/**
 * Seconds an upstream answer may be cached: the smallest TTL of its answers; for NXDOMAIN
 * and empty NOERROR answers the SOA's negative TTL, min(SOA TTL, SOA minimum) (RFC 2308);
 * undefined when it must not be cached (no SOA in a negative answer).
 *
 * @example
 * ```ts
 * cacheTtl(0, reply); // 300 for an answer whose records have TTLs 300 and 600
 * ```
 */
export function cacheTtl(rcode: number, reply: Pick<DnsMessage, "answers" | "authorities">) {
  if (rcode === RCODE.NOERROR && reply.answers.length > 0) {
    return Math.min(...reply.answers.map((r) => r.ttl ?? 0));
  }
  const soa = reply.authorities.find((r) => packetTypeNumber(r.type) === 6);
  if (!soa) return undefined;
  const minimum = (soa.data as { minimum?: number }).minimum ?? 0;
  return Math.min(soa.ttl ?? 0, minimum);
}

function sameHost(a: string, b: string): boolean {
  const bytes = (h: string) => {
    const ip = parseIP(h);
    // An IPv4-mapped IPv6 address is its IPv4 address.
    return ip?.length === 16 && ip.subarray(0, 12).every((v, i) => v === (i < 10 ? 0 : 0xff))
      ? ip.subarray(12)
      : ip;
  };
  const x = bytes(a);
  const y = bytes(b);
  return x !== null && y !== null && x.length === y.length &&
    x.every((v, i) => v === y[i]);
}
