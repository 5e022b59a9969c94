/** Where the API listens: `host:port` or `unix:///path` (stale sockets removed, live ones refused), behind the connection guard. */

import { parseFileMode } from "../config/settings.ts";
import { errorMessage, UsageError } from "../util/errors.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import {
  type ConnGuard,
  type ConnGuardLimits,
  DEFAULT_CONN_LIMITS,
  guardConnections,
} from "./conn_guard.ts";
import { ApiListenError } from "./errors.ts";

/**
 * Go's default `--api-listen`.
 *
 * @example
 * ```ts
 * parseApiListen(DEFAULT_API_LISTEN); // { transport: "tcp", hostname: "127.0.0.1", port: 8080 }
 * ```
 */
export const DEFAULT_API_LISTEN = "127.0.0.1:8080";

/**
 * Mode of the API's unix socket when `APILISTENUNIXMODE` is unset (owner and group only).
 *
 * @example
 * ```ts
 * DEFAULT_UNIX_SOCKET_MODE.toString(8); // "660"
 * ```
 */
export const DEFAULT_UNIX_SOCKET_MODE = 0o660;

/**
 * Prefix selecting a unix socket listener.
 *
 * @example
 * ```ts
 * `${UNIX_SOCKET_SCHEME}/run/edgevpn.sock`; // "unix:///run/edgevpn.sock"
 * ```
 */
export const UNIX_SOCKET_SCHEME = "unix://";

/** A parsed listen address; an empty TCP host (`:8080`) means every interface. */
export type ApiListenTarget =
  | { transport: "tcp"; hostname: string; port: number }
  | { transport: "unix"; path: string };

/** Where a started API listens (the real port when 0 was asked). */
export type ApiAddress =
  | { transport: "tcp"; hostname: string; port: number }
  | { transport: "unix"; path: string };

/**
 * Parses a listen address: `host:port`, `[v6]:port`, `:port` (every interface, as Go) or
 * `unix://PATH` (`unix:///abs/path`; a relative PATH is relative to the working directory).
 *
 * @throws {UsageError} `API_LISTEN_INVALID`.
 * @example
 * ```ts
 * parseApiListen(":8080"); // { transport: "tcp", hostname: "", port: 8080 }
 * parseApiListen("unix:///run/edgevpn.sock"); // { transport: "unix", path: "/run/edgevpn.sock" }
 * ```
 */
export function parseApiListen(text: string): ApiListenTarget {
  const invalid = (why: string) =>
    new UsageError("API_LISTEN_INVALID", `API listen address ${JSON.stringify(text)}: ${why}`);
  if (text.startsWith(UNIX_SOCKET_SCHEME)) {
    const path = text.slice(UNIX_SOCKET_SCHEME.length);
    if (path === "" || path.includes("\0")) throw invalid("expected unix:///path/to/socket");
    return { transport: "unix", path };
  }
  const colon = text.lastIndexOf(":");
  if (colon < 0) throw invalid("expected host:port, :port or unix:///path");
  let hostname = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  if (hostname.startsWith("[") && hostname.endsWith("]")) hostname = hostname.slice(1, -1);
  else if (hostname.includes(":")) throw invalid("an IPv6 host must be written [addr]:port");
  if (/[\s[\]/]/.test(hostname)) throw invalid(`bad host ${JSON.stringify(hostname)}`);
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > 65535) {
    throw invalid(`expected a port number 0 to 65535, got ${JSON.stringify(portText)}`);
  }
  return { transport: "tcp", hostname, port: Number(portText) };
}

/**
 * Parses `APILISTENUNIXMODE` as Go does: octal with an optional `0`/`0o` prefix, permission bits
 * only; undefined when it is not octal (the option table's `mode` kind).
 *
 * @example
 * ```ts
 * parseUnixSocketMode("0600"); // 0o600
 * parseUnixSocketMode("rw"); // undefined
 * ```
 */
export const parseUnixSocketMode: (text: string) => number | undefined = parseFileMode;

/**
 * Formats an address the way it is written in `--api-listen`.
 *
 * @example
 * ```ts
 * formatApiAddress({ transport: "tcp", hostname: "::1", port: 8080 }); // "[::1]:8080"
 * ```
 */
export function formatApiAddress(address: ApiAddress | ApiListenTarget): string {
  if (address.transport === "unix") return UNIX_SOCKET_SCHEME + address.path;
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  return `${host}:${address.port}`;
}

/**
 * Turns an error of binding `where` into an {@link ApiListenError} with a stable code.
 *
 * @example
 * ```ts
 * listenFailure(new Deno.errors.AddrInUse("os error 98"), "127.0.0.1:8080").code; // "API_ADDRESS_IN_USE"
 * ```
 */
export function listenFailure(e: unknown, where: string): ApiListenError {
  const fail = (code: string, what: string) =>
    new ApiListenError(code, `Cannot listen on ${where}: ${what}`, { cause: e });
  if (e instanceof ApiListenError) return e;
  if (e instanceof Deno.errors.AddrInUse) {
    return fail("API_ADDRESS_IN_USE", "address already in use");
  }
  if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
    return fail("API_PERMISSION_DENIED", `permission denied (${errorMessage(e)})`);
  }
  if (e instanceof Deno.errors.AddrNotAvailable) {
    return fail("API_ADDRESS_UNAVAILABLE", "address not available on this host");
  }
  if (e instanceof Deno.errors.NotFound) {
    return fail("API_LISTEN_FAILED", "the socket's directory does not exist");
  }
  return fail("API_LISTEN_FAILED", errorMessage(e));
}

/** Options of {@link serveApi}. */
export interface ServeApiOptions {
  /** Default {@link DEFAULT_API_LISTEN}. */
  listen?: string;
  /** Mode of a unix socket; default {@link DEFAULT_UNIX_SOCKET_MODE}. */
  unixSocketMode?: number;
  /** Timeouts and size limits of client connections; default {@link DEFAULT_CONN_LIMITS}. */
  limits?: Partial<ConnGuardLimits>;
  logger?: Logger;
}

/** A running listener. */
export interface ApiListener {
  readonly address: ApiAddress;
  /** Counters of the connection guard (timeouts, refusals). */
  readonly connections: ConnGuard;
  /** Resolves when the server has stopped. */
  readonly finished: Promise<void>;
  /** Stops accepting, lets in-flight requests finish, removes our unix socket file. */
  close(): Promise<void>;
}

/**
 * Serves `handler` (e.g. a Hono app's `fetch`) on a TCP address or unix socket.
 *
 * Connections are accepted by a guard ({@link guardConnections}) that closes requests whose
 * head or body stalls and idle connections, caps open connections, and refuses oversize
 * request lines, heads and bodies before relaying them to Deno.serve on a private socket.
 *
 * A unix socket path holding another kind of file is refused; a socket something still
 * accepts on is refused ("already in use"); a stale socket (connection refused) is removed.
 * The new socket is chmod-ed to `unixSocketMode`. Systemd socket activation is not supported.
 *
 * @throws {UsageError} `API_LISTEN_INVALID`; {@link ApiListenError} when binding fails.
 * @example
 * ```ts ignore
 * const listener = await serveApi(app.fetch, { listen: "unix:///run/edgevpn/api.sock" });
 * await listener.close();
 * ```
 */
export async function serveApi(
  handler: (request: Request) => Response | Promise<Response>,
  options: ServeApiOptions = {},
): Promise<ApiListener> {
  const target = parseApiListen(options.listen ?? DEFAULT_API_LISTEN);
  const where = formatApiAddress(target);
  const logger = options.logger ?? silentLogger;
  const limits: ConnGuardLimits = { ...DEFAULT_CONN_LIMITS, ...options.limits };

  let listener: Deno.Listener;
  let address: ApiAddress;
  let ino: number | null = null;
  if (target.transport === "unix") {
    const path = target.path;
    await clearStaleSocket(path, where);
    try {
      listener = Deno.listen({ transport: "unix", path });
    } catch (e) {
      // Another process bound the path between our check and our bind.
      if (e instanceof Deno.errors.AddrInUse) throw socketInUseError(where);
      throw listenFailure(e, where);
    }
    try {
      await Deno.chmod(path, (options.unixSocketMode ?? DEFAULT_UNIX_SOCKET_MODE) & 0o777);
      ino = (await Deno.lstat(path)).ino;
    } catch (e) {
      listener.close();
      await Deno.remove(path).catch(() => {});
      throw new ApiListenError("API_LISTEN_FAILED", `Cannot chmod ${path}: ${errorMessage(e)}`, {
        cause: e,
      });
    }
    address = { transport: "unix", path };
  } else {
    const bind = (hostname: string) => Deno.listen({ hostname, port: target.port });
    try {
      if (target.hostname !== "") {
        listener = bind(target.hostname);
      } else {
        // Go's ":port" listens on every interface, IPv6 and IPv4; "::" is dual-stack on Linux.
        try {
          listener = bind("::");
        } catch (e) {
          if (e instanceof Deno.errors.AddrInUse || e instanceof Deno.errors.PermissionDenied) {
            throw e;
          }
          listener = bind("0.0.0.0");
        }
      }
    } catch (e) {
      throw listenFailure(e, where);
    }
    const addr = listener.addr as Deno.NetAddr;
    address = { transport: "tcp", hostname: addr.hostname, port: addr.port };
  }

  // Deno.serve listens on a socket in a private directory; only the guard connects to it.
  let privateDir: string;
  let server: Deno.HttpServer<Deno.UnixAddr>;
  try {
    privateDir = await Deno.makeTempDir({ prefix: "edgevpn-api-" });
    server = Deno.serve({
      path: `${privateDir}/http.sock`,
      onListen: () => {},
      onError: (e: unknown) => {
        logger.error("request handler failed", { error: errorMessage(e) });
        return new Response('{"error":"internal error","message":"internal error"}\n', {
          status: 500,
          headers: { "content-type": "application/json" },
        });
      },
    }, handler);
  } catch (e) {
    listener.close();
    if (address.transport === "unix") await removeOwnSocket(address.path, ino);
    throw listenFailure(e, where);
  }
  const upstream = `${privateDir}/http.sock`;
  const guard = guardConnections(
    listener,
    () => Deno.connect({ transport: "unix", path: upstream }),
    limits,
  );
  logger.info("API listening", { address: formatApiAddress(address) });
  let closing: Promise<void> | undefined;
  return {
    address,
    connections: guard,
    finished: server.finished,
    close: () =>
      closing ??= (async () => {
        guard.stopAccepting();
        await server.shutdown();
        guard.close();
        await Deno.remove(privateDir, { recursive: true }).catch(() => {});
        if (address.transport === "unix") await removeOwnSocket(address.path, ino);
      })(),
  };
}

/** Go `listenUnix`'s checks: refuse non-sockets and live sockets, remove a stale one. */
async function clearStaleSocket(path: string, where: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw listenFailure(e, where);
  }
  if (!info.isSocket) {
    throw new ApiListenError(
      "API_SOCKET_NOT_SOCKET",
      `Cannot listen on ${where}: refusing to remove ${path}, which is not a socket`,
    );
  }
  if (await socketInUse(path)) throw socketInUseError(where);
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw listenFailure(e, where);
  }
}

function socketInUseError(where: string): ApiListenError {
  return new ApiListenError(
    "API_SOCKET_IN_USE",
    `Cannot listen on ${where}: the socket is already in use by another process`,
  );
}

/** Only a refused connection proves a socket stale; any other failure is taken as in use (Go). */
async function socketInUse(path: string): Promise<boolean> {
  try {
    const conn = await Deno.connect({ transport: "unix", path });
    conn.close();
    return true;
  } catch (e) {
    return !(e instanceof Deno.errors.ConnectionRefused || e instanceof Deno.errors.NotFound);
  }
}

/** Removes the socket file if it is still the one we bound (Deno usually removed it already). */
async function removeOwnSocket(path: string, ino: number | null): Promise<void> {
  try {
    if ((await Deno.lstat(path)).ino === ino) await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}
