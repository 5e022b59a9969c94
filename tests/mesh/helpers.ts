/** Test support for meshes: a started loopback mesh with short ledger and heartbeat rounds. */
import type { NetworkConfig } from "../../lib/config/network.ts";
import type { OwnershipMode } from "../../lib/ledger/policy.ts";
import { createMesh, type Mesh } from "../../lib/mesh/mesh.ts";
import type { TrustZoneOptions } from "../../lib/trustzone/trustzone.ts";

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
