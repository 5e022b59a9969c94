/**
 * Who may use the API: the bearer token kept in the state directory, browser sessions opened
 * through a one-time login link, and the Host, Origin and Sec-Fetch-Site checks that keep
 * other web sites (and DNS rebinding) out.
 */

import type { Context, MiddlewareHandler } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { writeFileAtomic } from "../util/atomic_file.ts";
import { EdgeVpnError, errorMessage } from "../util/errors.ts";
import type { ApiListenTarget } from "./listen.ts";
import { type ApiRoute, readBodyText, sendError, sendJson } from "./route.ts";

/**
 * File name of the API token inside the node's state directory (`--state-dir`, default
 * `~/.edgevpn`): `~/.edgevpn/api-token`, mode 0600.
 *
 * @example
 * ```ts ignore
 * `${stateDir}/${API_TOKEN_FILE}`; // "/root/.edgevpn/api-token"
 * ```
 */
export const API_TOKEN_FILE = "api-token";

/** Name of the dashboard's session cookie. */
export const SESSION_COOKIE = "edgevpn_session";

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{32,256}$/;
/** How long a login link works (once). */
const LOGIN_CODE_TTL_MS = 24 * 3600_000;
/** How long a dashboard session lasts. */
const SESSION_TTL_MS = 12 * 3600_000;
const MAX_SESSIONS = 64;
const MAX_LOGIN_CODES = 16;

/**
 * How far the API is reachable, which decides what needs the token: `loopback` (reads open,
 * writes need it), `network` (everything needs it), `unix` (the socket's file mode decides).
 */
export type ApiExposure = "loopback" | "network" | "unix";

/**
 * The exposure of a listen address: loopback hosts (`127.0.0.0/8`, `::1`, `localhost`) are
 * `loopback`; every other host, including the wildcard `:8080`, is `network`.
 *
 * @example
 * ```ts
 * import { parseApiListen } from "./listen.ts";
 * exposureOf(parseApiListen("127.0.0.1:8080")); // "loopback"
 * exposureOf(parseApiListen(":8080")); // "network"
 * ```
 */
export function exposureOf(target: ApiListenTarget): ApiExposure {
  if (target.transport === "unix") return "unix";
  return isLoopbackHost(target.hostname) ? "loopback" : "network";
}

/**
 * Whether a host name or address is a loopback one.
 *
 * @example
 * ```ts
 * isLoopbackHost("127.0.0.2"); // true
 * isLoopbackHost("[::1]"); // true
 * ```
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return h === "localhost" || h.endsWith(".localhost") || h === "::1" ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === "::ffff:127.0.0.1";
}

/**
 * The host names a request's `Host` may carry for a listen address: the address itself,
 * loopback names, `extra` (configured names), and for a wildcard address this machine's name
 * and interface addresses.
 *
 * @example
 * ```ts
 * import { parseApiListen } from "./listen.ts";
 * allowedHostsFor(parseApiListen("127.0.0.1:8080"), ["vpn.example"]); // ["127.0.0.1", "localhost", …, "vpn.example"]
 * ```
 */
export function allowedHostsFor(target: ApiListenTarget, extra: readonly string[]): string[] {
  const hosts = new Set(["localhost", "127.0.0.1", "::1"]);
  for (const h of extra) hosts.add(normalizeHost(h));
  if (target.transport === "tcp") {
    const h = normalizeHost(target.hostname);
    if (h === "" || h === "0.0.0.0" || h === "::") {
      try {
        hosts.add(Deno.hostname().toLowerCase());
        for (const i of Deno.networkInterfaces()) hosts.add(normalizeHost(i.address));
      } catch {
        // Without --allow-sys the configured names still work.
      }
    } else {
      hosts.add(h);
    }
  }
  return [...hosts];
}

function normalizeHost(host: string): string {
  return host.trim().toLowerCase().replace(/^\[(.*)\]$/, "$1").replace(/%.*$/, "");
}

/** The host name of a `Host` header value (port and IPv6 brackets removed). */
function hostOfHeader(value: string): string | undefined {
  const v = value.trim().toLowerCase();
  const m = /^\[([0-9a-f:.]+)\](?::\d{1,5})?$/.exec(v) ?? /^([^:[\]\s/@]+)(?::\d{1,5})?$/.exec(v);
  return m ? m[1].replace(/\.$/, "") : undefined;
}

/**
 * Loads the API token of a state directory, creating it (32 random bytes, base64url, mode
 * 0600, atomic) on first use.
 *
 * @throws {EdgeVpnError} `API_TOKEN_INVALID` for a file that does not hold a token,
 * `STATE_UNWRITABLE` when it cannot be created.
 * @example
 * ```ts ignore
 * const { token, path } = await loadOrCreateApiToken("/root/.edgevpn");
 * ```
 */
export async function loadOrCreateApiToken(
  stateDir: string,
): Promise<{ token: string; path: string; created: boolean }> {
  const path = `${stateDir.replace(/\/+$/, "")}/${API_TOKEN_FILE}`;
  const existing = await readApiTokenFile(path);
  if (existing !== undefined) return { token: existing, path, created: false };
  const token = randomToken();
  try {
    await Deno.mkdir(stateDir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(path, new TextEncoder().encode(token + "\n"), {
      mode: 0o600,
      createNew: true,
    });
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) return await loadOrCreateApiToken(stateDir);
    throw new EdgeVpnError(
      "STATE_UNWRITABLE",
      `Cannot save the API token in ${path}: ${errorMessage(e)} (pass --state-dir)`,
    );
  }
  return { token, path, created: true };
}

/**
 * Reads the API token of a state directory, as a client of the API does (undefined when the
 * node has not created one).
 *
 * @throws {EdgeVpnError} `API_TOKEN_INVALID` for a file that does not hold a token.
 * @example
 * ```ts ignore
 * const token = await readApiToken("/root/.edgevpn");
 * await fetch(url, { headers: { authorization: `Bearer ${token}` } });
 * ```
 */
export async function readApiToken(stateDir: string): Promise<string | undefined> {
  return await readApiTokenFile(`${stateDir.replace(/\/+$/, "")}/${API_TOKEN_FILE}`);
}

async function readApiTokenFile(path: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new EdgeVpnError("API_TOKEN_INVALID", `Cannot read ${path}: ${errorMessage(e)}`);
  }
  const token = text.trim();
  if (!TOKEN_PATTERN.test(token)) {
    throw new EdgeVpnError(
      "API_TOKEN_INVALID",
      `Cannot use ${path}: expected one line of 32 to 256 base64url characters, got ${text.length} bytes (delete it to make a new token)`,
    );
  }
  return token;
}

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

/** Equal-time comparison of two strings (the time depends only on their lengths). */
function sameSecret(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * Dashboard sessions and one-time login codes, in memory (a restart logs browsers out).
 *
 * @example
 * ```ts
 * const sessions = new ApiSessions();
 * const code = sessions.newLoginCode();
 * const session = sessions.redeem(code); // a session ID, once
 * sessions.valid(session!); // true
 * ```
 */
export class ApiSessions {
  readonly #codes = new Map<string, number>();
  readonly #sessions = new Map<string, number>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** A new one-time login code. */
  newLoginCode(): string {
    this.#prune(this.#codes, MAX_LOGIN_CODES);
    const code = randomToken();
    this.#codes.set(code, this.#now() + LOGIN_CODE_TTL_MS);
    return code;
  }

  /** Turns a login code into a session ID; the code stops working. */
  redeem(code: string): string | undefined {
    const expires = this.#codes.get(code);
    if (expires === undefined) return undefined;
    this.#codes.delete(code);
    return expires > this.#now() ? this.newSession() : undefined;
  }

  /** Opens a session (after a login with the token). */
  newSession(): string {
    this.#prune(this.#sessions, MAX_SESSIONS);
    const id = randomToken();
    this.#sessions.set(id, this.#now() + SESSION_TTL_MS);
    return id;
  }

  /** Whether a session ID is open. */
  valid(id: string): boolean {
    const expires = this.#sessions.get(id);
    if (expires === undefined) return false;
    if (expires > this.#now()) return true;
    this.#sessions.delete(id);
    return false;
  }

  /** Closes a session. */
  end(id: string): void {
    this.#sessions.delete(id);
  }

  // Drops expired entries, then the oldest ones beyond `max - 1`.
  #prune(map: Map<string, number>, max: number): void {
    const now = this.#now();
    for (const [k, expires] of map) if (expires <= now) map.delete(k);
    while (map.size >= max) map.delete(map.keys().next().value!);
  }
}

/** Options of {@link apiAccess}. */
export interface ApiAccessOptions {
  /** The bearer token; undefined turns authentication off (Go's open API, `--api-auth=false`). */
  token: string | undefined;
  exposure: ApiExposure;
  /** Host names the `Host` header may carry (see {@link allowedHostsFor}). */
  hosts: readonly string[];
  /**
   * Recomputes `hosts` when a `Host` is not among them (at most every 5 s): a wildcard listen
   * address gains the addresses of interfaces that come up later, such as the VPN's.
   */
  refreshHosts?: () => readonly string[];
  sessions: ApiSessions;
}

/** How a request was authenticated. */
export type ApiCredential = "token" | "session" | "none";

/** The access rules as middleware plus the login routes. */
export interface ApiAccess {
  middleware: MiddlewareHandler[];
  routes: ApiRoute[];
  /** Whether `c` carries the token or a session (for pages that show what the visitor may do). */
  credential(c: Context): ApiCredential;
}

const READ_METHODS = new Set(["GET", "HEAD"]);
const HOSTS_REFRESH_MS = 5_000;
/** Paths anyone may reach, so a browser can log in. */
const OPEN_PATHS = new Set(["/login"]);

/**
 * The access rules of the API:
 * - `Host` must name this server (listen address, loopback name, configured name): 403
 *   otherwise, which defeats DNS rebinding;
 * - a request a browser makes from another origin (`Origin` not this server,
 *   `Sec-Fetch-Site` cross-site or same-site) gets 403; no CORS header is ever sent;
 * - with a token: on `network` exposure every request needs it (or a session); on `loopback`
 *   reads are open and writes need it; a wrong token is 401 everywhere; `unix` sockets rely
 *   on their file mode.
 *
 * @example
 * ```ts ignore
 * const access = apiAccess({ token, exposure: "loopback", hosts: ["127.0.0.1"], sessions });
 * createApiApp(components, { middleware: access.middleware, routes: access.routes });
 * ```
 */
export function apiAccess(options: ApiAccessOptions): ApiAccess {
  let hosts = new Set(options.hosts.map(normalizeHost));
  let refreshedAt = 0;
  const { token, exposure, sessions } = options;
  const allowed = (host: string) => {
    if (hosts.has(host)) return true;
    if (options.refreshHosts && Date.now() - refreshedAt >= HOSTS_REFRESH_MS) {
      refreshedAt = Date.now();
      hosts = new Set(options.refreshHosts().map(normalizeHost));
    }
    return hosts.has(host);
  };

  const credential = (c: Context): ApiCredential => {
    const auth = c.req.header("authorization");
    if (token !== undefined && auth !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      if (m && sameSecret(m[1], token)) return "token";
    }
    const session = getCookie(c, SESSION_COOKIE);
    if (session !== undefined && sessions.valid(session)) return "session";
    return "none";
  };

  const hostCheck: MiddlewareHandler = async (c, next) => {
    if (exposure !== "unix") {
      const header = c.req.header("host");
      const host = header === undefined ? undefined : hostOfHeader(header);
      if (header !== undefined && (host === undefined || !allowed(host))) {
        return sendError(c, 403, "Host header names another server (DNS rebinding?): refused");
      }
    }
    return await next();
  };

  const originCheck: MiddlewareHandler = async (c, next) => {
    const site = c.req.header("sec-fetch-site");
    if (site !== undefined && site !== "same-origin" && site !== "none") {
      return sendError(c, 403, `cross-origin request refused (Sec-Fetch-Site: ${site})`);
    }
    const origin = c.req.header("origin");
    if (origin !== undefined && !sameOrigin(origin, c.req.header("host"))) {
      return sendError(c, 403, "cross-origin request refused (Origin is another site)");
    }
    return await next();
  };

  const authCheck: MiddlewareHandler = async (c, next) => {
    if (token === undefined || exposure === "unix" || OPEN_PATHS.has(c.req.path)) {
      return await next();
    }
    const auth = c.req.header("authorization");
    const cred = credential(c);
    if (cred === "none") {
      if (auth !== undefined) return unauthorized(c, "wrong API token");
      if (exposure === "loopback" && READ_METHODS.has(c.req.method)) return await next();
      if (READ_METHODS.has(c.req.method) && wantsPage(c)) return c.redirect("/login", 303);
      return unauthorized(
        c,
        exposure === "loopback"
          ? "this request changes the network: it needs the API token (Authorization: Bearer …)"
          : "the API token is needed (Authorization: Bearer …)",
      );
    }
    return await next();
  };

  return {
    middleware: [hostCheck, originCheck, authCheck],
    routes: token === undefined ? [] : loginRoutes(token, sessions),
    credential,
  };
}

function unauthorized(c: Context, message: string): Response {
  c.header("www-authenticate", 'Bearer realm="edgevpn"');
  return sendError(c, 401, message);
}

function wantsPage(c: Context): boolean {
  return !c.req.path.startsWith("/api/") && (c.req.header("accept") ?? "").includes("text/html");
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false; // "null" and other opaque origins
  }
  return (url.protocol === "http:" || url.protocol === "https:") &&
    url.host.toLowerCase() === host.trim().toLowerCase();
}

/**
 * `GET /login?code=…` (the one-time link), `GET /login` (a form asking for the token),
 * `POST /login` (the form), `POST /logout` and `POST /api/login-link` (a new link).
 */
function loginRoutes(token: string, sessions: ApiSessions): ApiRoute[] {
  const open = (c: Context, session: string) => {
    setCookie(c, SESSION_COOKIE, session, {
      httpOnly: true,
      sameSite: "Strict",
      path: "/",
      maxAge: SESSION_TTL_MS / 1000,
    });
    return c.redirect("/", 303);
  };
  return [
    {
      method: "GET",
      path: "/login",
      handler: (c) => {
        const code = c.req.query("code");
        if (code !== undefined) {
          const session = sessions.redeem(code);
          if (session !== undefined) return open(c, session);
          return loginPage(c, "This login link was already used or has expired.", 401);
        }
        return loginPage(c, "", 200);
      },
    },
    {
      method: "POST",
      path: "/login",
      handler: async (c) => {
        const form = new URLSearchParams(await readBodyText(c, 4096));
        const given = form.get("token")?.trim() ?? "";
        if (!sameSecret(given, token)) return loginPage(c, "Wrong API token.", 401);
        return open(c, sessions.newSession());
      },
    },
    {
      // A new one-time link for `edgevpn dashboard` (it holds the token; writes need it).
      method: "POST",
      path: "/api/login-link",
      handler: (c) => sendJson(c, { Path: `/login?code=${sessions.newLoginCode()}` }),
    },
    {
      method: "POST",
      path: "/logout",
      handler: (c) => {
        const session = getCookie(c, SESSION_COOKIE);
        if (session !== undefined) sessions.end(session);
        setCookie(c, SESSION_COOKIE, "", {
          httpOnly: true,
          sameSite: "Strict",
          path: "/",
          maxAge: 0,
        });
        return c.redirect("/login", 303);
      },
    },
  ];
}

function loginPage(c: Context, problem: string, status: 200 | 401): Response {
  c.header("cache-control", "no-store");
  return c.html(
    `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>EdgeVPN: log in</title>
<style>body{font:16px system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#1d2330}
input,button{font:inherit;padding:.5rem;width:100%;box-sizing:border-box;margin:.25rem 0}
button{background:#1f5fbf;color:#fff;border:0;border-radius:4px}.problem{color:#a0171d}</style></head>
<body><main><h1>EdgeVPN</h1>
${problem ? `<p class="problem" role="alert">${problem}</p>` : ""}
<p>Open the login link that <code>edgevpn join</code> or <code>edgevpn api</code> printed, or paste
the API token: it is in the file <code>${API_TOKEN_FILE}</code> of the node's state directory
(<code>~/.edgevpn</code> unless <code>--state-dir</code> says otherwise).</p>
<form method="post" action="/login"><label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button></form></main></body></html>`,
    status,
  );
}
