/** The API as a Hono app: guards, the route table, 404/405 and an error handler that never leaks internals. */

import { type Context, Hono, type MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { EdgeVpnError, errorMessage, InputError } from "../util/errors.ts";
import { LedgerLimitError } from "../ledger/limits.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import type { ApiComponents } from "./components.ts";
import { ApiRequestError } from "./errors.ts";
import {
  type ApiRoute,
  type ApiRouteContext,
  type ApiSettings,
  bodyTooLarge,
  DEFAULT_API_SETTINGS,
  quoteInput,
  sendError,
} from "./route.ts";
import { dnsRoutes } from "./routes_dns.ts";
import { ledgerRoutes } from "./routes_ledger.ts";
import { networkRoutes } from "./routes_network.ts";

/** Options of {@link createApiApp}. */
export interface ApiAppOptions extends Partial<ApiSettings> {
  /**
   * Middleware run before every route, in order, after the built-in guards (path decoding,
   * body limit): where authentication goes.
   */
  middleware?: MiddlewareHandler[];
  /** Routes served next to the API's (a dashboard, Prometheus metrics, …). */
  routes?: ApiRoute[];
}

/**
 * The routes of the EdgeVPN API (Go `api/api.go`) for these components.
 *
 * @example
 * ```ts ignore
 * for (const r of apiRoutes({ components, settings: DEFAULT_API_SETTINGS })) console.log(r.method, r.path);
 * ```
 */
export function apiRoutes(ctx: ApiRouteContext): ApiRoute[] {
  return [...networkRoutes(ctx), ...ledgerRoutes(ctx), ...dnsRoutes(ctx)];
}

/**
 * Builds the API app. Serve it with {@link serveApi} (or any `fetch`-style server).
 *
 * Every failure is answered as JSON `{"error": "…"}`: undecodable paths and bad names 400,
 * unknown routes 404, known paths with another method 405, bodies over `maxBodyBytes` 413;
 * an unexpected exception is logged and answered 500 without details.
 *
 * @example
 * ```ts ignore
 * const app = createApiApp({ ledger, node: view, logger });
 * const res = await app.request("/api/summary");
 * ```
 */
export function createApiApp(components: ApiComponents, options: ApiAppOptions = {}): Hono {
  const settings: ApiSettings = {
    announceIntervalMs: options.announceIntervalMs ?? DEFAULT_API_SETTINGS.announceIntervalMs,
    announceTimeoutMs: options.announceTimeoutMs ?? DEFAULT_API_SETTINGS.announceTimeoutMs,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_API_SETTINGS.maxBodyBytes,
    maxNameBytes: options.maxNameBytes ?? DEFAULT_API_SETTINGS.maxNameBytes,
  };
  const logger = (components.logger ?? silentLogger).child("api");
  const ctx: ApiRouteContext = { components: { ...components, logger }, settings };
  const routes = [...apiRoutes(ctx), ...(options.routes ?? [])];

  const app = new Hono();
  app.onError((err, c) => answerError(err, c, logger));
  app.notFound((c) => sendError(c, 404, `no route for ${c.req.method} ${pathOf(c)}`));
  app.use(decodablePath);
  app.use(declaredBodyLimit(settings.maxBodyBytes));
  for (const m of options.middleware ?? []) app.use(m);
  for (const r of routes) app.on(r.method, r.path, r.handler);

  // A known path asked with another method: 405 with Allow, as echo answers.
  const methods = new Map<string, Set<string>>();
  for (const r of routes) methods.set(r.path, (methods.get(r.path) ?? new Set()).add(r.method));
  for (const [path, allowed] of methods) {
    if (allowed.has("GET")) allowed.add("HEAD");
    const allow = [...allowed].join(", ");
    app.all(path, (c) => {
      c.header("allow", allow);
      return sendError(c, 405, `method ${c.req.method} not allowed on ${pathOf(c)}: use ${allow}`);
    });
  }
  return app;
}

function pathOf(c: Context): string {
  return quoteInput(new URL(c.req.url).pathname);
}

/** Rejects paths whose segments are not valid percent-encoded UTF-8 (Hono would pass them on raw). */
const decodablePath: MiddlewareHandler = async (c, next) => {
  for (const segment of new URL(c.req.url).pathname.split("/")) {
    try {
      decodeURIComponent(segment);
    } catch {
      throw new ApiRequestError(
        400,
        "PATH_INVALID",
        `Cannot decode path segment ${
          quoteInput(segment)
        }: malformed percent-encoding or invalid UTF-8`,
      );
    }
  }
  await next();
};

/**
 * Refuses a declared Content-Length over the limit before anything reads the body; bodies
 * without one are capped while read (`readBodyText`). Unlike hono/body-limit this never
 * clones the request (which would make Deno warn about request.signal).
 */
function declaredBodyLimit(maxBytes: number): MiddlewareHandler {
  return async (c, next) => {
    const declared = c.req.header("content-length");
    if (declared !== undefined && !(Number(declared) <= maxBytes)) throw bodyTooLarge(maxBytes);
    await next();
  };
}

function answerError(err: Error, c: Context, logger: Logger): Response {
  if (err instanceof ApiRequestError) return sendError(c, err.status, err.message);
  if (err instanceof HTTPException && err.status >= 400 && err.status < 500) {
    return sendError(c, err.status === 413 ? 413 : 400, err.message || "bad request");
  }
  if (err instanceof InputError) return sendError(c, 400, err.message);
  // A write beyond the ledger's size limits (quota, gossip message size).
  if (err instanceof LedgerLimitError) return sendError(c, 413, err.message);
  if (err instanceof EdgeVpnError && err.code === "LEDGER_STOPPED") {
    return sendError(c, 503, "the ledger is stopped");
  }
  logger.error("request failed", {
    method: c.req.method,
    path: new URL(c.req.url).pathname,
    error: errorMessage(err),
    code: err instanceof EdgeVpnError ? err.code : undefined,
  });
  return sendError(c, 500, "internal error");
}
