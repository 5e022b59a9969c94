/** The proxy's `--listen` address and Go's check that it does not take the API's socket. */
import type { ApiListenTarget } from "../api/listen.ts";
import { parseIP } from "../net/ip.ts";
import { UsageError } from "../util/errors.ts";

/** A TCP address to listen on. */
export interface ListenAddress {
  hostname: string;
  port: number;
}

/**
 * Parses `--listen` of `edgevpn proxy`: `host:port`, `:port` (every interface, as Go) or
 * `[v6]:port`.
 *
 * @throws {UsageError} `BAD_FLAG` naming what was expected.
 * @example
 * ```ts
 * parseProxyListen(":8080"); // { hostname: "0.0.0.0", port: 8080 }
 * parseProxyListen("[::1]:3128"); // { hostname: "::1", port: 3128 }
 * ```
 */
export function parseProxyListen(text: string): ListenAddress {
  const bad = () =>
    new UsageError(
      "BAD_FLAG",
      `--listen: expected host:port, :port or [IPv6]:port such as 127.0.0.1:8080, got ${
        JSON.stringify(text)
      }`,
    );
  const colon = text.lastIndexOf(":");
  if (colon < 0) throw bad();
  let hostname = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  if (hostname.startsWith("[") && hostname.endsWith("]")) {
    hostname = hostname.slice(1, -1);
    if (parseIP(hostname) === null) throw bad();
  } else if (hostname.includes(":") || /[\s[\]/]/.test(hostname)) throw bad();
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw bad();
  return { hostname: hostname === "" ? "0.0.0.0" : hostname, port: Number(portText) };
}

/**
 * True when the proxy and the API would compete for one socket: the same port (not 0) on the
 * same address, or on any address when either is a wildcard (Go's `listenersConflict`).
 *
 * @example
 * ```ts
 * listenersConflict({ hostname: "0.0.0.0", port: 8080 }, { transport: "tcp", hostname: "127.0.0.1", port: 8080 }); // true
 * ```
 */
export function listenersConflict(proxy: ListenAddress, api: ApiListenTarget): boolean {
  if (api.transport !== "tcp") return false;
  if (proxy.port !== api.port || proxy.port === 0) return false;
  const a = canonicalHost(proxy.hostname);
  const b = canonicalHost(api.hostname);
  return a === "*" || b === "*" || a === b;
}

function canonicalHost(host: string): string {
  const lower = host.toLowerCase();
  if (lower === "" || lower === "0.0.0.0" || lower === "::") return "*";
  if (lower === "localhost") return "127.0.0.1";
  return lower;
}
