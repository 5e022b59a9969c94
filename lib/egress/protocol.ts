/** Protocol IDs of egress and the header of our tunnel protocol (CONNECT and SOCKS5 between our nodes). */
import { InputError } from "../util/errors.ts";

/** Go EdgeVPN's egress: one HTTP/1.x request per stream, the response back, then the end. */
export const GO_EGRESS_PROTOCOL = "/edgevpn/egress/0.1";
/**
 * Ours: the dialer names a TCP destination, the egress node answers with one status byte and,
 * when it connected, raw bytes flow both ways (HTTPS stays end to end between client and
 * server).
 */
export const EGRESS_TUNNEL_PROTOCOL = "/edgevpn/egress-tunnel/1.0.0";

/** The version byte that opens a tunnel request. */
const TUNNEL_VERSION = 1;
/** The only kind of tunnel so far: a TCP connection. */
const KIND_TCP = 1;
/** Longest host in a request, in bytes (a DNS name is at most 253). */
export const MAX_TUNNEL_HOST_BYTES = 255;
/** Longest tunnel request: version, kind, port, length, host. */
export const MAX_TUNNEL_REQUEST_BYTES = 5 + MAX_TUNNEL_HOST_BYTES;

/** The egress node's answer to a tunnel request, the first byte it sends back. */
export const TunnelStatus = {
  /** Connected: raw bytes follow both ways. */
  ok: 0,
  /** The destination is not allowed (a private address with `--egress-allow-private=false`). */
  forbidden: 1,
  /** The host name does not resolve. */
  unresolved: 2,
  /** The destination refused the connection. */
  refused: 3,
  /** No route to the destination. */
  unreachable: 4,
  /** The request was malformed. */
  badRequest: 5,
  /** Any other failure. */
  failed: 6,
  /** The destination did not answer in time. */
  timeout: 7,
} as const;

/** One of {@link TunnelStatus}. */
export type TunnelStatusCode = typeof TunnelStatus[keyof typeof TunnelStatus];

/** A TCP destination: a host name or IP address (IPv6 without brackets) and a port. */
export interface TunnelTarget {
  host: string;
  port: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
/** Letters, digits and the punctuation of DNS names and IPv4/IPv6 literals. */
const HOST_CHARS = /^[A-Za-z0-9._:%-]+$/;

/**
 * True when `host` may be named in a tunnel request: 1–255 characters of DNS names and IP
 * literals (IPv6 without brackets).
 *
 * @example
 * ```ts
 * isTunnelHost("example.com"); // true
 * isTunnelHost("a b"); // false
 * ```
 */
export function isTunnelHost(host: string): boolean {
  return host.length > 0 && host.length <= MAX_TUNNEL_HOST_BYTES && HOST_CHARS.test(host);
}

/**
 * The request header of {@link EGRESS_TUNNEL_PROTOCOL}: version 1, kind 1 (TCP), the port
 * (2 bytes, big-endian), the host's length (1–255) and the host in ASCII.
 *
 * @throws {InputError} `TUNNEL_TARGET_INVALID` for a bad host or port.
 * @example
 * ```ts
 * encodeTunnelRequest({ host: "a.b", port: 443 }); // Uint8Array [1, 1, 1, 187, 3, 97, 46, 98]
 * ```
 */
export function encodeTunnelRequest(target: TunnelTarget): Uint8Array {
  if (!isTunnelHost(target.host)) {
    throw new InputError(
      "TUNNEL_TARGET_INVALID",
      `Tunnel target: expected a host name or IP address, got ${JSON.stringify(target.host)}`,
    );
  }
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
    throw new InputError(
      "TUNNEL_TARGET_INVALID",
      `Tunnel target: expected a port 1–65535, got ${target.port}`,
    );
  }
  const host = encoder.encode(target.host);
  const out = new Uint8Array(5 + host.length);
  out[0] = TUNNEL_VERSION;
  out[1] = KIND_TCP;
  out[2] = target.port >> 8;
  out[3] = target.port & 0xff;
  out[4] = host.length;
  out.set(host, 5);
  return out;
}

/** A parsed tunnel request and how many bytes of the input its header took. */
export interface TunnelRequest extends TunnelTarget {
  length: number;
}

/**
 * Parses the request header at the start of `bytes` (what the dialer sent so far). Returns
 * `undefined` while it is incomplete; bytes after it belong to the destination.
 *
 * @throws {InputError} `TUNNEL_REQUEST_INVALID` for an unknown version or kind, port 0, or a
 * host that is empty or not made of host-name characters.
 * @example
 * ```ts
 * parseTunnelRequest(Uint8Array.of(1, 1, 0, 80, 1, 120)); // { host: "x", port: 80, length: 6 }
 * parseTunnelRequest(Uint8Array.of(1, 1, 0)); // undefined
 * ```
 */
export function parseTunnelRequest(bytes: Uint8Array): TunnelRequest | undefined {
  const bad = (why: string) => new InputError("TUNNEL_REQUEST_INVALID", `Tunnel request: ${why}`);
  if (bytes.length === 0) return undefined;
  if (bytes[0] !== TUNNEL_VERSION) {
    throw bad(`expected version ${TUNNEL_VERSION}, got ${bytes[0]}`);
  }
  if (bytes.length < 2) return undefined;
  if (bytes[1] !== KIND_TCP) throw bad(`expected kind ${KIND_TCP} (TCP), got ${bytes[1]}`);
  if (bytes.length < 5) return undefined;
  const port = (bytes[2] << 8) | bytes[3];
  if (port === 0) throw bad("port 0");
  const size = bytes[4];
  if (size === 0) throw bad("empty host");
  if (bytes.length < 5 + size) return undefined;
  let host: string;
  try {
    host = decoder.decode(bytes.subarray(5, 5 + size));
  } catch {
    throw bad("host is not text");
  }
  if (!isTunnelHost(host)) throw bad(`bad host ${JSON.stringify(host)}`);
  return { host, port, length: 5 + size };
}

/**
 * The status byte of an answer, or throws for a byte that is none.
 *
 * @throws {InputError} `TUNNEL_STATUS_INVALID`.
 * @example
 * ```ts
 * parseTunnelStatus(0); // 0 (ok)
 * ```
 */
export function parseTunnelStatus(byte: number): TunnelStatusCode {
  if (Number.isInteger(byte) && byte >= 0 && byte <= 7) return byte as TunnelStatusCode;
  throw new InputError("TUNNEL_STATUS_INVALID", `Tunnel answer: unknown status ${byte}`);
}

/**
 * A one-line explanation of a status for people (HTTP error bodies, logs).
 *
 * @example
 * ```ts
 * describeTunnelStatus(TunnelStatus.forbidden); // "the egress node does not connect to private addresses"
 * ```
 */
export function describeTunnelStatus(status: TunnelStatusCode): string {
  switch (status) {
    case TunnelStatus.ok:
      return "connected";
    case TunnelStatus.forbidden:
      return "the egress node does not connect to private addresses";
    case TunnelStatus.unresolved:
      return "the egress node cannot resolve the host name";
    case TunnelStatus.refused:
      return "the destination refused the connection";
    case TunnelStatus.unreachable:
      return "the destination is unreachable from the egress node";
    case TunnelStatus.badRequest:
      return "the egress node refused a malformed request";
    case TunnelStatus.timeout:
      return "the destination did not answer in time";
    default:
      return "the egress node failed to connect";
  }
}
