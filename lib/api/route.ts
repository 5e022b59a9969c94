/** Route table types, settings and the Go-compatible JSON responses every API route uses. */

import type { Context } from "hono";
import { goMarshal } from "../ledger/json.ts";
import type { Logger } from "../util/logger.ts";
import type { ApiComponents } from "./components.ts";
import { type ApiErrorStatus, ApiRequestError } from "./errors.ts";
import { goIndent } from "./json.ts";

/** HTTP methods API routes are declared with (HEAD is answered from GET). */
export type ApiMethod = "GET" | "POST" | "PUT" | "DELETE";

/**
 * One route: features (the API, a dashboard, Prometheus metrics) contribute arrays of these.
 *
 * @example
 * ```ts
 * const ping: ApiRoute = { method: "GET", path: "/api/ping", handler: (c) => sendJson(c, "pong") };
 * ```
 */
export interface ApiRoute {
  method: ApiMethod;
  /** Hono path pattern, e.g. `/api/ledger/:bucket`. */
  path: string;
  handler: (c: Context) => Response | Promise<Response>;
}

/** Tunables of the API; every field has a default in {@link DEFAULT_API_SETTINGS}. */
export interface ApiSettings {
  /** Tick of the ledger write/delete jobs the API starts (Go: 5 s). */
  announceIntervalMs: number;
  /** Lifetime of those jobs (Go: 20 s). */
  announceTimeoutMs: number;
  /** Largest request body accepted. */
  maxBodyBytes: number;
  /** Longest bucket name, key or DNS regex, in UTF-8 bytes. */
  maxNameBytes: number;
}

/**
 * Defaults of {@link ApiSettings}: Go's 5 s / 20 s write jobs, 1 MiB bodies, 1 KiB names.
 *
 * @example
 * ```ts
 * DEFAULT_API_SETTINGS.maxBodyBytes; // 1048576
 * ```
 */
export const DEFAULT_API_SETTINGS: Readonly<ApiSettings> = {
  announceIntervalMs: 5_000,
  announceTimeoutMs: 20_000,
  maxBodyBytes: 1 << 20,
  maxNameBytes: 1024,
};

/** What route factories get: the components (logger resolved) and the settings. */
export interface ApiRouteContext {
  components: ApiComponents & { logger: Logger };
  settings: Readonly<ApiSettings>;
}

/**
 * Answers compact JSON text as echo's `c.JSON` does: `application/json`, a trailing newline,
 * two-space indentation when the query has `pretty`.
 *
 * @example
 * ```ts ignore
 * app.get("/api/raw", (c) => sendJsonText(c, '{"a":1}'));
 * ```
 */
export function sendJsonText(
  c: Context,
  json: string,
  status: 200 | ApiErrorStatus | 500 = 200,
): Response {
  const pretty = new URL(c.req.url).searchParams.has("pretty");
  const body = (pretty ? goIndent(json, "  ") : json) + "\n";
  return c.body(body, status, { "content-type": "application/json" });
}

/**
 * Answers `value` encoded as Go's `json.Marshal` (plain objects keep their field order, `Map`s
 * are sorted like Go maps).
 *
 * @example
 * ```ts ignore
 * app.get("/api/state", (c) => sendJson(c, { State: "Announcing" }));
 * ```
 */
export function sendJson(c: Context, value: unknown): Response {
  return sendJsonText(c, goMarshal(value));
}

/**
 * Answers `{"error": message}` with `status`.
 *
 * @example
 * ```ts ignore
 * app.notFound((c) => sendError(c, 404, "no route for GET /x"));
 * ```
 */
export function sendError(
  c: Context,
  status: ApiErrorStatus | 500,
  message: string,
): Response {
  // `message` is the key Go EdgeVPN (echo) uses; `error` is ours.
  return sendJsonText(c, goMarshal({ error: message, message }), status);
}

const utf8 = new TextEncoder();

/**
 * A path parameter naming a ledger bucket or key, checked for length in UTF-8 bytes.
 *
 * @throws {ApiRequestError} 400 `NAME_INVALID` when empty or longer than `maxNameBytes`.
 * @example
 * ```ts ignore
 * const bucket = nameParam(c, "bucket", 1024);
 * ```
 */
export function nameParam(c: Context, name: string, maxBytes: number): string {
  return checkName(name, pathParam(c, name), maxBytes);
}

/**
 * A decoded path parameter ("" when the route has none of that name).
 *
 * @example
 * ```ts ignore
 * const peer = pathParam(c, "peer");
 * ```
 */
export function pathParam(c: Context, name: string): string {
  return c.req.param(name) ?? "";
}

/**
 * Checks a bucket name, key or regex: 1 to `maxBytes` UTF-8 bytes.
 *
 * @throws {ApiRequestError} 400 `NAME_INVALID`.
 * @example
 * ```ts
 * checkName("key", "10.1.0.1", 1024); // "10.1.0.1"
 * ```
 */
export function checkName(what: string, value: string, maxBytes: number): string {
  const bytes = utf8.encode(value).length;
  if (bytes === 0 || bytes > maxBytes) {
    throw new ApiRequestError(
      400,
      "NAME_INVALID",
      `${what}: expected 1 to ${maxBytes} bytes, got ${bytes}`,
    );
  }
  return value;
}

/**
 * Quotes untrusted text for an error message, cut to 64 characters.
 *
 * @example
 * ```ts
 * quoteInput("x".repeat(100)).length; // 68
 * ```
 */
export function quoteInput(text: string): string {
  return JSON.stringify(text.length > 64 ? text.slice(0, 64) + "…" : text);
}

/**
 * The error for a body over `maxBytes`.
 *
 * @example
 * ```ts
 * bodyTooLarge(1024).status; // 413
 * ```
 */
export function bodyTooLarge(maxBytes: number): ApiRequestError {
  return new ApiRequestError(
    413,
    "BODY_TOO_LARGE",
    `request body too large: the limit is ${maxBytes} bytes`,
  );
}

/**
 * Reads the request body as UTF-8 text (invalid bytes become U+FFFD, as Go's decoder reads
 * them), stopping as soon as it exceeds `maxBytes`.
 *
 * @throws {ApiRequestError} 413 `BODY_TOO_LARGE`.
 * @example
 * ```ts ignore
 * const text = await readBodyText(c, 1 << 20);
 * ```
 */
export async function readBodyText(c: Context, maxBytes: number): Promise<string> {
  const body = c.req.raw.body;
  if (!body) return "";
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let size = 0;
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw bodyTooLarge(maxBytes);
    }
    text += decoder.decode(value, { stream: true });
  }
  return text + decoder.decode();
}

/** The answer of every ledger write the API starts (Go `{"State":"Announcing"}`). */
export const ANNOUNCING = { State: "Announcing" } as const;
