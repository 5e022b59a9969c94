/** `edgevpn api`: a network node serving the HTTP API. */
import type { CommandContext } from "./context.ts";
import { createMesh } from "../mesh/mesh.ts";
import { startNodeApi } from "./api_server.ts";
import { meshOptionsOf, networkOf, untilAborted } from "./common.ts";

/**
 * Runs a node with the API until SIGINT/SIGTERM; heartbeats only with `--enable-healthchecks`.
 *
 * @example
 * ```ts
 * // edgevpn api --token $TOKEN --listen 127.0.0.1:8080
 * ```
 */
export async function runApi(ctx: CommandContext): Promise<void> {
  const s = ctx.settings;
  const network = await networkOf(s, ctx.home);
  const mesh = await createMesh(
    meshOptionsOf(s, network, { home: ctx.home, logger: ctx.log, alive: s.enableHealthchecks }),
  );
  await mesh.start();
  ctx.log.info(`Node ID: ${mesh.peerId}`);
  ctx.log.info(`Node Addresses: ${mesh.node.multiaddrs().join(" ")}`);
  try {
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
  } finally {
    ctx.log.info("stopping");
    await mesh.stop();
  }
}
