/** `edgevpn api`: a network node serving the HTTP API. */
import type { CommandContext } from "./context.ts";
import { startNodeApi } from "./api_server.ts";
import { untilAborted, withMesh } from "./common.ts";

/**
 * Runs a node with the API until SIGINT/SIGTERM; heartbeats only with `--enable-healthchecks`.
 *
 * @example
 * ```ts
 * // edgevpn api --token $TOKEN --listen 127.0.0.1:8080
 * ```
 */
export function runApi(ctx: CommandContext): Promise<void> {
  const s = ctx.settings;
  return withMesh(ctx, s.enableHealthchecks, async (mesh) => {
    const api = await startNodeApi(mesh, {
      listen: s.listen,
      settings: s,
      home: ctx.home,
      logger: ctx.log,
      out: ctx.out,
    });
    try {
      await untilAborted(ctx.signal);
    } finally {
      await api.stop();
    }
  });
}
