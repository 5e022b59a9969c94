/** Test support for egress and the proxy: destinations on loopback (HTTP, TLS, echo), clients, two meshes. */
import { generateNetworkConfig } from "../../lib/config/token.ts";
import { writeAll } from "../../lib/services/pipe.ts";
import type { Mesh } from "../../lib/mesh/mesh.ts";
import type { NodeStream } from "../../lib/node/stream.ts";
import { startLoopbackMesh } from "../mesh/helpers.ts";
import { waitFor } from "../node/helpers.ts";

/** An HTTP destination on 127.0.0.1 that counts requests and answers `hello <path>`. */
export interface HttpTarget {
  port: number;
  /** Requests served so far, with the client address each came from. */
  requests: { path: string; method: string; from: string; host: string; body: string }[];
  close(): Promise<void>;
}

/** Starts an HTTP (or, with `tls`, HTTPS) destination on a random loopback port. */
export function startHttpTarget(tls?: { cert: string; key: string }): HttpTarget {
  const requests: HttpTarget["requests"] = [];
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
    ...(tls ?? {}),
  }, async (req, info) => {
    const url = new URL(req.url);
    requests.push({
      path: url.pathname + url.search,
      method: req.method,
      from: info.remoteAddr.hostname,
      host: req.headers.get("host") ?? "",
      body: await req.text(),
    });
    return new Response(`hello ${url.pathname}`, { headers: { "x-target": "yes" } });
  });
  return {
    port: server.addr.port,
    requests,
    close: () => server.shutdown(),
  };
}

/** A TCP server echoing every byte and half-closing when the client does; counts connections. */
export interface EchoServer {
  port: number;
  accepted: number;
  close(): Promise<void>;
}

/** Starts an echo server on a random loopback port. */
export function startEchoServer(): EchoServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const handling = new Set<Promise<void>>();
  const server: EchoServer = {
    port: listener.addr.port,
    accepted: 0,
    close: async () => {
      listener.close();
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
        const p = (async () => {
          const buffer = new Uint8Array(65536);
          while (true) {
            const n = await conn.read(buffer);
            if (n === null) break;
            await writeAll(conn, buffer.subarray(0, n));
          }
          await conn.closeWrite();
        })().catch(() => {}).finally(() => {
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

/** Everything a stream delivers until its end, as text. */
export async function readStreamText(stream: NodeStream): Promise<string> {
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  return text;
}

/** Reads `conn` until its end. */
export async function readConn(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(65536);
  while (true) {
    const n = await conn.read(buffer);
    if (n === null) break;
    chunks.push(buffer.slice(0, n));
  }
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Two meshes on loopback that see each other over gossip. */
export async function meshPair(): Promise<{ a: Mesh; b: Mesh; stop: () => Promise<void> }> {
  const network = generateNetworkConfig();
  const a = await startLoopbackMesh(network);
  const b = await startLoopbackMesh(network, { bootstrap: a.node.multiaddrs() });
  await waitFor(() => a.node.topicPeers().length > 0 && b.node.topicPeers().length > 0, "gossip");
  return { a, b, stop: async () => void await Promise.allSettled([b.stop(), a.stop()]) };
}
