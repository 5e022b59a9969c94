/** `edgevpn dashboard`: asks a running node for a new one-time login link, with the API token of the state directory. */
import type { CommandContext } from "./context.ts";
import { readApiToken } from "../api/auth.ts";
import { expandHome } from "../config/settings.ts";
import { EdgeVpnError, errorMessage, UsageError } from "../util/errors.ts";

/**
 * Prints `Dashboard (one-time login link): <url>` for the node whose API is at `--api-url`.
 *
 * @throws {UsageError} `API_URL_INVALID`, `API_TOKEN_MISSING`; {@link EdgeVpnError}
 * `API_UNREACHABLE`, `API_REFUSED`.
 * @example
 * ```ts
 * // edgevpn dashboard --api-url http://127.0.0.1:8080
 * ```
 */
export async function runDashboard(ctx: CommandContext): Promise<void> {
  const s = ctx.settings;
  let base: URL;
  try {
    base = new URL(s.apiUrl);
    if (base.protocol !== "http:" && base.protocol !== "https:") throw new Error();
  } catch {
    throw new UsageError(
      "API_URL_INVALID",
      `--api-url: expected http://host:port, got ${JSON.stringify(s.apiUrl)}`,
    );
  }
  const dir = expandHome(s.stateDir, ctx.home);
  const token = await readApiToken(dir);
  if (token === undefined) {
    throw new UsageError(
      "API_TOKEN_MISSING",
      `No API token in ${dir}: start the node with --api (or edgevpn api) first, or pass its --state-dir`,
    );
  }
  const origin = base.origin;
  let res: Response;
  try {
    res = await fetch(`${origin}/api/login-link`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(10_000),
    });
  } catch (e) {
    throw new EdgeVpnError(
      "API_UNREACHABLE",
      `Cannot reach the API at ${origin}: ${errorMessage(e)}`,
    );
  }
  const text = await res.text();
  if (!res.ok) {
    let why = text.trim();
    try {
      why = JSON.parse(text).error ?? why;
    } catch { /* not JSON */ }
    throw new EdgeVpnError(
      "API_REFUSED",
      res.status === 404
        ? `The API at ${origin} has no login (started with --api-auth=false?): open ${origin}/`
        : `The API at ${origin} answered ${res.status}: ${why}`,
    );
  }
  const path = JSON.parse(text).Path;
  if (typeof path !== "string" || !path.startsWith("/login?code=")) {
    throw new EdgeVpnError("API_REFUSED", `The API at ${origin} sent no login link`);
  }
  ctx.out(`Dashboard (one-time login link): ${origin}${path}\n`);
}
