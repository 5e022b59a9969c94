/** `host:port` addresses of the DNS server and of its forward servers. */
import { parseIP } from "../net/ip.ts";
import { UsageError } from "../util/errors.ts";

/** A UDP/TCP endpoint. */
export interface HostPort {
  hostname: string;
  port: number;
}

/**
 * Parses `host:port`, `[v6]:port`, `:port` (every interface) or, without a port, `host`
 * with `defaultPort`. Hosts are IP addresses or `localhost`: a DNS server cannot depend on
 * name resolution to find its own listener or upstreams.
 *
 * @throws {UsageError} `BAD_FLAG`, naming `source` and what was expected.
 * @example
 * ```ts
 * parseHostPort("127.0.0.1:5353", 53, "--dns"); // { hostname: "127.0.0.1", port: 5353 }
 * parseHostPort("[::1]", 53, "--dns-forward-server"); // { hostname: "::1", port: 53 }
 * parseHostPort(":53", 53, "--dns"); // { hostname: "0.0.0.0", port: 53 }
 * ```
 */
export function parseHostPort(text: string, defaultPort: number, source: string): HostPort {
  const bad = () =>
    new UsageError(
      "BAD_FLAG",
      `${source}: expected an IP address with an optional port such as 127.0.0.1:53 or [::1]:53, got ${
        JSON.stringify(text)
      }`,
    );
  let host: string;
  let portText: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracket) {
    [, host, portText] = bracket;
  } else if ((text.match(/:/g) ?? []).length > 1) {
    host = text; // a bare IPv6 address
  } else {
    const i = text.lastIndexOf(":");
    host = i < 0 ? text : text.slice(0, i);
    portText = i < 0 ? undefined : text.slice(i + 1);
  }
  if (portText !== undefined && !/^\d{1,5}$/.test(portText)) throw bad();
  const port = portText === undefined ? defaultPort : Number(portText);
  if (port > 65535) throw bad();
  if (host === "") host = "0.0.0.0";
  else if (host.toLowerCase() === "localhost") host = "127.0.0.1";
  else if (parseIP(host) === null) throw bad();
  return { hostname: host, port };
}

/**
 * `host:port` text of an endpoint, with brackets around IPv6.
 *
 * @example
 * ```ts
 * formatHostPort({ hostname: "::1", port: 53 }); // "[::1]:53"
 * ```
 */
export function formatHostPort(address: HostPort): string {
  return address.hostname.includes(":")
    ? `[${address.hostname}]:${address.port}`
    : `${address.hostname}:${address.port}`;
}
