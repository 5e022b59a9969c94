/** `edgevpn proxy`: HTTP (plain and CONNECT) and SOCKS5 on one listener, leaving the network through live egress nodes. */
import type { EgressComponents } from "../egress/components.ts";
import {
  DEFAULT_HEAD_LIMITS,
  errorResponse,
  formatAuthority,
  forwardedHead,
  hasBody,
  HeadReader,
  type HttpErrorStatus,
  HttpHeadError,
  type HttpHeadLimits,
  type HttpRequestHead,
  parseAuthority,
} from "../egress/http_head.ts";
import { type PipeResult, pipeStream, writeAll } from "../services/pipe.ts";
import {
  describeTunnelStatus,
  TunnelStatus,
  type TunnelStatusCode,
  type TunnelTarget,
} from "../egress/protocol.ts";
import { announceUser } from "../services/users.ts";
import type { Job } from "../ledger/ledger.ts";
import { errorMessage } from "../util/errors.ts";
import { silentLogger } from "../util/logger.ts";
import { type ClientRead, ClientReader } from "./client_reader.ts";
import { type EgressAttempts, type EgressOpening, openEgress } from "./egress_client.ts";
import { EgressPicker } from "./picker.ts";
import {
  MAX_SOCKS_GREETING_BYTES,
  MAX_SOCKS_REQUEST_BYTES,
  parseSocksGreeting,
  parseSocksRequest,
  SOCKS_NO_ACCEPTABLE,
  SOCKS_NO_AUTH,
  SOCKS_VERSION,
  SocksCommand,
  SocksError,
  SocksReply,
  socksReply,
  type SocksReplyCode,
} from "./socks5.ts";

/** Options of {@link createProxy}. */
export interface ProxyOptions {
  /** Where to listen (port 0: any free port). */
  listen: { hostname: string; port: number };
  /** Egress nodes without a heartbeat for this long are dead (Go `--dead-interval`). */
  deadIntervalMs: number;
  /** How often the proxy announces itself in `users` (Go `--interval`). */
  announceIntervalMs: number;
  /** Time for a client to send its request head or SOCKS5 handshake (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Time to open a stream to an egress node and get its answer (default 30 s). */
  egressTimeoutMs?: number;
  /** Client connections at once; more are closed at once (default 512). */
  maxConnections?: number;
  headLimits?: HttpHeadLimits;
}

/**
 * Counters of a proxy.
 *
 * @example
 * ```ts ignore
 * proxy.counters().requests.socks; // SOCKS5 CONNECTs so far
 * ```
 */
export interface ProxyCounters {
  /** Client connections accepted, open now, and closed at once over the limit. */
  connections: number;
  active: number;
  overLimit: number;
  /** Requests by kind: plain HTTP, CONNECT, SOCKS5 CONNECT. */
  requests: { http: number; connect: number; socks: number };
  /** How requests left: through our tunnel or Go's egress protocol. */
  via: { tunnel: number; go: number };
  /** Answered 503 / SOCKS "network unreachable": no live egress node. */
  noEgress: number;
  /** CONNECT or SOCKS5 refused because the live egress nodes speak only Go's protocol. */
  goOnly: number;
  /** Requests retried on another egress node. */
  retries: number;
  /** Requests that failed because the egress nodes failed. */
  egressFailures: number;
  /** Destinations the egress node could not or would not reach (403, 502, 504). */
  targetFailures: number;
  /** Malformed requests and handshakes, unsupported commands. */
  malformed: number;
  /** Clients that did not send their request in time. */
  timedOut: number;
  /** Bytes from clients to egress nodes and back. */
  bytesUp: number;
  bytesDown: number;
}

/**
 * A running proxy.
 *
 * @example
 * ```ts ignore
 * const proxy = createProxy(egressComponentsOf(mesh), { listen: { hostname: "127.0.0.1", port: 8080 }, deadIntervalMs: 600_000, announceIntervalMs: 120_000 });
 * await proxy.start();
 * await proxy.stop();
 * ```
 */
export interface Proxy {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Where it listens, once started. */
  readonly address: { hostname: string; port: number } | undefined;
  counters(): ProxyCounters;
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
const DEFAULT_EGRESS_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_CONNECTIONS = 512;
const CONNECT_ESTABLISHED = new TextEncoder().encode(
  "HTTP/1.1 200 Connection established\r\n\r\n",
);

/**
 * Creates a proxy: HTTP (absolute-form requests and CONNECT) and SOCKS5 (no authentication,
 * CONNECT; IPv4, IPv6 and domain destinations) on one listener, told apart by the first byte.
 * Each request goes through a live egress node (keys of `egress` alive within the dead
 * interval), another one is tried once if it fails; our egress nodes get the tunnel protocol,
 * Go's get `/edgevpn/egress/0.1` (plain HTTP only). The proxy announces itself in `users`, as
 * egress nodes require.
 *
 * @example
 * ```ts ignore
 * const proxy = createProxy(components, { listen: { hostname: "127.0.0.1", port: 0 }, deadIntervalMs: 600_000, announceIntervalMs: 120_000 });
 * ```
 */
export function createProxy(
  components: Pick<EgressComponents, "node" | "ledger" | "logger">,
  options: ProxyOptions,
): Proxy {
  const { node, ledger } = components;
  const log = (components.logger ?? silentLogger).child("proxy");
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  const limits = options.headLimits ?? DEFAULT_HEAD_LIMITS;
  const picker = new EgressPicker(ledger, node.peerId, { deadIntervalMs: options.deadIntervalMs });
  const counters: ProxyCounters = {
    connections: 0,
    active: 0,
    overLimit: 0,
    requests: { http: 0, connect: 0, socks: 0 },
    via: { tunnel: 0, go: 0 },
    noEgress: 0,
    goOnly: 0,
    retries: 0,
    egressFailures: 0,
    targetFailures: 0,
    malformed: 0,
    timedOut: 0,
    bytesUp: 0,
    bytesDown: 0,
  };
  const egressContext = {
    node,
    picker,
    timeoutMs: options.egressTimeoutMs ?? DEFAULT_EGRESS_TIMEOUT_MS,
    onRetry: () => counters.retries++,
  };
  const stopping = new AbortController();
  const clients = new Set<Deno.Conn>();
  const serving = new Set<Promise<void>>();
  let listener: Deno.TcpListener | undefined;
  let accepting: Promise<void> | undefined;
  let job: Job | undefined;

  const count = (result: PipeResult) => {
    counters.bytesUp += result.toStream;
    counters.bytesDown += result.toConn;
  };
  const open = (target: TunnelTarget, tunnel: boolean, attempts: EgressAttempts) =>
    openEgress(egressContext, target, tunnel, attempts);

  // An opening that is not a way out, as the HTTP answer to send.
  const httpRefusal = (opening: EgressOpening): [HttpErrorStatus, string] => {
    switch (opening.kind) {
      case "none":
        counters.noEgress++;
        return [
          503,
          `no egress nodes available: no member announced as an egress node (edgevpn --egress) has sent a heartbeat in the last ${
            Math.round(options.deadIntervalMs / 1000)
          } s`,
        ];
      case "goOnly":
        counters.goOnly++;
        return [
          502,
          "the live egress nodes are Go EdgeVPN nodes, which carry plain HTTP requests only: CONNECT (HTTPS) needs an egress node of EdgeVPN for Deno",
        ];
      case "failed":
        counters.egressFailures++;
        return [502, `egress failed: ${opening.message}`];
      case "target":
        counters.targetFailures++;
        return [httpStatusOf(opening.status), `egress: ${describeTunnelStatus(opening.status)}`];
      default:
        return [502, "egress failed"];
    }
  };

  const answer = async (conn: Deno.Conn, status: HttpErrorStatus, message: string) => {
    log.debug("refused a request", { status, message });
    await writeAll(conn, errorResponse(status, message)).catch(() => {});
  };

  /** Reads the request head; answers and returns undefined when there is none to serve. */
  const readHead = async (conn: Deno.Conn, reader: ClientReader, first: Uint8Array) => {
    const heads = new HeadReader(limits);
    let chunk: ClientRead = first;
    while (true) {
      if (chunk === "end") return undefined;
      if (chunk === "timeout") {
        counters.timedOut++;
        await answer(conn, 408, "the request did not arrive in time");
        return undefined;
      }
      try {
        const done = heads.push(chunk);
        if (done) return done;
      } catch (e) {
        if (!(e instanceof HttpHeadError)) throw e;
        counters.malformed++;
        await answer(conn, e.status, e.message);
        return undefined;
      }
      chunk = await reader.read();
    }
  };

  // A CONNECT or SOCKS5 client whose tunnel is up: told so by `reply`, then piped to it, the
  // bytes it sent after its request (`rest`) first.
  const pipeTunnel = async (
    conn: Deno.Conn,
    opening: EgressOpening & { kind: "tunnel" },
    reply: Uint8Array,
    rest: Uint8Array,
  ) => {
    try {
      await writeAll(conn, reply);
    } catch {
      opening.stream.reset();
      return;
    }
    count(
      await pipeStream(opening.stream, conn, {
        reader: opening.reader,
        toConnFirst: opening.first,
        toStreamFirst: rest,
        signal: stopping.signal,
      }),
    );
  };

  const serveConnect = async (conn: Deno.Conn, head: HttpRequestHead, rest: Uint8Array) => {
    counters.requests.connect++;
    let target: TunnelTarget;
    try {
      target = parseAuthority(head.target);
    } catch (e) {
      counters.malformed++;
      return await answer(conn, 400, errorMessage(e));
    }
    const opening = await open(target, true, { tried: new Set(), failures: 0 });
    if (opening.kind !== "tunnel") return await answer(conn, ...httpRefusal(opening));
    counters.via.tunnel++;
    log.debug("CONNECT", { target: formatAuthority(target), egress: opening.peer });
    await pipeTunnel(conn, opening, CONNECT_ESTABLISHED, rest);
  };

  const servePlain = async (conn: Deno.Conn, head: HttpRequestHead, rest: Uint8Array) => {
    counters.requests.http++;
    let target: TunnelTarget;
    let path: string;
    try {
      ({ target, path } = absoluteTarget(head));
    } catch (e) {
      counters.malformed++;
      const status = e instanceof HttpHeadError ? e.status : 400;
      return await answer(conn, status, errorMessage(e));
    }
    const host = target.port === 80 ? bracketed(target.host) : formatAuthority(target);
    const request = forwardedHead(head, path, host);
    // Without a body the request can be sent again if a Go egress node fails before answering.
    const replayable = !hasBody(head) && rest.length === 0;
    const attempts: EgressAttempts = { tried: new Set(), failures: 0 };
    while (true) {
      const opening = await open(target, false, attempts);
      if (opening.kind === "tunnel") {
        counters.via.tunnel++;
        count(
          await pipeStream(opening.stream, conn, {
            reader: opening.reader,
            toConnFirst: opening.first,
            toStreamFirst: concat(request, rest),
            until: "stream",
            signal: stopping.signal,
          }),
        );
        return;
      }
      if (opening.kind !== "go") return await answer(conn, ...httpRefusal(opening));
      counters.via.go++;
      const { stream, reader, peer } = opening;
      if (!replayable) {
        count(
          await pipeStream(stream, conn, {
            reader,
            toStreamFirst: concat(request, rest),
            until: "stream",
            signal: stopping.signal,
          }),
        );
        return;
      }
      let first: Uint8Array | undefined;
      try {
        await stream.write(request);
        const next = await reader.next();
        first = next.done ? undefined : next.value;
      } catch { /* reset before answering: the node failed */ }
      if (first === undefined) {
        stream.reset();
        picker.failed(peer);
        attempts.failures++;
        continue;
      }
      counters.bytesUp += request.length;
      count(
        await pipeStream(stream, conn, {
          reader,
          toConnFirst: first,
          until: "stream",
          signal: stopping.signal,
        }),
      );
      return;
    }
  };

  const serveHttp = async (conn: Deno.Conn, reader: ClientReader, first: Uint8Array) => {
    const read = await readHead(conn, reader, first);
    reader.dispose();
    if (read === undefined) return;
    if (read.head.method === "CONNECT") await serveConnect(conn, read.head, read.rest);
    else await servePlain(conn, read.head, read.rest);
  };

  const serveSocks = async (conn: Deno.Conn, reader: ClientReader, first: Uint8Array) => {
    let held = first;
    const more = async (limit: number): Promise<boolean> => {
      const chunk = await reader.read();
      if (chunk === "timeout") counters.timedOut++;
      if (typeof chunk === "string") return false;
      held = concat(held, chunk);
      if (held.length > limit * 2) held = held.subarray(0, limit * 2);
      return true;
    };
    const refuse = async (code: SocksReplyCode) => {
      await writeAll(conn, socksReply(code)).catch(() => {});
    };
    let greeting;
    let request;
    try {
      while (
        (greeting = parseSocksGreeting(held.subarray(0, MAX_SOCKS_GREETING_BYTES))) === undefined
      ) {
        if (!await more(MAX_SOCKS_GREETING_BYTES)) return;
      }
      held = held.subarray(greeting.length);
      if (!greeting.methods.includes(SOCKS_NO_AUTH)) {
        counters.malformed++;
        await writeAll(conn, Uint8Array.of(SOCKS_VERSION, SOCKS_NO_ACCEPTABLE)).catch(() => {});
        return;
      }
      await writeAll(conn, Uint8Array.of(SOCKS_VERSION, SOCKS_NO_AUTH));
      while (
        (request = parseSocksRequest(held.subarray(0, MAX_SOCKS_REQUEST_BYTES))) === undefined
      ) {
        if (!await more(MAX_SOCKS_REQUEST_BYTES)) return;
      }
    } catch (e) {
      if (!(e instanceof SocksError)) throw e;
      counters.malformed++;
      if (e.reply !== undefined) await refuse(e.reply);
      return;
    } finally {
      reader.dispose();
    }
    counters.requests.socks++;
    if (request.command !== SocksCommand.connect) {
      counters.malformed++;
      return await refuse(SocksReply.commandNotSupported);
    }
    const rest = held.subarray(request.length);
    const opening = await open(request.target, true, { tried: new Set(), failures: 0 });
    if (opening.kind !== "tunnel") {
      httpRefusal(opening); // counts it
      return await refuse(socksReplyOf(opening));
    }
    counters.via.tunnel++;
    log.debug("SOCKS5 CONNECT", {
      target: formatAuthority(request.target),
      egress: opening.peer,
    });
    await pipeTunnel(conn, opening, socksReply(SocksReply.succeeded), rest);
  };

  const serveClient = async (conn: Deno.Conn) => {
    const reader = new ClientReader(conn, handshakeTimeoutMs);
    try {
      const first = await reader.read();
      if (first === "timeout") {
        counters.timedOut++;
        return;
      }
      if (first === "end") return;
      if (first[0] === SOCKS_VERSION) await serveSocks(conn, reader, first);
      else if (first[0] === 4) {
        counters.malformed++;
        // A SOCKS4 client gets "request rejected" in its own format.
        await writeAll(conn, Uint8Array.of(0, 0x5b, 0, 0, 0, 0, 0, 0)).catch(() => {});
      } else await serveHttp(conn, reader, first);
    } finally {
      reader.dispose();
    }
  };

  const acceptLoop = async (l: Deno.TcpListener) => {
    try {
      for await (const conn of l) {
        counters.connections++;
        if (counters.active >= maxConnections) {
          counters.overLimit++;
          closeQuietly(conn);
          continue;
        }
        counters.active++;
        clients.add(conn);
        const p = serveClient(conn).catch((e) => {
          log.debug("proxy client failed", { error: errorMessage(e) });
        }).finally(() => {
          counters.active--;
          clients.delete(conn);
          closeQuietly(conn);
          serving.delete(p);
        });
        serving.add(p);
      }
    } catch (e) {
      if (!stopping.signal.aborted) {
        log.error("proxy stopped accepting", { error: errorMessage(e) });
      }
    }
  };

  return {
    get address() {
      return listener ? { hostname: listener.addr.hostname, port: listener.addr.port } : undefined;
    },
    // deno-lint-ignore require-await
    async start() {
      if (listener) return;
      job = announceUser(ledger, node.peerId, options.announceIntervalMs);
      try {
        listener = Deno.listen({ ...options.listen, transport: "tcp" });
      } catch (e) {
        job.stop();
        throw e;
      }
      accepting = acceptLoop(listener);
    },
    async stop() {
      if (!listener) return;
      stopping.abort();
      job?.stop();
      closeQuietly(listener);
      await accepting;
      for (const conn of clients) closeQuietly(conn);
      await Promise.allSettled([...serving]);
      listener = undefined;
    },
    counters: () => ({
      ...counters,
      requests: { ...counters.requests },
      via: { ...counters.via },
    }),
  };
}

/** The destination and origin-form path of an absolute-form `http://` request. */
function absoluteTarget(head: HttpRequestHead): { target: TunnelTarget; path: string } {
  if (/^https:\/\//i.test(head.target)) {
    throw new HttpHeadError(
      400,
      "https:// URLs go through CONNECT (clients do this by themselves for https)",
    );
  }
  if (!/^http:\/\/[^/?#]/i.test(head.target)) {
    throw new HttpHeadError(
      400,
      `this is a proxy: expected an absolute http:// URL or CONNECT host:port, got ${
        JSON.stringify(head.target.slice(0, 100))
      }`,
    );
  }
  let url: URL;
  try {
    url = new URL(head.target);
  } catch {
    throw new HttpHeadError(400, "malformed URL");
  }
  if (url.host === "") throw new HttpHeadError(400, "malformed URL: no host");
  return { target: parseAuthority(url.host, 80), path: (url.pathname || "/") + url.search };
}

function httpStatusOf(status: TunnelStatusCode): HttpErrorStatus {
  if (status === TunnelStatus.forbidden) return 403;
  if (status === TunnelStatus.timeout) return 504;
  if (status === TunnelStatus.badRequest) return 400;
  return 502;
}

function socksReplyOf(opening: EgressOpening): SocksReplyCode {
  if (opening.kind === "none") return SocksReply.networkUnreachable;
  if (opening.kind !== "target") return SocksReply.generalFailure;
  switch (opening.status) {
    case TunnelStatus.forbidden:
      return SocksReply.notAllowed;
    case TunnelStatus.unresolved:
    case TunnelStatus.unreachable:
      return SocksReply.hostUnreachable;
    case TunnelStatus.refused:
      return SocksReply.connectionRefused;
    case TunnelStatus.timeout:
      return SocksReply.ttlExpired;
    default:
      return SocksReply.generalFailure;
  }
}

function bracketed(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

function closeQuietly(closer: { close(): void }): void {
  try {
    closer.close();
  } catch { /* already closed */ }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
