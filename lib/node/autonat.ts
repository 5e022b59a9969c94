/** Our addresses announced as Go announces them, and AutoNAT v1 (Go `--natservice`) by its effects. */
import type { Libp2p } from "@libp2p/interface";
import { isPrivate } from "@libp2p/utils";
import type { Multiaddr } from "@multiformats/multiaddr";
import {
  addressBookOf,
  type AutoNatInternals,
  autoNatInternalsOf,
  transportAddrsOf,
} from "./workarounds.ts";

/** What AutoNAT did on this node. */
export interface AutoNatCounters {
  /**
   * Dial-back requests this node answered: dialled back, could not dial, or refused (an
   * address not on the requester's own IP, a private one, a bad request).
   */
  answered: { reachable: number; unreachable: number; refused: number };
  /**
   * Our addresses (only ours, so few) with how often peers' dial-backs confirmed them, and
   * how often enough peers failed to dial them.
   */
  confirmed: Record<string, number>;
  refuted: Record<string, number>;
}

/**
 * Announces every public address our transports listen on at once, as Go EdgeVPN does.
 * libp2p 3 keeps a public listen address out of identify and the DHT until AutoNAT confirms it,
 * which takes a dial-back from a peer running the service, and never happens without one: a
 * public member would be reachable only through addresses its peers were given. Each address
 * is marked verified with an expiry of now, so AutoNAT (when on) still asks peers about it and
 * withdraws it when enough of them cannot dial it. Private and loopback addresses are announced
 * by libp2p anyway. Returns a function that stops watching for new listeners, or undefined when
 * libp2p is not shaped as expected.
 *
 * @example
 * ```ts ignore
 * const stop = announceListenAddresses(libp2p);
 * stop?.();
 * ```
 */
export function announceListenAddresses(libp2p: Libp2p): (() => void) | undefined {
  const book = addressBookOf(libp2p);
  if (book === undefined || transportAddrsOf(libp2p) === undefined) return undefined;
  const announced = new Set<string>();
  const announce = () => {
    for (const ma of transportAddrsOf(libp2p) ?? []) {
      const key = ma.toString();
      if (announced.has(key) || !isPublic(ma)) continue;
      announced.add(key);
      book.confirmObservedAddr(ma, { type: "transport", ttl: 0 });
    }
  };
  announce();
  libp2p.addEventListener("transport:listening", announce);
  return () => libp2p.removeEventListener("transport:listening", announce);
}

/**
 * Makes `@libp2p/autonat`'s server dial back for real and counts what AutoNAT does. Its server
 * asks the connection manager for a connection to the requester, which hands back the
 * connection the request came on (always open): the answer said "reachable" without a dial,
 * and the server then closed that connection, cutting the requester off every few seconds.
 * The dial-back is forced onto a new connection (closed after the answer, as the server does).
 * Returns the counters, or undefined when the service is not shaped as 3.0.28 is.
 *
 * @example
 * ```ts ignore
 * const counters = watchAutoNat(libp2p.services.autoNAT);
 * counters?.answered.reachable;
 * ```
 */
export function watchAutoNat(service: unknown): AutoNatCounters | undefined {
  const s = autoNatInternalsOf(service);
  if (s === undefined) return undefined;
  const counters: AutoNatCounters = {
    answered: { reachable: 0, unreachable: 0, refused: 0 },
    confirmed: {},
    refuted: {},
  };
  const handle = s.handleAutonatMessage.bind(s);
  const confirm = s.confirmAddress.bind(s);
  const unconfirm = s.unconfirmAddress.bind(s);
  const internals: AutoNatInternals = s;
  internals.handleAutonatMessage = async (message, connection, options) => {
    const response = await handle(message, connection, { ...options, force: true });
    const status = response.dialResponse?.status as unknown;
    if (status === "OK" || status === 0) counters.answered.reachable++;
    else if (status === "E_DIAL_ERROR" || status === 100) counters.answered.unreachable++;
    else counters.answered.refused++;
    return response;
  };
  internals.confirmAddress = (results) => {
    const key = results.multiaddr.toString();
    counters.confirmed[key] = (counters.confirmed[key] ?? 0) + 1;
    confirm(results);
  };
  internals.unconfirmAddress = (results) => {
    const key = results.multiaddr.toString();
    counters.refuted[key] = (counters.refuted[key] ?? 0) + 1;
    unconfirm(results);
  };
  return counters;
}

function isPublic(ma: Multiaddr): boolean {
  try {
    return isPrivate(ma) === false;
  } catch {
    return false;
  }
}
