/** `edgevpn proxy`: a node serving HTTP, CONNECT and SOCKS5 on --listen, leaving through the network's egress nodes. */
import type { CommandContext } from "./context.ts";
import { formatApiAddress, parseApiListen } from "../api/listen.ts";
import { egressComponentsOf } from "../egress/mod.ts";
import { listenersConflict, parseProxyListen } from "../proxy/listen.ts";
import { createProxy } from "../proxy/mod.ts";
import { EdgeVpnError, listenErrorReason, UsageError } from "../util/errors.ts";
import { startNodeApi } from "./api_server.ts";
import { untilAborted, withMesh } from "./common.ts";

/**
 * Runs a node (no VPN, no heartbeats, as Go's proxy) with the proxy on `--listen` and, with
 * `--api`, the API on `--api-listen`, until SIGINT/SIGTERM.
 *
 * @throws {UsageError} `BAD_FLAG` for a bad address or both servers on one socket.
 * @throws {EdgeVpnError} `PROXY_LISTEN_FAILED` when the proxy cannot listen.
 * @example
 * ```ts
 * // edgevpn proxy --token $TOKEN --listen 127.0.0.1:8080
 * ```
 */
export async function runProxy(ctx: CommandContext): Promise<void> {
  const s = ctx.settings;
  if (ctx.args.length > 0) {
    throw new UsageError(
      "BAD_ARGUMENT",
      `proxy: expected no argument, got ${JSON.stringify(ctx.args[0])}`,
    );
  }
  const listen = parseProxyListen(s.proxyListen);
  if (s.proxyApi) {
    const api = parseApiListen(s.proxyApiListen);
    if (listenersConflict(listen, api)) {
      throw new UsageError(
        "BAD_FLAG",
        `--listen (${JSON.stringify(s.proxyListen)}) and --api-listen (${
          JSON.stringify(s.proxyApiListen)
        }) would bind the same address: give the API a different one`,
      );
    }
  }
  await withMesh(ctx, false, async (mesh) => {
    const stops: (() => Promise<void>)[] = [];
    try {
      const proxy = createProxy(egressComponentsOf(mesh, { logger: ctx.log }), {
        listen,
        deadIntervalMs: s.proxyDeadInterval,
        announceIntervalMs: s.proxyInterval,
      });
      try {
        await proxy.start();
      } catch (e) {
        const where = formatApiAddress({ transport: "tcp", ...listen });
        throw new EdgeVpnError(
          "PROXY_LISTEN_FAILED",
          `Cannot serve the proxy on ${where}: ${listenErrorReason(e)}`,
        );
      }
      stops.unshift(() => proxy.stop());
      const address = formatApiAddress({ transport: "tcp", ...proxy.address! });
      ctx.log.info(`proxy listening on ${address} (HTTP, CONNECT, SOCKS5)`);
      if (s.proxyApi) {
        const api = await startNodeApi(mesh, {
          listen: s.proxyApiListen,
          settings: s,
          home: ctx.home,
          logger: ctx.log,
          out: ctx.out,
          proxy: () => proxy.counters(),
        });
        stops.unshift(() => api.stop());
      }
      await untilAborted(ctx.signal);
    } finally {
      for (const stop of stops) await stop();
    }
  });
}
