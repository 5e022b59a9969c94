/** Test support for services, egress and the proxy: TCP backends and clients on loopback. */
import { writeAll } from "../../lib/services/pipe.ts";

/** A TCP server on 127.0.0.1 with a random port; `close()` stops it and its connections. */
export interface TestServer {
  port: number;
  address: string;
  /** Connections accepted so far. */
  accepted: number;
  close(): Promise<void>;
}

/**
 * Serves each connection with `serve`; the connection is closed when it returns.
 *
 * @example
 * ```ts
 * const echo = startTcpServer(echoHandler);
 * ```
 */
export function startTcpServer(serve: (conn: Deno.TcpConn) => Promise<void>): TestServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.TcpConn>();
  const handling = new Set<Promise<void>>();
  const server: TestServer = {
    port: listener.addr.port,
    address: `127.0.0.1:${listener.addr.port}`,
    accepted: 0,
    close: async () => {
      try {
        listener.close();
      } catch { /* closed */ }
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await loop;
      await Promise.allSettled(handling);
    },
  };
  const loop = (async () => {
    try {
      for await (const conn of listener) {
        server.accepted++;
        conns.add(conn);
        const p = serve(conn).catch(() => {}).finally(() => {
          conns.delete(conn);
          try {
            conn.close();
          } catch { /* closed */ }
        });
        handling.add(p);
        p.finally(() => handling.delete(p));
      }
    } catch { /* listener closed */ }
  })();
  return server;
}

/** Echoes every byte back and half-closes when the client does. */
export async function echoHandler(conn: Deno.TcpConn): Promise<void> {
  const buffer = new Uint8Array(65536);
  while (true) {
    const n = await conn.read(buffer);
    if (n === null) break;
    await writeAll(conn, buffer.subarray(0, n));
  }
  await conn.closeWrite();
}

/** Sends `body` in full after reading the client's first bytes, then closes. */
export function fixedResponse(body: Uint8Array): (conn: Deno.TcpConn) => Promise<void> {
  return async (conn) => {
    await conn.read(new Uint8Array(1024));
    await writeAll(conn, body);
  };
}

/** Random bytes of any length (getRandomValues fills at most 64 KiB per call). */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 65536) {
    crypto.getRandomValues(out.subarray(at, Math.min(n, at + 65536)));
  }
  return out;
}

/**
 * Connects to `port`, writes `request`, half-closes and reads until the server ends the
 * connection; returns what was read.
 */
export async function exchange(port: number, request: Uint8Array): Promise<Uint8Array> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const reading = readAll(conn);
    await writeAll(conn, request);
    await conn.closeWrite();
    return await reading;
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

/** Reads `conn` until its end. */
export async function readAll(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const buffer = new Uint8Array(65536);
  while (true) {
    const n = await conn.read(buffer);
    if (n === null) break;
    chunks.push(buffer.slice(0, n));
    size += n;
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** SHA-256 of `bytes` in hex. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>),
  );
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}
