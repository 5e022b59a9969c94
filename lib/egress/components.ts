/** What egress nodes and the proxy need from the rest of the node, as narrow interfaces. */
import type { Ledger } from "../ledger/ledger.ts";
import type { Mesh } from "../mesh/mesh.ts";
import type { EdgeNode } from "../node/node.ts";
import type { Logger } from "../util/logger.ts";
import type { HostResolver } from "./dial.ts";

/** The node's side: serving protocols and opening streams. */
export type EgressNode = Pick<EdgeNode, "peerId" | "handle" | "unhandle" | "dialProtocol">;

/** The ledger's side: reading entries, liveness, announcing. */
export type EgressLedger = Pick<
  Ledger,
  "getKey" | "add" | "delete" | "announce" | "announceUpdate" | "currentData" | "availableNodes"
>;

/**
 * The components of an egress node or a proxy.
 *
 * @example
 * ```ts
 * const components: EgressComponents = egressComponentsOf(mesh, { logger });
 * ```
 */
export interface EgressComponents {
  node: EgressNode;
  ledger: EgressLedger;
  /** Go's admission rule for egress streams: the peer has a `users` entry. */
  isUser: (peerId: string) => boolean;
  logger?: Logger;
  /** How destination names are resolved (the system resolver by default). */
  resolve?: HostResolver;
}

/**
 * The components of egress and proxy running on `mesh`.
 *
 * @example
 * ```ts
 * const egress = createEgress(egressComponentsOf(mesh), options);
 * ```
 */
export function egressComponentsOf(
  mesh: Mesh,
  extra: { logger?: Logger; resolve?: HostResolver } = {},
): EgressComponents {
  return {
    node: mesh.node,
    ledger: mesh.ledger,
    isUser: (peer) => mesh.isUser(peer),
    ...extra,
  };
}
