/**
 * HTTP/1.x request heads for egress and the proxy: bounded incremental reading, parsing,
 * targets, rewriting for the destination.
 *
 * Deno's own server (`Deno.serve`) cannot do this job: it gives no way to take the raw
 * connection after a `CONNECT` (only WebSocket upgrades), cannot share a socket with SOCKS5
 * told apart by the first byte, and has no entry point for bytes arriving on a libp2p stream
 * (Go's `/edgevpn/egress/0.1`). Only the head is parsed here; bodies and responses are relayed
 * as bytes, so framing is the destination's and the client's business once the head is checked
 * for smuggling.
 */
import { InputError } from "../util/errors.ts";
import { isTunnelHost, type TunnelTarget } from "./protocol.ts";

/** Limits on a request head. */
export interface HttpHeadLimits {
  /** Longest request line, in bytes. */
  maxLineBytes: number;
  /** Longest head (request line and headers, up to the empty line), in bytes. */
  maxHeadBytes: number;
  /** Most header fields. */
  maxHeaders: number;
}

/**
 * Default limits: 8 KiB request lines, 32 KiB heads, 100 header fields.
 *
 * @example
 * ```ts
 * DEFAULT_HEAD_LIMITS.maxHeadBytes; // 32768
 * ```
 */
export const DEFAULT_HEAD_LIMITS: Readonly<HttpHeadLimits> = {
  maxLineBytes: 8 * 1024,
  maxHeadBytes: 32 * 1024,
  maxHeaders: 100,
};

/** The HTTP status that answers a refused head. */
export type HttpErrorStatus = 400 | 403 | 405 | 408 | 414 | 431 | 502 | 503 | 504 | 505;

/**
 * A request head that cannot be served, with the status to answer.
 *
 * @example
 * ```ts
 * new HttpHeadError(431, "request head larger than 32768 bytes").status; // 431
 * ```
 */
export class HttpHeadError extends InputError {
  readonly status: HttpErrorStatus;
  constructor(status: HttpErrorStatus, message: string) {
    super("HTTP_REQUEST_INVALID", message);
    this.status = status;
  }
}

/** One header field as sent (name case kept, value without surrounding blanks). */
export interface HttpHeader {
  name: string;
  value: string;
}

/** A parsed request head. */
export interface HttpRequestHead {
  method: string;
  /** The request target as sent: origin-form, absolute-form or authority-form. */
  target: string;
  version: "HTTP/1.0" | "HTTP/1.1";
  headers: HttpHeader[];
}

const CR = 13;
const LF = 10;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([!-~]+) (HTTP\/\d+\.\d+)$/;
const latin1 = new TextDecoder("latin1");

/**
 * Collects the bytes of one request head from chunks as they arrive and parses it once the
 * empty line is in, refusing heads over the limits as soon as they pass them.
 *
 * @example
 * ```ts
 * const reader = new HeadReader();
 * const done = reader.push(new TextEncoder().encode("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\nbody"));
 * done?.head.method; // "GET"
 * done?.rest.length; // 4
 * ```
 */
export class HeadReader {
  readonly #limits: HttpHeadLimits;
  #buffer: Uint8Array;
  #length = 0;
  #lineSeen = false;

  constructor(limits: HttpHeadLimits = DEFAULT_HEAD_LIMITS) {
    this.#limits = limits;
    this.#buffer = new Uint8Array(Math.min(4096, limits.maxHeadBytes));
  }

  /** Bytes held so far. */
  get buffered(): number {
    return this.#length;
  }

  /**
   * Adds `chunk`; returns the head and the bytes after it once the head is complete.
   *
   * @throws {HttpHeadError} 414 for a long request line, 431 for a large head, 400/505 for a
   * malformed one.
   */
  push(chunk: Uint8Array): { head: HttpRequestHead; rest: Uint8Array } | undefined {
    let at = 0;
    // Empty lines before a request line are ignored (RFC 9112 §2.2).
    while (this.#length === 0 && at < chunk.length && (chunk[at] === CR || chunk[at] === LF)) {
      at++;
    }
    for (; at < chunk.length; at++) {
      if (this.#length >= this.#limits.maxHeadBytes) {
        throw new HttpHeadError(
          431,
          `request head larger than ${this.#limits.maxHeadBytes} bytes`,
        );
      }
      const b = chunk[at];
      this.#append(b);
      if (b !== LF) {
        if (!this.#lineSeen && this.#length > this.#limits.maxLineBytes) {
          throw new HttpHeadError(
            414,
            `request line longer than ${this.#limits.maxLineBytes} bytes`,
          );
        }
        continue;
      }
      this.#lineSeen = true;
      const n = this.#length;
      const buf = this.#buffer;
      if (n >= 2 && (buf[n - 2] === LF || (buf[n - 2] === CR && n >= 3 && buf[n - 3] === LF))) {
        const head = parseRequestHead(buf.subarray(0, n), this.#limits);
        return { head, rest: chunk.subarray(at + 1) };
      }
    }
    return undefined;
  }

  #append(b: number): void {
    if (this.#length === this.#buffer.length) {
      const bigger = new Uint8Array(Math.min(this.#buffer.length * 2, this.#limits.maxHeadBytes));
      bigger.set(this.#buffer);
      this.#buffer = bigger;
    }
    this.#buffer[this.#length++] = b;
  }
}

/**
 * Parses a complete request head (up to and including its empty line).
 *
 * @throws {HttpHeadError} 400 for a malformed line or ambiguous framing, 505 for a version
 * other than HTTP/1.0 and 1.1, 431 for too many fields.
 * @example
 * ```ts
 * parseRequestHead(new TextEncoder().encode("CONNECT a:443 HTTP/1.1\r\n\r\n")).target; // "a:443"
 * ```
 */
export function parseRequestHead(
  bytes: Uint8Array,
  limits: HttpHeadLimits = DEFAULT_HEAD_LIMITS,
): HttpRequestHead {
  const lines = latin1.decode(bytes).split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  const line = REQUEST_LINE.exec(lines[0] ?? "");
  if (!line) throw new HttpHeadError(400, "malformed request line");
  const version = line[3];
  if (version !== "HTTP/1.0" && version !== "HTTP/1.1") {
    throw new HttpHeadError(505, `${version} is not supported: HTTP/1.0 or 1.1 only`);
  }
  if (lines.length - 1 > limits.maxHeaders) {
    throw new HttpHeadError(431, `more than ${limits.maxHeaders} header fields`);
  }
  const headers: HttpHeader[] = [];
  for (const text of lines.slice(1)) {
    const colon = text.indexOf(":");
    const name = colon > 0 ? text.slice(0, colon) : "";
    // Folded lines and blanks before the colon are refused (RFC 9112 §5.1, §5.2).
    if (!TOKEN.test(name)) throw new HttpHeadError(400, "malformed header field");
    const value = text.slice(colon + 1).trim();
    if (/[\0\r\n]/.test(value)) throw new HttpHeadError(400, "malformed header field");
    headers.push({ name, value });
  }
  const head: HttpRequestHead = { method: line[1], target: line[2], version, headers };
  checkFraming(head);
  return head;
}

// A head whose body length is ambiguous is refused: the bytes after it would mean different
// things to us and to the destination (request smuggling).
function checkFraming(head: HttpRequestHead): void {
  const lengths = headerValues(head, "content-length");
  const codings = headerValues(head, "transfer-encoding");
  if (lengths.length > 0 && codings.length > 0) {
    throw new HttpHeadError(400, "both Content-Length and Transfer-Encoding");
  }
  const distinct = new Set(lengths.flatMap((v) => v.split(",").map((s) => s.trim())));
  if (distinct.size > 1) throw new HttpHeadError(400, "conflicting Content-Length values");
  for (const v of distinct) {
    if (!/^\d{1,15}$/.test(v)) throw new HttpHeadError(400, "malformed Content-Length");
  }
  if (codings.length > 0) {
    const last = codings.join(",").split(",").map((s) => s.trim().toLowerCase()).pop();
    if (last !== "chunked") {
      throw new HttpHeadError(400, "Transfer-Encoding of a request must end with chunked");
    }
  }
}

/**
 * Every value of the header `name` (case-insensitive), in order.
 *
 * @example
 * ```ts
 * headerValues({ method: "GET", target: "/", version: "HTTP/1.1", headers: [{ name: "Host", value: "a" }] }, "host"); // ["a"]
 * ```
 */
export function headerValues(head: HttpRequestHead, name: string): string[] {
  const lower = name.toLowerCase();
  return head.headers.filter((h) => h.name.toLowerCase() === lower).map((h) => h.value);
}

/**
 * True when the request carries a body (a non-zero Content-Length or a chunked one).
 *
 * @example
 * ```ts
 * hasBody(parseRequestHead(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"))); // false
 * ```
 */
export function hasBody(head: HttpRequestHead): boolean {
  if (headerValues(head, "transfer-encoding").length > 0) return true;
  return headerValues(head, "content-length").some((v) => Number(v.split(",")[0]) > 0);
}

/**
 * Parses `host[:port]` or `[v6]:port` (an HTTP authority); the port defaults to
 * `defaultPort` when absent and allowed.
 *
 * @throws {HttpHeadError} 400 naming what was expected.
 * @example
 * ```ts
 * parseAuthority("[::1]:8443"); // { host: "::1", port: 8443 }
 * parseAuthority("example.com", 80); // { host: "example.com", port: 80 }
 * ```
 */
export function parseAuthority(text: string, defaultPort?: number): TunnelTarget {
  const bad = () =>
    new HttpHeadError(
      400,
      `malformed target ${JSON.stringify(text.slice(0, 100))}: expected host:port`,
    );
  let host: string;
  let portText: string | undefined;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) throw bad();
    host = text.slice(1, close);
    const after = text.slice(close + 1);
    if (after !== "") {
      if (!after.startsWith(":")) throw bad();
      portText = after.slice(1);
    }
    if (!host.includes(":")) throw bad();
  } else {
    const colon = text.lastIndexOf(":");
    if (colon >= 0) {
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
      if (host.includes(":")) throw bad();
    } else host = text;
  }
  if (!isTunnelHost(host) || host.includes("%")) throw bad();
  let port: number;
  if (portText === undefined || portText === "") {
    if (defaultPort === undefined) throw bad();
    port = defaultPort;
  } else {
    if (!/^\d{1,5}$/.test(portText)) throw bad();
    port = Number(portText);
  }
  if (port < 1 || port > 65535) throw bad();
  return { host: host.toLowerCase(), port };
}

/**
 * Formats a target as an authority: `host:port`, with brackets around IPv6 addresses.
 *
 * @example
 * ```ts
 * formatAuthority({ host: "::1", port: 80 }); // "[::1]:80"
 * ```
 */
export function formatAuthority(target: TunnelTarget): string {
  return target.host.includes(":")
    ? `[${target.host}]:${target.port}`
    : `${target.host}:${target.port}`;
}

/** Headers for one connection only (RFC 9110 §7.6.1), never passed to the destination. */
const HOP_BY_HOP = new Set([
  "connection",
  "proxy-connection",
  "keep-alive",
  "proxy-authorization",
  "proxy-authenticate",
  "te",
  "trailer",
  "upgrade",
  // The destination would answer 100 Continue first, which a one-response relay must not pass.
  "expect",
]);

/**
 * The head to send to the destination: origin-form `path`, `Host: host` (replacing the one
 * sent, as a proxy must), hop-by-hop fields removed and `Connection: close` (one request
 * per connection), except that a protocol upgrade (WebSocket) keeps its `Upgrade` and
 * `Connection: upgrade`.
 *
 * @example
 * ```ts
 * const head = parseRequestHead(new TextEncoder().encode("GET http://a/x HTTP/1.1\r\nProxy-Connection: keep-alive\r\n\r\n"));
 * new TextDecoder().decode(forwardedHead(head, "/x", "a")); // "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
 * ```
 */
export function forwardedHead(head: HttpRequestHead, path: string, host: string): Uint8Array {
  const connection = headerValues(head, "connection").join(",").toLowerCase().split(",")
    .map((s) => s.trim()).filter((s) => s !== "");
  const upgrade = connection.includes("upgrade") ? headerValues(head, "upgrade")[0] : undefined;
  const named = new Set(connection);
  const lines = [`${head.method} ${path} ${head.version}`, `Host: ${host}`];
  for (const h of head.headers) {
    const lower = h.name.toLowerCase();
    if (lower === "host" || HOP_BY_HOP.has(lower) || named.has(lower)) continue;
    lines.push(`${h.name}: ${h.value}`);
  }
  if (upgrade !== undefined) lines.push(`Connection: upgrade`, `Upgrade: ${upgrade}`);
  else lines.push("Connection: close");
  return latin1Bytes(lines.join("\r\n") + "\r\n\r\n");
}

/**
 * An HTTP/1.1 response with a plain-text body and `Connection: close`: what the proxy and the
 * egress node answer when they cannot serve a request.
 *
 * @example
 * ```ts
 * new TextDecoder().decode(errorResponse(503, "no egress nodes available")).split("\r\n")[0]; // "HTTP/1.1 503 Service Unavailable"
 * ```
 */
export function errorResponse(status: HttpErrorStatus, message: string): Uint8Array {
  const body = new TextEncoder().encode(message + "\n");
  return latin1Bytes(
    `HTTP/1.1 ${status} ${REASONS[status]}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
    body,
  );
}

const REASONS: Record<HttpErrorStatus, string> = {
  400: "Bad Request",
  403: "Forbidden",
  405: "Method Not Allowed",
  408: "Request Timeout",
  414: "URI Too Long",
  431: "Request Header Fields Too Large",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

function latin1Bytes(text: string, tail?: Uint8Array): Uint8Array {
  const out = new Uint8Array(text.length + (tail?.length ?? 0));
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff;
  if (tail) out.set(tail, text.length);
  return out;
}
