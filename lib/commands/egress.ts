/** `--egress` of the root command and join: this node becomes an egress node of the network. */
import type { Settings } from "../config/options.ts";
import { createEgress, type Egress, egressComponentsOf } from "../egress/mod.ts";
import type { Mesh } from "../mesh/mesh.ts";
import type { Logger } from "../util/logger.ts";

/**
 * Starts the egress node of `mesh` as `--egress`, `--egress-announce-time` and
 * `--egress-allow-private` say.
 *
 * @example
 * ```ts
 * const egress = await startEgressOf(mesh, settings, logger);
 * await egress.stop();
 * ```
 */
export async function startEgressOf(
  mesh: Mesh,
  settings: Pick<Settings, "egressAnnounceTime" | "egressAllowPrivate">,
  logger: Logger,
): Promise<Egress> {
  const egress = createEgress(egressComponentsOf(mesh, { logger }), {
    announceIntervalMs: settings.egressAnnounceTime,
    allowPrivate: settings.egressAllowPrivate,
  });
  await egress.start();
  return egress;
}
