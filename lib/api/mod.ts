/** The EdgeVPN HTTP API (Go `api/api.go`): Hono app, routes, listener and server. */

export * from "./app.ts";
export * from "./auth.ts";
export * from "./conn_guard.ts";
export * from "./http_framer.ts";
export * from "./components.ts";
export * from "./dns_types.ts";
export * from "./errors.ts";
export * from "./json.ts";
export * from "./listen.ts";
export * from "./route.ts";
export * from "./routes_dns.ts";
export * from "./routes_ledger.ts";
export * from "./routes_network.ts";
export * from "./server.ts";
