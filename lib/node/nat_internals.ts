/**
 * Casts into libp2p 3.3 internals that NAT traversal needs and its public API lacks, each
 * guarded: when a shape is not what we expect the feature degrades and says so.
 */
import type { Multiaddr } from "@multiformats/multiaddr";

/** The address manager's calls for addresses we learn ourselves (relay reservations). */
export interface AddressBook {
  confirmObservedAddr(
    ma: Multiaddr,
    options?: { type?: "transport" | "observed"; ttl?: number },
  ): void;
  removeObservedAddr(ma: Multiaddr): void;
}

/** The components object every libp2p node keeps (not exported by libp2p's types). */
export function componentsOf(libp2p: unknown): Record<string, unknown> | undefined {
  const c = (libp2p as { components?: unknown }).components;
  return c !== null && typeof c === "object" ? c as Record<string, unknown> : undefined;
}

/**
 * The node's address manager, where addresses other than listen addresses are announced
 * (what identify and the DHT tell peers), or undefined if libp2p changed shape.
 */
export function addressBookOf(libp2p: unknown): AddressBook | undefined {
  const am = componentsOf(libp2p)?.addressManager as Partial<AddressBook> | undefined;
  if (
    typeof am?.confirmObservedAddr !== "function" || typeof am.removeObservedAddr !== "function"
  ) return undefined;
  return am as AddressBook;
}
