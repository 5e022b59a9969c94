/** What the command line hands every command runner: settings, arguments, output, log, signal. */
import type { OptionName, Settings } from "../config/options.ts";
import type { Logger } from "../util/logger.ts";

/**
 * What every command runner receives from the CLI.
 *
 * @example
 * ```ts ignore
 * export async function runStart(ctx: CommandContext): Promise<void> {
 *   ctx.log.info("starting", { args: ctx.args });
 * }
 * ```
 */
export interface CommandContext {
  settings: Settings;
  /** Positional arguments of the command. */
  args: string[];
  /** Writes text to standard output. */
  out: (text: string) => void;
  log: Logger;
  /** Aborted on SIGINT or SIGTERM. */
  signal: AbortSignal;
  home: string | undefined;
  /** Options given on the command line or through their environment variable. */
  explicit: ReadonlySet<OptionName>;
}

/**
 * A command's entry point, loaded lazily by the CLI.
 *
 * @example
 * ```ts ignore
 * const run: CommandRunner = async (ctx) => ctx.out("hello\n");
 * ```
 */
export type CommandRunner = (ctx: CommandContext) => Promise<void>;
