/** Turns resolved CLI settings into the options of the mesh, shared by every command. */
import { requireNetworkConfig } from "../config/load.ts";
import type { NetworkConfig } from "../config/network.ts";
import type { Settings } from "../config/options.ts";
import { expandHome } from "../config/settings.ts";
import { createMesh, type Mesh, type MeshOptions } from "../mesh/mesh.ts";
import type { Logger } from "../util/logger.ts";
import { natOptionsOf } from "./nat.ts";
import { trustZoneOptionsOf } from "./trustzone.ts";
import type { CommandContext } from "./context.ts";

/**
 * Loads the network of a run from `--config`/`--token`.
 *
 * @example
 * ```ts ignore
 * const network = await networkOf(settings, Deno.env.get("HOME"));
 * ```
 */
export async function networkOf(
  settings: Settings,
  home: string | undefined,
): Promise<NetworkConfig> {
  return await requireNetworkConfig({
    token: settings.token,
    configPath: settings.config === "" ? "" : expandHome(settings.config, home),
  });
}

/**
 * Options of the mesh for a command; `alive` says whether the command runs heartbeats.
 *
 * @example
 * ```ts ignore
 * const options = meshOptionsOf(settings, network, { home, logger, alive: true });
 * ```
 */
export function meshOptionsOf(
  settings: Settings,
  network: NetworkConfig,
  context: { home: string | undefined; logger: Logger; alive: boolean },
): MeshOptions {
  const mode = settings.ownership;
  const nonEmpty = (list: string[]) => list.length > 0 ? list : undefined;
  return {
    node: {
      network,
      privkeyCache: settings.privkeyCache,
      privkeyCacheDir: expandHome(settings.privkeyCacheDir, context.home),
      listenMaddrs: nonEmpty(settings.listenMaddrs),
      announceMaddrs: nonEmpty(settings.dhtAnnounceMaddrs),
      bootstrapPeers: nonEmpty(settings.discoveryBootstrapPeers),
      dht: settings.dht,
      mdns: settings.mdns,
      discoveryIntervalMs: settings.discoveryInterval,
      blacklist: settings.blacklist,
      nat: natOptionsOf(settings, context.logger),
    },
    ledger: {
      mode,
      ownershipTtlMs: settings.ownershipTtl,
      stateDir: settings.ledgerState === ""
        ? undefined
        : expandHome(settings.ledgerState, context.home),
      syncIntervalMs: settings.ledgerSynchronizationInterval,
    },
    alive: context.alive
      ? {
        intervalMs: settings.alivenessHealthcheckInterval,
        scrubIntervalMs: settings.alivenessHealthcheckScrubInterval,
        maxIntervalMs: settings.alivenessHealthcheckMaxInterval,
      }
      : undefined,
    trustZone: trustZoneOptionsOf(settings),
    logger: context.logger,
  };
}

/**
 * Starts the command's node (heartbeats when `alive`), logs its ID and addresses as Go does,
 * runs `body` with it, then logs "stopping" and stops it.
 *
 * @example
 * ```ts ignore
 * await withMesh(ctx, false, () => untilAborted(ctx.signal));
 * ```
 */
export async function withMesh<T>(
  ctx: Pick<CommandContext, "settings" | "home" | "log">,
  alive: boolean,
  body: (mesh: Mesh) => Promise<T>,
): Promise<T> {
  const network = await networkOf(ctx.settings, ctx.home);
  const mesh = await createMesh(
    meshOptionsOf(ctx.settings, network, { home: ctx.home, logger: ctx.log, alive }),
  );
  await mesh.start();
  ctx.log.info(`Node ID: ${mesh.peerId}`);
  ctx.log.info(`Node Addresses: ${mesh.node.multiaddrs().join(" ")}`);
  try {
    return await body(mesh);
  } finally {
    ctx.log.info("stopping");
    await mesh.stop();
  }
}

/**
 * Resolves when `signal` aborts (SIGINT/SIGTERM from the CLI).
 *
 * @example
 * ```ts ignore
 * await untilAborted(ctx.signal);
 * ```
 */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true })
  );
}

/**
 * Flattens nested counters into `a.b.c` keys.
 *
 * @example
 * ```ts
 * flattenCounters({ a: { b: 1 } }); // { "a.b": 1 }
 * ```
 */
export function flattenCounters(
  value: object,
  prefix = "",
  out: Record<string, number> = {},
): Record<string, number> {
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === "number") out[prefix + k] = v;
    else if (v && typeof v === "object") flattenCounters(v, `${prefix}${k}.`, out);
  }
  return out;
}
