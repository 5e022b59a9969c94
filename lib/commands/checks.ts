/** Checks of option values before a command starts its node, so that bad values fail up front. */
import { type OptionName, OPTIONS, type OptionScope, type Settings } from "../config/options.ts";
import { UsageError } from "../util/errors.ts";

/** Options in seconds that must be above 0: a zero interval would spin or stop a loop. */
const POSITIVE_SECONDS = [
  "discoveryInterval",
  "ledgerAnnounceInterval",
  "ledgerSynchronizationInterval",
  "alivenessHealthcheckInterval",
  "alivenessHealthcheckScrubInterval",
  "alivenessHealthcheckMaxInterval",
] as const satisfies readonly OptionName[];

/**
 * Refuses values that would only fail once the node runs, up front and in one line: intervals of
 * 0 seconds, a `--ledger-state` that is a file, `--blacklist` addresses that are not CIDRs, and
 * API listen addresses that do not parse. Only options of `scopes` are checked.
 *
 * @throws {UsageError} `BAD_FLAG` naming the flag, what was expected and what was given.
 * @example
 * ```ts ignore
 * await checkValues(settings, ["common", "api"]);
 * ```
 */
export async function checkValues(
  settings: Settings,
  scopes: readonly OptionScope[],
): Promise<void> {
  const bad = (flag: string, expected: string, got: unknown) =>
    new UsageError("BAD_FLAG", `--${flag}: expected ${expected}, got ${JSON.stringify(got)}`);
  if (!scopes.includes("common")) return;
  for (const name of POSITIVE_SECONDS) {
    if (settings[name] <= 0) throw bad(OPTIONS[name].flag, "a number of seconds above 0", "0");
  }
  if (settings.ledgerState !== "") {
    const info = await Deno.stat(settings.ledgerState).catch(() => undefined);
    if (info && !info.isDirectory) {
      throw bad("ledger-state", "a directory (it is created if missing)", settings.ledgerState);
    }
  }
  const { parseCidr } = await import("../net/ip.ts");
  for (const entry of settings.blacklist) {
    const text = entry.trim();
    // As the connection gater reads it: address-like entries are CIDRs, the rest peer IDs.
    const addressLike = /^[0-9a-fA-F:.]+(\/\d+)?$/.test(text) &&
      (text.includes(".") || text.includes(":"));
    if (addressLike && parseCidr(text, { bareAddress: true }) === null) {
      throw bad("blacklist", "CIDRs (10.0.0.0/8), addresses or peer IDs", text);
    }
  }
  const { parseApiListen } = await import("../api/listen.ts");
  if (scopes.includes("api")) parseApiListen(settings.listen);
  if (scopes.includes("vpn") && settings.api) parseApiListen(settings.apiListen);
}
