/** Test support for the API: a settable node view, a served API over a real ledger, raw HTTP/1.1. */

import type { Identity } from "../../lib/crypto/identity.ts";
import { createLedger, type Ledger, type LedgerOptions } from "../../lib/ledger/ledger.ts";
import type { ApiBandwidth, ApiNodeView } from "../../lib/api/components.ts";
import { type ApiServer, type ApiServerOptions, createApiServer } from "../../lib/api/server.ts";
import type { ApiComponents } from "../../lib/api/components.ts";
import { createLogger, type LogRecord } from "../../lib/util/logger.ts";

/** A node view whose peer lists the test sets directly. */
export class FakeNode implements ApiNodeView {
  peerstore: string[] = [];
  topic: string[] = [];
  connected: string[] = [];
  constructor(readonly peerId: string) {}
  peerstorePeers = (): string[] => this.peerstore;
  topicPeers = (): string[] => this.topic;
  connectedPeers = (): string[] => this.connected;
}

/** A node view with bandwidth metrics and counters. */
export class MeteredNode extends FakeNode {
  total: ApiBandwidth = { TotalIn: 1234, TotalOut: 5678, RateIn: 1.5, RateOut: 0.25 };
  protocols = new Map<string, ApiBandwidth>([
    ["/edgevpn/0.1", { TotalIn: 10, TotalOut: 20, RateIn: 0, RateOut: 1e-7 }],
  ]);
  peers = new Map<string, ApiBandwidth>();
  metrics = (): ApiBandwidth => this.total;
  metricsByProtocol = (): Map<string, ApiBandwidth> => this.protocols;
  metricsByPeer = (): Map<string, ApiBandwidth> => this.peers;
  counters = (): Record<string, number> => ({ gzip_invalid: 2 });
}

/** A running API over a real in-memory ledger. */
export interface TestApi {
  ledger: Ledger;
  node: FakeNode;
  server: ApiServer;
  /** `http://127.0.0.1:PORT` (TCP servers only). */
  base: string;
  logs: LogRecord[];
  /** fetch relative to base; the body is always read. */
  request(path: string, init?: RequestInit): Promise<TestResponse>;
  close(): Promise<void>;
}

export interface TestResponse {
  status: number;
  headers: Headers;
  text: string;
  // deno-lint-ignore no-explicit-any
  json(): any;
}

/** Starts an API on 127.0.0.1:0 over a fresh ledger (off mode unless `identity` and `mode` given). */
export async function startTestApi(options: {
  identity?: Identity;
  ledger?: Partial<LedgerOptions>;
  node?: FakeNode;
  peerId?: string;
  server?: ApiServerOptions;
  components?: Partial<ApiComponents>;
} = {}): Promise<TestApi> {
  const logs: LogRecord[] = [];
  const logger = createLogger({ level: "debug", sink: (r) => logs.push(r) });
  const ledger = await createLedger({ identity: options.identity, ...options.ledger });
  const node = options.node ??
    new FakeNode(options.identity?.peerId ?? options.peerId ?? "12D3KooWSelfTestPeer");
  const server = createApiServer(
    { ledger, node, logger, ...options.components },
    { listen: "127.0.0.1:0", ...options.server },
  );
  await server.start();
  const addr = server.address!;
  const base = addr.transport === "tcp" ? `http://127.0.0.1:${addr.port}` : "http://unix";
  return {
    ledger,
    node,
    server,
    base,
    logs,
    request: (path, init) => fetchText(base + path, init),
    close: async () => {
      await server.stop();
      await ledger.stop();
    },
  };
}

/** fetch that always reads the body (no leaked response resources). */
export async function fetchText(url: string, init?: RequestInit): Promise<TestResponse> {
  const res = await fetch(url, init);
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    text,
    json: () => JSON.parse(text),
  };
}

/** Polls `condition` every 20 ms until it holds; throws `what` after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One raw HTTP/1.1 exchange over a connection (request text or bytes sent as is); status 0 when the server dropped it without answering. */
export async function rawHttp(
  connect: Deno.ConnectOptions | Deno.UnixConnectOptions,
  request: string | Uint8Array,
): Promise<{ status: number; head: string; body: string }> {
  const conn = await Deno.connect(connect as Deno.ConnectOptions);
  try {
    const bytes = typeof request === "string" ? new TextEncoder().encode(request) : request;
    const chunks: Uint8Array[] = [];
    try {
      let written = 0;
      while (written < bytes.length) written += await conn.write(bytes.subarray(written));
      const buf = new Uint8Array(65536);
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        chunks.push(buf.slice(0, n));
      }
    } catch (e) {
      // A server may answer and drop the connection before reading everything we sent.
      if (!(e instanceof Deno.errors.ConnectionReset || e instanceof Deno.errors.BrokenPipe)) {
        throw e;
      }
    }
    const text = new TextDecoder().decode(concat(chunks));
    const split = text.indexOf("\r\n\r\n");
    const head = split < 0 ? text : text.slice(0, split);
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
    return { status, head, body: split < 0 ? "" : text.slice(split + 4) };
  } finally {
    conn.close();
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** A fresh temporary directory, removed by the returned function. */
export async function tempDir(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "edgevpn-api-" });
  return { dir, remove: () => Deno.remove(dir, { recursive: true }) };
}
