/** A client of a running node's API for commands (`dns add`, …): `--api-url`, the token of `--state-dir`, one-line errors. */
import { readApiToken } from "../api/auth.ts";
import type { Settings } from "../config/options.ts";
import { expandHome } from "../config/settings.ts";
import { EdgeVpnError, errorMessage, UsageError } from "../util/errors.ts";

/** What a request gave: the status and the parsed JSON body (undefined when not JSON). */
export interface ApiReply {
  status: number;
  json: unknown;
}

/** Requests to one node's API. */
export interface ApiClient {
  /** The API's origin (`http://127.0.0.1:8080`). */
  readonly origin: string;
  /**
   * Sends a request and returns the reply of a 2xx status.
   *
   * @throws {EdgeVpnError} `API_UNREACHABLE`, `API_REFUSED` (any other status, with the API's
   * error message).
   */
  request(method: string, path: string, body?: unknown): Promise<ApiReply>;
}

/**
 * The client of the API at `--api-url`, sending the token of `--state-dir` when there is one
 * (writes need it unless the node runs with `--api-auth=false`).
 *
 * @throws {UsageError} `API_URL_INVALID`.
 * @example
 * ```ts ignore
 * const api = await apiClientOf(ctx.settings, ctx.home);
 * const { json } = await api.request("GET", "/api/dns");
 * ```
 */
export async function apiClientOf(
  settings: Settings,
  home: string | undefined,
): Promise<ApiClient> {
  let base: URL;
  try {
    base = new URL(settings.apiUrl);
    if (base.protocol !== "http:" && base.protocol !== "https:") throw new Error();
  } catch {
    throw new UsageError(
      "API_URL_INVALID",
      `--api-url: expected http://host:port, got ${JSON.stringify(settings.apiUrl)}`,
    );
  }
  const dir = expandHome(settings.stateDir, home);
  const token = await readApiToken(dir);
  const origin = base.origin;
  return {
    origin,
    async request(method, path, body) {
      const headers: Record<string, string> = {};
      if (token !== undefined) headers.authorization = `Bearer ${token}`;
      if (body !== undefined) headers["content-type"] = "application/json";
      let res: Response;
      try {
        res = await fetch(origin + path, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(10_000),
        });
      } catch (e) {
        throw new EdgeVpnError(
          "API_UNREACHABLE",
          `Cannot reach the API at ${origin}: ${
            errorMessage(e)
          } (is the node running with --api, or edgevpn api? see --api-url)`,
        );
      }
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      if (res.ok) return { status: res.status, json };
      const why = (json as { error?: unknown } | undefined)?.error ?? text.trim();
      const hint = res.status === 401 || res.status === 403
        ? token === undefined
          ? ` (no API token in ${dir}: pass the node's --state-dir)`
          : ` (the token in ${dir} is not this node's: pass its --state-dir)`
        : "";
      throw new EdgeVpnError(
        "API_REFUSED",
        `The API at ${origin} answered ${res.status} to ${method} ${path}: ${why}${hint}`,
      );
    },
  };
}
