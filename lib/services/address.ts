/** `host:port` text of service backends and of local listeners. */
import { parseIP } from "../net/ip.ts";
import { UsageError } from "../util/errors.ts";

/** A TCP endpoint. */
export interface TcpAddress {
  hostname: string;
  port: number;
}

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

/**
 * Parses Go's `net.Dial`/`net.Listen` address text: `host:port`, `[v6]:port` or, where
 * `listen` is true, `:port` (every interface) and port 0 (any free port). Backends may be
 * named by host name; listeners take IP addresses or `localhost`.
 *
 * @throws {UsageError} `BAD_ADDRESS` naming `source` and what was expected.
 * @example
 * ```ts
 * parseTcpAddress("127.0.0.1:22", "--address"); // { hostname: "127.0.0.1", port: 22 }
 * parseTcpAddress(":8080", "--address", { listen: true }); // { hostname: "0.0.0.0", port: 8080 }
 * ```
 */
export function parseTcpAddress(
  text: string,
  source: string,
  options: { listen?: boolean } = {},
): TcpAddress {
  const listen = options.listen ?? false;
  const bad = () =>
    new UsageError(
      "BAD_ADDRESS",
      `${source}: expected ${
        listen ? "[ip]:port such as :8080 or 127.0.0.1:8080" : "host:port such as 127.0.0.1:22"
      }, got ${JSON.stringify(text)}`,
    );
  let host: string;
  let portText: string;
  const bracket = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text);
  if (bracket) {
    [, host, portText] = bracket;
    if (parseIP(host) === null || !host.includes(":")) throw bad();
  } else {
    const m = /^([^:\[\]]*):(\d{1,5})$/.exec(text);
    if (!m) throw bad();
    [, host, portText] = m;
  }
  const port = Number(portText);
  if (port > 65535 || (port === 0 && !listen)) throw bad();
  if (host === "") {
    if (!listen) throw bad();
    host = "0.0.0.0";
  } else if (host.toLowerCase() === "localhost") {
    host = "127.0.0.1";
  } else if (parseIP(host) === null && (listen || !HOSTNAME.test(host))) {
    throw bad();
  }
  return { hostname: host, port };
}

/**
 * `host:port` text of an endpoint, with brackets around IPv6.
 *
 * @example
 * ```ts
 * formatTcpAddress({ hostname: "::1", port: 22 }); // "[::1]:22"
 * ```
 */
export function formatTcpAddress(address: TcpAddress): string {
  return address.hostname.includes(":")
    ? `[${address.hostname}]:${address.port}`
    : `${address.hostname}:${address.port}`;
}
