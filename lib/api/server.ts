/** The API server: the Hono app of the API served on the configured listener, with start()/stop(). */

import type { Hono } from "hono";
import { silentLogger } from "../util/logger.ts";
import { type ApiAppOptions, createApiApp } from "./app.ts";
import type { ApiComponents } from "./components.ts";
import { type ApiAddress, type ApiListener, serveApi, type ServeApiOptions } from "./listen.ts";

/** Options of {@link createApiServer}: the app's and the listener's. */
export interface ApiServerOptions extends ApiAppOptions, Omit<ServeApiOptions, "logger"> {}

/** A startable, stoppable API server. */
export interface ApiServer {
  /** The app; routes are fixed once it serves its first request. */
  readonly app: Hono;
  /** Where it listens, once started. */
  readonly address: ApiAddress | undefined;
  /** Binds the listener; resolves once requests are accepted. Idempotent. */
  start(): Promise<void>;
  /** Stops accepting, finishes in-flight requests, removes a unix socket. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Creates the EdgeVPN API server (Go `api.API`).
 *
 * Ledger writes it starts (PUT, DELETE, POST /api/dns) are ledger jobs: they run to completion
 * or timeout after `stop()`, and `ledger.stop()` ends them.
 *
 * @throws from `start()`: {@link ApiListenError} when it cannot listen, UsageError
 *   `API_LISTEN_INVALID` for a bad `listen`.
 * @example
 * ```ts ignore
 * const api = createApiServer({ ledger, node: view, logger }, { listen: "127.0.0.1:8080" });
 * await api.start();
 * await api.stop();
 * ```
 */
export function createApiServer(
  components: ApiComponents,
  options: ApiServerOptions = {},
): ApiServer {
  const app = createApiApp(components, options);
  const logger = (components.logger ?? silentLogger).child("api");
  let listener: ApiListener | undefined;
  let starting: Promise<void> | undefined;
  return {
    app,
    get address() {
      return listener?.address;
    },
    start() {
      starting ??= serveApi(app.fetch, {
        listen: options.listen,
        unixSocketMode: options.unixSocketMode,
        logger,
      }).then((l) => {
        listener = l;
      }, (e) => {
        starting = undefined;
        throw e;
      });
      return starting;
    },
    async stop() {
      const pending = starting;
      if (!pending) return;
      await pending.catch(() => {});
      starting = undefined;
      const l = listener;
      listener = undefined;
      await l?.close();
    },
  };
}
