/**
 * What `@libp2p/dcutr` 3.0 needs to punch TCP holes from Deno: a fixed dial port whose NAT
 * mapping peers observe, that observed address announced, unilateral attempts kept off the
 * punch's 4-tuple, the DCUtR roles on a TCP simultaneous open, and the relayed connection
 * kept while streams that cannot move still run on it.
 */
import type { Connection, PeerId, Stream } from "@libp2p/interface";
import { isPrivate } from "@libp2p/utils";
import { tcp } from "@libp2p/tcp";
import type { Multiaddr } from "@multiformats/multiaddr";
import { isRelayed } from "./autorelay.ts";
import {
  addressBookOf,
  adjustServiceDials,
  connectionManagerOf,
  wrapTransportDial,
} from "./workarounds.ts";

/** DCUtR's dial priority (`@libp2p/dcutr` dials the punched addresses with it). */
const DCUTR_PRIORITY = 100;
/** The priority {@link markUnilateralDials} gives DCUtR's unilateral attempts (default: 50). */
const UNILATERAL_PRIORITY = 49;

type TcpInit = Parameters<typeof tcp>[0];
type TcpFactory = ReturnType<typeof tcp>;
type Components = Parameters<TcpFactory>[0];

interface DialOptions {
  priority?: number;
  force?: boolean;
  signal?: AbortSignal;
  upgrader: Upgrader;
  [key: string]: unknown;
}

interface Upgrader {
  upgradeOutbound(
    maConn: { direction: string },
    options: Record<string, unknown>,
  ): Promise<Connection>;
}

/**
 * A free TCP port for outbound connections (the OS picks it; it is released at once).
 *
 * @example
 * ```ts ignore
 * const port = pickDialPort(); // e.g. 41873
 * ```
 */
export function pickDialPort(): number {
  const l = Deno.listen({ hostname: "0.0.0.0", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * TCP whose outbound connections leave from `dialPort`, so that a NAT with endpoint-independent
 * mapping gives all of them one public port, the one peers observe and hole punching dials.
 * go-libp2p reuses its listen port for this; Deno cannot bind a dialer to a listening port,
 * hence a port of its own (it must differ from every listen port).
 *
 * - A dial that cannot have the port (a connection to the same peer address still in
 *   TIME_WAIT) falls back to any port, except hole punches, which are pointless elsewhere.
 * - DCUtR's "unilateral upgrade" (a forced dial of the peer's announced addresses before the
 *   punch) leaves from another port: from the fixed one it would leave a SYN_SENT entry in our
 *   router's connection tracking for the very 4-tuple the punch uses, and the punch then fails.
 * - On a punch, libp2p 3.3's dial queue drops DCUtR's `initiator: false`, so after the TCP
 *   simultaneous open both ends would run Noise as initiator. The side holding the inbound
 *   relayed connection (it started DCUtR) is made the responder, as the spec says.
 *
 * @example
 * ```ts ignore
 * createLibp2p({ transports: [holePunchingTcp(pickDialPort())] });
 * ```
 */
export function holePunchingTcp(dialPort: number, init: TcpInit = {}): TcpFactory {
  const base = tcp(init);
  return (components: Components) => {
    const transport = base(components);
    const connectionManager = connectionManagerOf(components);
    wrapTransportDial<DialOptions>(transport, (dial) => async (ma, options) => {
      const punch = options.priority === DCUTR_PRIORITY;
      if (options.priority === UNILATERAL_PRIORITY) return await dial(ma, options);
      let upgrader = options.upgrader;
      if (punch && holdsInboundRelayed(connectionManager, ma)) upgrader = asResponder(upgrader);
      try {
        return await dial(ma, { ...options, upgrader, localPort: dialPort });
      } catch (e) {
        if (punch || options.signal?.aborted || !portBusy(e)) throw e;
        return await dial(ma, options);
      }
    });
    return transport;
  };
}

/**
 * Gives the dials of DCUtR's unilateral upgrade a priority of their own, so that
 * {@link holePunchingTcp} can send them from another port: libp2p's dial queue keeps only the
 * priority of a dial's options (not `force`). Returns false when the service does not have the
 * expected shape.
 *
 * @example
 * ```ts ignore
 * markUnilateralDials(libp2p.services.dcutr);
 * ```
 */
export function markUnilateralDials(service: unknown): boolean {
  return adjustServiceDials(
    service,
    (options) =>
      options.force === true && options.priority === undefined
        ? { ...options, priority: UNILATERAL_PRIORITY }
        : options,
  );
}

function portBusy(e: unknown): boolean {
  const text = `${(e as { code?: string })?.code ?? ""} ${(e as Error)?.message ?? ""}`;
  return /EADDRINUSE|EADDRNOTAVAIL|Address already in use|address not available/i.test(text);
}

function holdsInboundRelayed(
  manager: { getConnections(peer?: PeerId): Connection[] } | undefined,
  ma: Multiaddr,
): boolean {
  const peer = ma.getComponents().findLast((c) => c.name === "p2p")?.value;
  if (manager === undefined || peer === undefined) return false;
  return manager.getConnections().some((c) =>
    c.remotePeer.toString() === peer && c.direction === "inbound" && isRelayed(c)
  );
}

function asResponder(upgrader: Upgrader): Upgrader {
  return new Proxy(upgrader, {
    get(target, key) {
      if (key === "upgradeOutbound") {
        return (maConn: { direction: string }, options: Record<string, unknown>) => {
          // yamux takes its client/server role from the connection's direction
          maConn.direction = "inbound";
          return target.upgradeOutbound(maConn, { ...options, initiator: false });
        };
      }
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/**
 * Announces the address a peer observed for one of our connections when it carries our dial
 * port and a public IP: the NAT mapping hole punching needs. libp2p 3.3's identify ignores
 * observed TCP addresses (with ephemeral ports they are useless; with the fixed dial port they
 * are not). Any peer's observation counts: identify runs as a connection opens, before the
 * ledger says who is a member, and a false one costs at most a failed punch. Returns a
 * function that stops listening.
 *
 * @example
 * ```ts ignore
 * const stop = confirmObservedDialPort(libp2p, port);
 * ```
 */
export function confirmObservedDialPort(
  libp2p: {
    addEventListener(type: "peer:identify", l: (e: CustomEvent<IdentifyResult>) => void): void;
    removeEventListener(type: "peer:identify", l: (e: CustomEvent<IdentifyResult>) => void): void;
  },
  dialPort: number,
): () => void {
  const book = addressBookOf(libp2p);
  const onIdentify = (e: CustomEvent<IdentifyResult>) => {
    const observed = e.detail.observedAddr;
    if (book === undefined || observed === undefined) return;
    const tcpPort = observed.getComponents().find((c) => c.name === "tcp")?.value;
    if (Number(tcpPort) !== dialPort) return;
    try {
      if (isPrivate(observed) !== false) return;
    } catch {
      return;
    }
    book.confirmObservedAddr(observed, { type: "observed" });
  };
  libp2p.addEventListener("peer:identify", onIdentify);
  return () => libp2p.removeEventListener("peer:identify", onIdentify);
}

interface IdentifyResult {
  peerId: PeerId;
  observedAddr?: Multiaddr;
}

/**
 * Makes DCUtR close the relayed connection it replaced only once no stream that `stays`
 * remains open on it. `@libp2p/dcutr` closes it as soon as the direct connection is up, which
 * ends every stream on it: a service or file transfer running over the relay would break at
 * the very moment the path improves. Streams that move by themselves (the VPN's) should not
 * stay; new streams go on the direct connection (it ranks first), so the relayed one drains.
 * Must run before libp2p starts (DCUtR registers its stream handler then). Returns false
 * when the service does not have the expected shape.
 *
 * @example
 * ```ts ignore
 * closeRelayedWhenIdle(libp2p.services.dcutr, (s) => s.protocol === "/edgevpn/service/1");
 * ```
 */
export function closeRelayedWhenIdle(
  service: unknown,
  stays: (stream: Stream) => boolean,
): boolean {
  const s = service as {
    upgradeInbound?: (connection: Connection) => Promise<void>;
    handleIncomingUpgrade?: (stream: Stream, connection: Connection) => Promise<void>;
  } | undefined;
  const inbound = s?.upgradeInbound;
  const incoming = s?.handleIncomingUpgrade;
  if (typeof inbound !== "function" || typeof incoming !== "function") return false;
  s!.upgradeInbound = (connection) => inbound.call(s, closingWhenIdle(connection, stays));
  s!.handleIncomingUpgrade = (stream, connection) =>
    incoming.call(s, stream, closingWhenIdle(connection, stays));
  return true;
}

// The connection, whose close() waits for the streams that stay (and returns at once).
function closingWhenIdle(connection: Connection, stays: (stream: Stream) => boolean): Connection {
  return new Proxy(connection, {
    get(target, key) {
      if (key === "close") {
        return (options?: { signal?: AbortSignal }) => {
          if (!target.streams.some((x) => open(x) && stays(x))) return target.close(options);
          closeOnceIdle(target, stays);
          return Promise.resolve();
        };
      }
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function closeOnceIdle(connection: Connection, stays: (stream: Stream) => boolean): void {
  if (connection.status !== "open") return;
  const pending = connection.streams.filter((x) => open(x) && stays(x));
  if (pending.length === 0) {
    connection.close().catch((e) => connection.abort(e));
    return;
  }
  let left = pending.length;
  const ended = () => {
    if (--left === 0) closeOnceIdle(connection, stays);
  };
  for (const stream of pending) stream.addEventListener("close", ended, { once: true });
}

function open(stream: Stream): boolean {
  return stream.status === "open" || stream.status === "closing";
}
