/** Test support for egress and the proxy: HTTP(S) destinations, streams as text. */
import type { NodeStream } from "../../lib/node/stream.ts";

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

/** Everything a stream delivers until its end, as text. */
export async function readStreamText(stream: NodeStream): Promise<string> {
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  return text;
}
