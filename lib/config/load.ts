/** Finds the network configuration of a run: `--config` file or `--token`, as Go does. */
import { UsageError } from "../util/errors.ts";
import type { NetworkConfig } from "./network.ts";
import { decodeToken, MAX_TOKEN_BYTES, parseNetworkYaml } from "./token.ts";

/**
 * Loads the network configuration: the `--config` YAML file when given (it wins completely, as
 * in Go), else the `--token`; undefined when neither is set.
 *
 * @throws {UsageError} for an unreadable or invalid file, or an invalid token.
 * @example
 * ```ts ignore
 * const config = await loadNetworkConfig({ token: "", configPath: "/etc/edgevpn/config.yaml" });
 * ```
 */
export async function loadNetworkConfig(
  source: { token: string; configPath: string },
): Promise<NetworkConfig | undefined> {
  if (source.configPath !== "") {
    const path = source.configPath;
    let text: string;
    try {
      const info = await Deno.stat(path);
      if (!info.isFile) {
        throw new UsageError("CONFIG_UNREADABLE", `Cannot read config ${path}: not a regular file`);
      }
      if (info.size > MAX_TOKEN_BYTES) {
        throw new UsageError(
          "CONFIG_INVALID",
          `Cannot read config ${path}: expected at most ${MAX_TOKEN_BYTES} bytes, got ${info.size}`,
        );
      }
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (e instanceof UsageError) throw e;
      const why = e instanceof Deno.errors.NotFound
        ? "no such file"
        : e instanceof Deno.errors.PermissionDenied
        ? "permission denied"
        : e instanceof TypeError
        ? "not UTF-8 text"
        : (e as Error).message;
      throw new UsageError("CONFIG_UNREADABLE", `Cannot read config ${path}: ${why}`);
    }
    return parseNetworkYaml(text, `config ${path}`);
  }
  if (source.token !== "") return decodeToken(source.token);
  return undefined;
}

/**
 * Like {@link loadNetworkConfig} but a missing configuration is an error, worded as Go's.
 *
 * @example
 * ```ts ignore
 * await requireNetworkConfig({ token: "", configPath: "" }); // throws UsageError
 * ```
 */
export async function requireNetworkConfig(
  source: { token: string; configPath: string },
): Promise<NetworkConfig> {
  const config = await loadNetworkConfig(source);
  if (!config) {
    throw new UsageError(
      "NO_NETWORK",
      "EDGEVPNCONFIG or EDGEVPNTOKEN not supplied: pass --token or --config (create a network with: edgevpn -g -b)",
    );
  }
  return config;
}
