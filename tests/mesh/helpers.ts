/** Test support for meshes: started loopback meshes with short ledger and heartbeat rounds. */
import type { NetworkConfig } from "../../lib/config/network.ts";
import { generateNetworkConfig } from "../../lib/config/token.ts";
import type { OwnershipMode } from "../../lib/ledger/policy.ts";
import { createMesh, type Mesh } from "../../lib/mesh/mesh.ts";
import type { TrustZoneOptions } from "../../lib/trustzone/trustzone.ts";
import { waitFor } from "../node/helpers.ts";

/** Options of {@link startLoopbackMesh}. */
export interface LoopbackMeshOptions {
  bootstrap?: string[];
  mode?: OwnershipMode;
  /** Ledger sync interval (default 500 ms). */
  syncIntervalMs?: number;
  /** Heartbeat interval (default 1 s). */
  aliveIntervalMs?: number;
  /** Run the trust zone. */
  trustZone?: TrustZoneOptions;
}

/**
 * Starts a mesh on loopback: no mDNS, no DHT, only the given bootstrap peers; ownership TTL
 * 60 s.
 *
 * @example
 * ```ts
 * const mesh = await startLoopbackMesh(network, { bootstrap: [seed] });
 * ```
 */
export async function startLoopbackMesh(
  network: NetworkConfig,
  options: LoopbackMeshOptions = {},
): Promise<Mesh> {
  const mesh = await createMesh({
    node: {
      network,
      listenMaddrs: ["/ip4/127.0.0.1/tcp/0"],
      bootstrapPeers: options.bootstrap ?? [],
      mdns: false,
      dht: false,
    },
    ledger: {
      mode: options.mode ?? "enforce",
      ownershipTtlMs: 60_000,
      syncIntervalMs: options.syncIntervalMs ?? 500,
    },
    alive: {
      intervalMs: options.aliveIntervalMs ?? 1_000,
      scrubIntervalMs: 600_000,
      maxIntervalMs: 900_000,
    },
    trustZone: options.trustZone,
  });
  await mesh.start();
  return mesh;
}

/**
 * Two loopback meshes of a new network that see each other over gossip (`b` bootstraps from
 * `a`); `stop()` stops both.
 *
 * @example
 * ```ts ignore
 * const { a, b, stop } = await meshPair();
 * await stop();
 * ```
 */
export async function meshPair(): Promise<{ a: Mesh; b: Mesh; stop: () => Promise<void> }> {
  const network = generateNetworkConfig();
  const a = await startLoopbackMesh(network);
  const b = await startLoopbackMesh(network, { bootstrap: a.node.multiaddrs() });
  await waitFor(() => a.node.topicPeers().length > 0 && b.node.topicPeers().length > 0, "gossip");
  return { a, b, stop: async () => void await Promise.allSettled([b.stop(), a.stop()]) };
}
