/** `edgevpn start`: a network node (discovery, gossip, ledger) without the VPN. */
import type { CommandContext } from "./context.ts";
import { createMesh } from "../mesh/mesh.ts";
import { meshOptionsOf, networkOf, untilAborted } from "./common.ts";

/**
 * Runs a node until SIGINT/SIGTERM, then stops it cleanly.
 *
 * @example
 * ```ts
 * // edgevpn start --token $TOKEN
 * ```
 */
export async function runStart(ctx: CommandContext): Promise<void> {
  const network = await networkOf(ctx.settings, ctx.home);
  const mesh = await createMesh(
    meshOptionsOf(ctx.settings, network, { home: ctx.home, logger: ctx.log, alive: false }),
  );
  await mesh.start();
  ctx.log.info(`Node ID: ${mesh.peerId}`);
  ctx.log.info(`Node Addresses: ${mesh.node.multiaddrs().join(" ")}`);
  try {
    await untilAborted(ctx.signal);
  } finally {
    ctx.log.info("stopping");
    await mesh.stop();
  }
}
