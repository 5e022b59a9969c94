/** What services and file sharing need from the rest of the node, as narrow interfaces. */
import type { Clock } from "../util/clock.ts";
import type { Ledger } from "../ledger/ledger.ts";
import type { Mesh } from "../mesh/mesh.ts";
import type { EdgeNode } from "../node/node.ts";
import type { Logger } from "../util/logger.ts";

/** The node's side: serving protocols and opening streams. */
export type ServiceNode = Pick<EdgeNode, "peerId" | "handle" | "unhandle" | "dialProtocol">;

/** The ledger's side: reading and announcing entries, change events. */
export type ServiceLedger = Pick<
  Ledger,
  "getKey" | "add" | "announce" | "addEventListener" | "removeEventListener"
>;

/**
 * The components of services and files: the node, the ledger, Go's admission rule and a
 * clock.
 *
 * @example
 * ```ts ignore
 * const components: ServiceComponents = serviceComponentsOf(mesh, { logger });
 * ```
 */
export interface ServiceComponents {
  node: ServiceNode;
  ledger: ServiceLedger;
  /** Go's admission rule for service and file streams: the peer has a `users` entry. */
  isUser: (peerId: string) => boolean;
  clock?: Clock;
  logger?: Logger;
}

/**
 * The components of services and files running on `mesh`.
 *
 * @example
 * ```ts ignore
 * const exposer = createServiceExposer(serviceComponentsOf(mesh), options);
 * ```
 */
export function serviceComponentsOf(
  mesh: Mesh,
  extra: { clock?: Clock; logger?: Logger } = {},
): ServiceComponents {
  return {
    node: mesh.node,
    ledger: mesh.ledger,
    isUser: (peer) => mesh.isUser(peer),
    ...extra,
  };
}
