/**
 * A front for Deno.serve that times and bounds client connections. Deno.serve has no header,
 * body or idle timeout (300 half-sent requests stay open for minutes), so the API listens
 * here and relays each connection to a private Deno.serve socket, closing those that stall.
 */

import { HttpFramer, type HttpFramerLimits, type HttpRefusal } from "./http_framer.ts";

/** Limits of the guard. */
export interface ConnGuardLimits extends HttpFramerLimits {
  /** Time from a request's first byte to the end of its head. */
  headerTimeoutMs: number;
  /** Time from the end of a head to the end of its body. */
  bodyTimeoutMs: number;
  /** Time without a byte in either direction before a connection is closed. */
  idleTimeoutMs: number;
  /** Client connections open at once; newer ones are closed at once beyond it. */
  maxConnections: number;
}

/**
 * Default limits: 10 s for a head, 30 s for a body, 60 s idle, 256 connections, 8 KiB
 * request lines, 32 KiB heads, 1 MiB bodies.
 *
 * @example
 * ```ts
 * DEFAULT_CONN_LIMITS.headerTimeoutMs; // 10000
 * ```
 */
export const DEFAULT_CONN_LIMITS: Readonly<ConnGuardLimits> = {
  headerTimeoutMs: 10_000,
  bodyTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  maxConnections: 256,
  maxRequestLineBytes: 8 * 1024,
  maxHeadBytes: 32 * 1024,
  maxBodyBytes: 1 << 20,
};

/** Counters of the guard. */
export interface ConnGuardCounters {
  accepted: number;
  /** Refused at once: too many connections. */
  overLimit: number;
  /** Closed for a head, body or idle timeout. */
  timedOut: number;
  /** Answered 4xx by the guard (oversize line, head or body; chunked body; bad head). */
  refused: number;
}

/** A running guard. */
export interface ConnGuard {
  /** Client connections open now. */
  readonly open: number;
  readonly counters: Readonly<ConnGuardCounters>;
  /** Stops accepting; open connections go on. */
  stopAccepting(): void;
  /** Stops accepting and closes every client connection. */
  close(): void;
}

const SWEEP_MS = 250;
const BUFFER_BYTES = 64 * 1024;

interface Relay {
  client: Deno.Conn;
  upstream: Deno.Conn | undefined;
  framer: HttpFramer;
  /** When the current head or body started. */
  since: number;
  lastActivity: number;
  closed: boolean;
}

/**
 * Accepts connections on `listener` and relays each to a new connection made by `connect`
 * (the private Deno.serve socket), enforcing `limits`.
 *
 * @example
 * ```ts ignore
 * const guard = guardConnections(Deno.listen({ port: 8080 }), () => Deno.connect({ transport: "unix", path }), DEFAULT_CONN_LIMITS);
 * guard.close();
 * ```
 */
export function guardConnections(
  listener: Deno.Listener,
  connect: () => Promise<Deno.Conn>,
  limits: ConnGuardLimits,
): ConnGuard {
  const relays = new Set<Relay>();
  const counters: ConnGuardCounters = { accepted: 0, overLimit: 0, timedOut: 0, refused: 0 };
  let sweeper: ReturnType<typeof setInterval> | undefined;
  let closing = false;

  const finish = (r: Relay) => {
    if (r.closed) return;
    r.closed = true;
    relays.delete(r);
    closeQuietly(r.client);
    if (r.upstream) closeQuietly(r.upstream);
    if (relays.size === 0 && sweeper !== undefined) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };

  const refuse = async (r: Relay, refusal: HttpRefusal) => {
    counters.refused++;
    // Only the connection's first request can be answered here: later ones may have a
    // response of the server's still under way.
    if (r.framer.requests === 0) await writeRefusal(r.client, refusal);
    finish(r);
  };

  const sweep = () => {
    const now = Date.now();
    for (const r of relays) {
      const state = r.framer.state;
      const late = state === "head"
        ? now - r.since > limits.headerTimeoutMs
        : state === "body"
        ? now - r.since > limits.bodyTimeoutMs
        : now - r.lastActivity > limits.idleTimeoutMs;
      if (!late) continue;
      counters.timedOut++;
      if (state !== "idle" && r.framer.requests === 0) {
        writeRefusal(r.client, { status: 408, message: "request timeout" })
          .finally(() => finish(r));
      } else {
        finish(r);
      }
    }
  };

  const clientToUpstream = async (r: Relay) => {
    const buf = new Uint8Array(BUFFER_BYTES);
    for (;;) {
      const n = await r.client.read(buf);
      if (n === null) {
        await r.upstream?.closeWrite().catch(() => finish(r));
        return;
      }
      const before = r.framer.transitions;
      const refusal = r.framer.feed(buf.subarray(0, n));
      const now = Date.now();
      r.lastActivity = now;
      if (refusal) return await refuse(r, refusal);
      if (r.framer.transitions !== before) r.since = now;
      await writeAll(r.upstream!, buf.subarray(0, n));
    }
  };

  const upstreamToClient = async (r: Relay) => {
    const buf = new Uint8Array(BUFFER_BYTES);
    for (;;) {
      const n = await r.upstream!.read(buf);
      if (n === null) return;
      r.lastActivity = Date.now();
      await writeAll(r.client, buf.subarray(0, n));
    }
  };

  const serve = async (client: Deno.Conn) => {
    const now = Date.now();
    const r: Relay = {
      client,
      upstream: undefined,
      framer: new HttpFramer(limits),
      since: now,
      lastActivity: now,
      closed: false,
    };
    relays.add(r);
    sweeper ??= setInterval(sweep, SWEEP_MS);
    try {
      r.upstream = await connect();
      if (r.closed) return finish(r);
      // Either direction ending (or failing) ends the relay once the server is done.
      await Promise.all([
        clientToUpstream(r).catch(() => finish(r)),
        upstreamToClient(r).finally(() => finish(r)),
      ]);
    } catch {
      // A reset or a closed socket: nothing to answer.
    } finally {
      finish(r);
    }
  };

  (async () => {
    for (;;) {
      let client: Deno.Conn;
      try {
        client = await listener.accept();
      } catch {
        return; // closed
      }
      if (closing) {
        closeQuietly(client);
        return;
      }
      counters.accepted++;
      if (relays.size >= limits.maxConnections) {
        counters.overLimit++;
        closeQuietly(client);
        continue;
      }
      void serve(client);
    }
  })();

  return {
    get open() {
      return relays.size;
    },
    counters,
    stopAccepting() {
      closing = true;
      closeQuietly(listener);
    },
    close() {
      this.stopAccepting();
      for (const r of [...relays]) finish(r);
    },
  };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await conn.write(bytes.subarray(at));
}

const REASONS: Record<number, string> = {
  400: "Bad Request",
  408: "Request Timeout",
  411: "Length Required",
  413: "Payload Too Large",
  414: "URI Too Long",
  431: "Request Header Fields Too Large",
  505: "HTTP Version Not Supported",
};

async function writeRefusal(conn: Deno.Conn, refusal: HttpRefusal): Promise<void> {
  const body = JSON.stringify({ error: refusal.message, message: refusal.message }) + "\n";
  const head = `HTTP/1.1 ${refusal.status} ${REASONS[refusal.status] ?? "Error"}\r\n` +
    `content-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`;
  try {
    await writeAll(conn, new TextEncoder().encode(head + body));
  } catch {
    // The client went away first.
  }
}

function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch {
    // Already closed.
  }
}
