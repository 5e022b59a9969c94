/** The network a `join` without token uses: created once in the state directory, then reused. */
import type { NetworkConfig } from "../config/network.ts";
import { generateNetworkConfig, networkConfigToYaml, parseNetworkYaml } from "../config/token.ts";
import { writeFileAtomic } from "../util/atomic_file.ts";
import { EdgeVpnError, errorMessage } from "../util/errors.ts";

/** File name of the saved network inside the state directory. */
export const NETWORK_FILE = "network.yaml";

/** The network of the state directory and whether this call created it. */
export interface StateNetwork {
  network: NetworkConfig;
  path: string;
  created: boolean;
}

/**
 * Loads `<dir>/network.yaml`, or creates a new network there (mode 0600, atomic write).
 *
 * @throws {EdgeVpnError} `STATE_UNWRITABLE` when the directory cannot be written;
 * {@link UsageError} when the saved file is not a valid network configuration.
 * @example
 * ```ts ignore
 * const { network, created } = await loadOrCreateStateNetwork("/root/.edgevpn", 360);
 * ```
 */
export async function loadOrCreateStateNetwork(
  dir: string,
  intervalSeconds: number,
): Promise<StateNetwork> {
  const path = `${dir.replace(/\/+$/, "")}/${NETWORK_FILE}`;
  try {
    return {
      network: parseNetworkYaml(await Deno.readTextFile(path), `config ${path}`),
      path,
      created: false,
    };
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const network = generateNetworkConfig(intervalSeconds);
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(path, new TextEncoder().encode(networkConfigToYaml(network)), {
      mode: 0o600,
      createNew: true,
    });
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      // Another join created it first: use theirs.
      return await loadOrCreateStateNetwork(dir, intervalSeconds);
    }
    throw new EdgeVpnError(
      "STATE_UNWRITABLE",
      `Cannot save the new network in ${path}: ${errorMessage(e)} (pass --state-dir or a --token)`,
    );
  }
  return { network, path, created: true };
}
