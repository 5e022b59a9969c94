/** `edgevpn start`: a network node (discovery, gossip, ledger) without the VPN. */
import type { CommandContext } from "./context.ts";
import { untilAborted, withMesh } from "./common.ts";

/**
 * Runs a node until SIGINT/SIGTERM, then stops it cleanly.
 *
 * @example
 * ```ts
 * // edgevpn start --token $TOKEN
 * ```
 */
export function runStart(ctx: CommandContext): Promise<void> {
  return withMesh(ctx, false, () => untilAborted(ctx.signal));
}
