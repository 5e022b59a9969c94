/** An egress node: announces itself in the `egress` bucket and connects members' requests to the internet (Go's HTTP protocol and our tunnel). */
import { BUCKETS, EGRESS_OK, egressCodec } from "../ledger/buckets.ts";
import type { Job } from "../ledger/ledger.ts";
import type { NodeStream } from "../node/stream.ts";
import { errorMessage } from "../util/errors.ts";
import { silentLogger } from "../util/logger.ts";
import { clampTimerMs } from "../util/timer.ts";
import type { EgressComponents } from "./components.ts";
import { connectTarget, TargetError } from "./dial.ts";
import {
  errorResponse,
  forwardedHead,
  headerValues,
  HeadReader,
  HttpHeadError,
  type HttpRequestHead,
  parseAuthority,
} from "./http_head.ts";
import { lingerThenReset, pipeStream } from "../services/pipe.ts";
import {
  EGRESS_TUNNEL_PROTOCOL,
  GO_EGRESS_PROTOCOL,
  MAX_TUNNEL_REQUEST_BYTES,
  parseTunnelRequest,
  TunnelStatus,
  type TunnelStatusCode,
} from "./protocol.ts";
import type { TunnelTarget } from "./protocol.ts";

/** Options of {@link createEgress}. */
export interface EgressOptions {
  /** How often the `egress` entry is announced (Go `--egress-announce-time`). */
  announceIntervalMs: number;
  /** Connect to private, loopback and link-local destinations (Go does). */
  allowPrivate: boolean;
  /** Time to resolve and connect to a destination (default 15 s). */
  connectTimeoutMs?: number;
  /** Time for a peer to send its request head or tunnel header (default 30 s). */
  requestTimeoutMs?: number;
  /** Requests and tunnels served at once; more are refused (default 1024). */
  maxActive?: number;
  /**
   * Destination ports that Go's protocol reaches over TLS (default `[443]`: Go's rule, https
   * when the Host port is 443).
   */
  tlsPorts?: readonly number[];
  /** PEM certificates trusted for those TLS destinations besides the system's roots. */
  caCerts?: readonly string[];
}

/**
 * Counters of an egress node.
 *
 * @example
 * ```ts ignore
 * egress.counters().tunnels; // tunnels opened so far
 * ```
 */
export interface EgressCounters {
  /** Requests received on Go's `/edgevpn/egress/0.1`. */
  httpRequests: number;
  /** Tunnels requested on our protocol. */
  tunnels: number;
  /** Requests and tunnels being served now. */
  active: number;
  /** Destinations refused by the policy (private addresses). */
  forbidden: number;
  /** Destinations that did not resolve, refused or did not answer. */
  targetFailures: number;
  /** Requests or tunnel headers that were malformed or too large. */
  malformed: number;
  /** Peers that did not send their request in time. */
  timedOut: number;
  /** Refused because {@link EgressOptions.maxActive} were being served. */
  overloaded: number;
  /** Bytes sent to destinations and received from them. */
  bytesToTargets: number;
  bytesFromTargets: number;
}

/**
 * A running egress node.
 *
 * @example
 * ```ts ignore
 * const egress = createEgress(egressComponentsOf(mesh), { announceIntervalMs: 200_000, allowPrivate: true });
 * await egress.start();
 * await egress.stop();
 * ```
 */
export interface Egress {
  start(): Promise<void>;
  stop(): Promise<void>;
  counters(): EgressCounters;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_ACTIVE = 1024;
/** Go's egress speaks TLS to a destination whose Host port is this one. */
const GO_TLS_PORT = 443;
/** How long a refused peer has to end its side after our answer. */
const ANSWER_LINGER_MS = 5_000;

/**
 * Creates an egress node: once started it announces `egress[self] = "ok"` (Go's
 * `AnnounceUpdate`), serves Go's `/edgevpn/egress/0.1` (one HTTP/1.x request per stream,
 * https when the Host port is 443, as Go) and our {@link EGRESS_TUNNEL_PROTOCOL} (any TCP
 * destination: CONNECT and SOCKS5 of our proxies). Streams from peers without a `users`
 * entry are reset, as Go does.
 *
 * @example
 * ```ts ignore
 * const egress = createEgress(components, { announceIntervalMs: 200_000, allowPrivate: false });
 * ```
 */
export function createEgress(components: EgressComponents, options: EgressOptions): Egress {
  const { node, ledger } = components;
  const log = (components.logger ?? silentLogger).child("egress");
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const maxActive = options.maxActive ?? DEFAULT_MAX_ACTIVE;
  const tlsPorts = new Set(options.tlsPorts ?? [GO_TLS_PORT]);
  const counters: EgressCounters = {
    httpRequests: 0,
    tunnels: 0,
    active: 0,
    forbidden: 0,
    targetFailures: 0,
    malformed: 0,
    timedOut: 0,
    overloaded: 0,
    bytesToTargets: 0,
    bytesFromTargets: 0,
  };
  const stopping = new AbortController();
  const serving = new Set<Promise<void>>();
  let job: Job | undefined;
  let started = false;

  const connect = (target: TunnelTarget) =>
    connectTarget(target, {
      allowPrivate: options.allowPrivate,
      timeoutMs: connectTimeoutMs,
      signal: stopping.signal,
      resolve: components.resolve,
    });

  const countFailure = (e: unknown) => {
    if (e instanceof TargetError && e.status === TunnelStatus.forbidden) counters.forbidden++;
    else counters.targetFailures++;
    log.debug("destination failed", { error: errorMessage(e) });
  };

  // Runs one request or tunnel, counted as active and awaited by stop().
  const track = (stream: NodeStream, serve: () => Promise<void>) => {
    if (counters.active >= maxActive) {
      counters.overloaded++;
      stream.reset();
      return Promise.resolve();
    }
    counters.active++;
    const p = serve().catch((e) => {
      log.debug("egress stream failed", { peer: stream.remotePeer, error: errorMessage(e) });
      stream.reset();
    }).finally(() => {
      counters.active--;
      serving.delete(p);
    });
    serving.add(p);
    return p;
  };

  const serveHttp = async (stream: NodeStream) => {
    counters.httpRequests++;
    const reader = stream[Symbol.asyncIterator]();
    const answer = async (status: Parameters<typeof errorResponse>[0], message: string) => {
      await stream.write(errorResponse(status, message)).catch(() => {});
      await stream.close().catch(() => {});
      await lingerThenReset(stream, ANSWER_LINGER_MS);
    };
    const headReader = new HeadReader();
    let read;
    try {
      read = await readWithDeadline(reader, (chunk) => headReader.push(chunk), requestTimeoutMs);
    } catch (e) {
      if (e instanceof HttpHeadError) {
        counters.malformed++;
        return await answer(e.status, e.message);
      }
      throw e;
    }
    if (read === "timeout") {
      counters.timedOut++;
      return await answer(408, "the request head did not arrive in time");
    }
    if (read === undefined) return stream.reset();
    const { head, rest } = read;
    let target: TunnelTarget;
    let path: string;
    let host: string;
    try {
      ({ target, path, host } = destinationOf(head));
    } catch (e) {
      counters.malformed++;
      if (e instanceof HttpHeadError) return await answer(e.status, e.message);
      throw e;
    }
    let conn: Deno.Conn;
    try {
      conn = await connect(target);
      if (tlsPorts.has(target.port)) {
        conn = await startTls(conn as Deno.TcpConn, target.host, options.caCerts);
      }
    } catch (e) {
      countFailure(e);
      const status = e instanceof TargetError ? httpStatusOf(e.status) : 502;
      return await answer(status, `egress: ${errorMessage(e)}`);
    }
    const result = await pipeStream(stream, conn, {
      toConnFirst: concat(forwardedHead(head, path, host), rest),
      reader,
      until: "conn",
      signal: stopping.signal,
    });
    counters.bytesToTargets += result.toConn;
    counters.bytesFromTargets += result.toStream;
  };

  const serveTunnel = async (stream: NodeStream) => {
    counters.tunnels++;
    const reader = stream[Symbol.asyncIterator]();
    const refuse = async (status: TunnelStatusCode) => {
      await stream.write(Uint8Array.of(status)).catch(() => {});
      await stream.close().catch(() => {});
      await lingerThenReset(stream, ANSWER_LINGER_MS);
    };
    let held: Uint8Array = new Uint8Array(0);
    let read;
    try {
      read = await readWithDeadline(reader, (chunk) => {
        held = concat(held, chunk);
        const request = parseTunnelRequest(held.subarray(0, MAX_TUNNEL_REQUEST_BYTES));
        return request && { request, rest: held.subarray(request.length) };
      }, requestTimeoutMs);
    } catch (e) {
      counters.malformed++;
      log.debug("malformed tunnel request", { peer: stream.remotePeer, error: errorMessage(e) });
      return await refuse(TunnelStatus.badRequest);
    }
    if (read === "timeout") {
      counters.timedOut++;
      return stream.reset();
    }
    if (read === undefined) return stream.reset();
    let conn: Deno.TcpConn;
    try {
      conn = await connect(read.request);
    } catch (e) {
      countFailure(e);
      return await refuse(e instanceof TargetError ? e.status : TunnelStatus.failed);
    }
    try {
      await stream.write(Uint8Array.of(TunnelStatus.ok));
    } catch {
      conn.close();
      return stream.reset();
    }
    const result = await pipeStream(stream, conn, {
      toConnFirst: read.rest,
      reader,
      signal: stopping.signal,
    });
    counters.bytesToTargets += result.toConn;
    counters.bytesFromTargets += result.toStream;
  };

  return {
    async start() {
      if (started) return;
      started = true;
      const handleOptions = { membersOnly: components.isUser };
      await node.handle(GO_EGRESS_PROTOCOL, (s) => track(s, () => serveHttp(s)), handleOptions);
      await node.handle(
        EGRESS_TUNNEL_PROTOCOL,
        (s) => track(s, () => serveTunnel(s)),
        handleOptions,
      );
      job = ledger.announceUpdate(
        options.announceIntervalMs,
        egressCodec.bucket,
        node.peerId,
        egressCodec.value(EGRESS_OK),
      );
      log.info("egress node: announced in the egress bucket", {
        allowPrivate: options.allowPrivate,
      });
    },
    async stop() {
      if (!started) return;
      started = false;
      job?.stop();
      await node.unhandle(GO_EGRESS_PROTOCOL).catch(() => {});
      await node.unhandle(EGRESS_TUNNEL_PROTOCOL).catch(() => {});
      stopping.abort();
      await Promise.allSettled([...serving]);
      // Proxies stop choosing this node at once instead of after their dead interval.
      try {
        await ledger.delete(BUCKETS.egress, node.peerId);
      } catch (e) {
        log.debug("could not withdraw the egress entry", { error: errorMessage(e) });
      }
    },
    counters: () => ({ ...counters }),
  };
}

/**
 * Where Go's egress sends a request: the Host header's authority (port 80 by default, https
 * when it is 443, as Go), and the origin-form path of the target.
 */
function destinationOf(
  head: HttpRequestHead,
): { target: TunnelTarget; path: string; host: string } {
  if (head.method === "CONNECT") {
    throw new HttpHeadError(405, "CONNECT is carried by our tunnel protocol, not by this one");
  }
  let path = head.target;
  let authority = headerValues(head, "host")[0];
  if (/^https?:\/\//i.test(head.target)) {
    let url: URL;
    try {
      url = new URL(head.target);
    } catch {
      throw new HttpHeadError(400, "malformed absolute URL");
    }
    path = url.pathname + url.search;
    authority = url.host || authority;
  } else if (!head.target.startsWith("/") && head.target !== "*") {
    throw new HttpHeadError(400, "malformed request target");
  }
  if (!authority) throw new HttpHeadError(400, "no Host header");
  return { target: parseAuthority(authority, 80), path, host: authority };
}

/** Go's egress speaks https to port 443: the TLS session is ours, verified against `host`. */
async function startTls(
  conn: Deno.TcpConn,
  host: string,
  caCerts: readonly string[] | undefined,
): Promise<Deno.TlsConn> {
  try {
    const tls = await Deno.startTls(conn, {
      hostname: host,
      ...(caCerts ? { caCerts: [...caCerts] } : {}),
    });
    await tls.handshake();
    return tls;
  } catch (e) {
    try {
      conn.close();
    } catch { /* closed by the failed handshake */ }
    throw e;
  }
}

function httpStatusOf(status: TunnelStatusCode): 403 | 502 | 504 {
  if (status === TunnelStatus.forbidden) return 403;
  if (status === TunnelStatus.timeout) return 504;
  return 502;
}

/**
 * Feeds chunks from `reader` to `take` until it returns a value; `undefined` when the stream
 * ended first, `"timeout"` when `timeoutMs` passed first. The pending read of a timed-out
 * call ends when the caller resets the stream.
 */
async function readWithDeadline<T>(
  reader: AsyncIterator<Uint8Array>,
  take: (chunk: Uint8Array) => T | undefined,
  timeoutMs: number,
): Promise<T | "timeout" | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), clampTimerMs(timeoutMs));
  });
  try {
    while (true) {
      const next = reader.next();
      next.catch(() => {});
      const got = await Promise.race([next, deadline]);
      if (got === "timeout") return got;
      if (got.done) return undefined;
      const value = take(got.value);
      if (value !== undefined) return value;
    }
  } finally {
    clearTimeout(timer);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
