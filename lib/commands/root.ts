/** The root command: `-g` prints a new network configuration; otherwise it joins, as `join`. */
import type { CommandContext } from "./context.ts";
import { encodeToken, generateNetworkConfig, networkConfigToYaml } from "../config/token.ts";
import { UsageError } from "../util/errors.ts";

/**
 * Runs the root command.
 *
 * @example
 * ```ts
 * // edgevpn -g -b  → prints a token
 * ```
 */
export async function runRoot(ctx: CommandContext): Promise<void> {
  const s = ctx.settings;
  if (s.generate) {
    const config = generateNetworkConfig(s.keyOtpInterval);
    ctx.out(s.base64 ? encodeToken(config) + "\n" : networkConfigToYaml(config) + "\n");
    return;
  }
  if (s.base64) throw new UsageError("BAD_FLAG", "-b only makes sense with -g");
  const { runJoin } = await import("./join.ts");
  await runJoin(ctx);
}
