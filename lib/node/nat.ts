/** NAT traversal of a node: relay service and slots, AutoNAT, UPnP, hole punching, as options. */
import { autoNAT } from "@libp2p/autonat";
import { circuitRelayTransport } from "@libp2p/circuit-relay-v2";
import { dcutr } from "@libp2p/dcutr";
import type { Libp2p, Stream } from "@libp2p/interface";
import { isPrivate } from "@libp2p/utils";
import { tcp } from "@libp2p/tcp";
import { uPnPNAT } from "@libp2p/upnp-nat";
import type { Multiaddr } from "@multiformats/multiaddr";
import { type Logger, silentLogger } from "../util/logger.ts";
import { announceListenAddresses, type AutoNatCounters, watchAutoNat } from "./autonat.ts";
import {
  AutoRelay,
  AUTORELAY_DEFAULTS,
  type AutoRelayCounters,
  isRelayed,
  type RelaySlot,
} from "./autorelay.ts";
import {
  closeRelayedWhenIdle,
  confirmObservedDialPort,
  holePunchingTcp,
  markUnilateralDials,
  pickDialPort,
} from "./dcutr_fixes.ts";
import { addressBookOf } from "./workarounds.ts";
import { RateLimiter, wrapRateLimited } from "./nat_ratelimit.ts";
import {
  RELAY_DEFAULTS,
  type RelayCounters,
  type RelayPeerStats,
  RelayService,
  type RelayServiceOptions,
} from "./relay.ts";

/** The relay service's settings (see {@link RELAY_DEFAULTS}). */
export type RelayServiceSettings = Partial<Omit<RelayServiceOptions, "admits">> & {
  /** Only network members may reserve or be relayed (Go `--relay-service-network-only`). */
  membersOnly?: boolean;
};

/** AutoNAT service rate limits (Go `--nat-ratelimit*`): dial-back requests per interval. */
export interface NatRateLimit {
  global: number;
  perPeer: number;
  intervalMs: number;
}

/**
 * NAT traversal options of a node. Library default: everything off except dialling and
 * accepting relayed connections; the CLI applies Go EdgeVPN's defaults (all on).
 *
 * @example
 * ```ts ignore
 * const nat: NatOptions = { relayService: {}, autoRelay: { staticRelays: [relay] }, holePunch: true };
 * ```
 */
export interface NatOptions {
  /** Serve as a relay (Go `--relay-service`); settings override {@link RELAY_DEFAULTS}. */
  relayService?: false | RelayServiceSettings;
  /** Hold relay slots while we cannot be dialled (Go `--autorelay*`). */
  autoRelay?: false | {
    staticRelays?: readonly string[];
    staticOnly?: boolean;
    desiredRelays?: number;
    /** How often slots are re-examined (Go `--autorelay-discovery-interval`). */
    intervalMs?: number;
  };
  /** DCUtR hole punching over relayed connections (Go `--holepunch`). */
  holePunch?: boolean;
  /**
   * With hole punching, the local port every outbound TCP connection leaves from (default:
   * one the OS picks at start); it must differ from the listen ports.
   */
  dialPort?: number;
  /** Answer AutoNAT dial-back requests and ask peers (Go `--natservice`). */
  natService?: false | { rateLimit?: NatRateLimit };
  /** Map our port on a UPnP gateway (Go `--natmap`). */
  natMap?: boolean;
  /**
   * Let application streams (VPN, services, files) use limited (relayed) connections when no
   * direct one exists (Go `--transient-conn`; ours defaults to true, Go's to false).
   */
  limitedConnections?: boolean;
}

/** What NAT traversal did, for metrics and the API. */
export interface NatCounters {
  relay?: RelayCounters;
  autoRelay?: AutoRelayCounters;
  natService?: { served: number; refusedRate: number };
  /** Dial-backs answered and our addresses confirmed or refuted (with `--natservice`). */
  autoNat?: AutoNatCounters;
}

/** Protocol of AutoNAT v1 (the service Go's `--natservice` runs). */
export const AUTONAT_PROTOCOL = "/libp2p/autonat/1.0.0";

/**
 * The libp2p transports and services these options need, to add to the node's config.
 *
 * @example
 * ```ts ignore
 * const parts = natLibp2pParts({ holePunch: true }, ["/ip4/0.0.0.0/tcp/4001"]);
 * createLibp2p({ transports: parts.transports, services: { ...base, ...parts.services } });
 * ```
 */
export function natLibp2pParts(
  options: NatOptions,
  listen: readonly string[] = [],
): NatLibp2pParts {
  const services: Record<string, unknown> = {};
  // UPnP confirms the mapped address through AutoNAT; hole punching needs our observed one.
  if (options.natService || options.natMap) {
    services.autoNAT = autoNAT({ startupDelay: 5_000, maxInboundStreams: 4 });
  }
  // A node on loopback alone has nothing to map: no gateway search on the LAN either.
  if (options.natMap && listen.some((a) => !/^\/(ip4\/127\.|ip6\/::1\/)/.test(a))) {
    services.upnpNAT = uPnPNAT();
  }
  const dialPort = options.holePunch ? options.dialPort ?? pickDialPort() : undefined;
  if (options.holePunch) services.dcutr = dcutr();
  return {
    transports: [
      dialPort === undefined ? tcp() : holePunchingTcp(dialPort),
      circuitRelayTransport({ maxInboundStopStreams: 256, maxOutboundStopStreams: 256 }),
    ],
    services,
    dialPort,
  };
}

/** The libp2p transports and services NAT traversal adds to a host. */
export interface NatLibp2pParts {
  transports: (ReturnType<typeof circuitRelayTransport> | ReturnType<typeof tcp>)[];
  services: Record<string, unknown>;
  /** The fixed dial port of hole punching, when on. */
  dialPort?: number;
}

/**
 * Whether `addrs` include one that peers elsewhere can dial: not relayed, not loopback, not in
 * a private or documentation range (as js-libp2p judges them).
 *
 * @example
 * ```ts ignore
 * hasPublicAddress([multiaddr("/ip4/192.168.1.2/tcp/4001")]); // false
 * ```
 */
export function hasPublicAddress(addrs: readonly Multiaddr[]): boolean {
  return addrs.some((ma) => {
    if (ma.getComponents().some((c) => c.name === "p2p-circuit")) return false;
    try {
      return isPrivate(ma) === false;
    } catch {
      return false;
    }
  });
}

/**
 * The running part of NAT traversal beside libp2p's own services: our relay service, the
 * relay slots, the AutoNAT rate limit.
 *
 * @example
 * ```ts ignore
 * const nat = new NatRuntime(libp2p, { relayService: {} }, (p) => members.has(p), logger);
 * await nat.start();
 * nat.relayPeerStats();
 * await nat.stop();
 * ```
 */
export class NatRuntime {
  readonly options: NatOptions;
  readonly #libp2p: Libp2p;
  readonly #log: Logger;
  readonly relay: RelayService | undefined;
  readonly autoRelay: AutoRelay | undefined;
  readonly #limiter: RateLimiter | undefined;
  readonly #dialPort: number | undefined;
  readonly #keepsBusyRelayed: boolean;
  readonly #autoNat: AutoNatCounters | undefined;
  #stopObserving: (() => void) | undefined;
  #stopAnnouncing: (() => void) | undefined;

  /**
   * `stays` tells which streams keep a relayed connection open after hole punching replaced
   * it (those that cannot move to the direct one by themselves); it is closed once they end.
   */
  constructor(
    libp2p: Libp2p,
    options: NatOptions,
    isMember: (peerId: string) => boolean,
    logger: Logger = silentLogger,
    dialPort?: number,
    stays: (stream: Stream) => boolean = () => false,
  ) {
    this.options = options;
    // Before libp2p starts: DCUtR registers its handler then.
    const dcutr = (libp2p.services as Record<string, unknown>).dcutr;
    this.#keepsBusyRelayed = dcutr !== undefined && closeRelayedWhenIdle(dcutr, stays);
    this.#dialPort = dialPort;
    this.#libp2p = libp2p;
    this.#log = logger;
    if (options.relayService) {
      const s = options.relayService;
      const membersOnly = s.membersOnly ?? true;
      this.relay = new RelayService(libp2p, {
        ...RELAY_DEFAULTS,
        ...withoutUndefined(s),
        admits: membersOnly ? isMember : () => true,
      }, logger.child("relay"));
    }
    if (options.autoRelay) {
      const book = addressBookOf(libp2p);
      if (book === undefined) {
        logger.warn("relay slots disabled: this libp2p version hides its address manager");
      } else {
        const a = options.autoRelay;
        this.autoRelay = new AutoRelay(libp2p, book, {
          staticRelays: a.staticRelays ?? [],
          staticOnly: a.staticOnly ?? false,
          desiredRelays: a.desiredRelays ?? AUTORELAY_DEFAULTS.desiredRelays,
          intervalMs: a.intervalMs ?? AUTORELAY_DEFAULTS.intervalMs,
          isMember,
          // The NAT mapping of our dial port is public but nobody can dial it unasked.
          needsRelay: () =>
            !hasPublicAddress(libp2p.getMultiaddrs().filter((ma) => !onPort(ma, dialPort))),
        }, logger.child("autorelay"));
      }
    }
    const rate = options.natService ? options.natService.rateLimit : undefined;
    if (rate) this.#limiter = new RateLimiter(rate.global, rate.perPeer, rate.intervalMs);
    const autoNat = (libp2p.services as Record<string, unknown>).autoNAT;
    this.#autoNat = autoNat === undefined ? undefined : watchAutoNat(autoNat);
    if (autoNat !== undefined && this.#autoNat === undefined) {
      logger.warn(
        "AutoNAT answers without dialling back: @libp2p/autonat is not shaped as expected",
      );
    }
  }

  /** Starts the relay service, the rate limit and the slots (after libp2p started). */
  async start(): Promise<void> {
    this.#stopAnnouncing = announceListenAddresses(this.#libp2p);
    if (this.#stopAnnouncing === undefined) {
      this.#log.warn("public listen addresses wait for AutoNAT: libp2p's address manager moved");
    }
    await this.relay?.start();
    if (this.#limiter && !(await wrapRateLimited(this.#libp2p, AUTONAT_PROTOCOL, this.#limiter))) {
      this.#log.warn("--nat-ratelimit not applied: AutoNAT's handler is not where expected");
    }
    if (this.#dialPort !== undefined) {
      const dcutr = (this.#libp2p.services as Record<string, unknown>).dcutr;
      if (!markUnilateralDials(dcutr)) {
        this.#log.warn("hole punching may fail: @libp2p/dcutr is not shaped as expected");
      }
      if (!this.#keepsBusyRelayed) {
        this.#log.warn(
          "service and file streams on a relayed connection will end when hole punching replaces it: @libp2p/dcutr is not shaped as expected",
        );
      }
      this.#stopObserving = confirmObservedDialPort(this.#libp2p, this.#dialPort);
    }
    this.autoRelay?.start();
  }

  /** Stops what {@link start} started. */
  async stop(): Promise<void> {
    this.autoRelay?.stop();
    this.#stopObserving?.();
    this.#stopAnnouncing?.();
    await this.relay?.stop();
  }

  /** The local port of outbound TCP connections when hole punching is on. */
  get dialPort(): number | undefined {
    return this.#dialPort;
  }

  /** Whether application streams may use limited (relayed) connections. */
  get limitedConnections(): boolean {
    return this.options.limitedConnections ?? true;
  }

  /** What NAT traversal did so far. */
  counters(): NatCounters {
    return {
      relay: this.relay?.counters(),
      autoRelay: this.autoRelay?.counters(),
      natService: this.#limiter?.counters(),
      autoNat: this.#autoNat && structuredClone(this.#autoNat),
    };
  }

  /** Bytes and circuits per peer through our relay service. */
  relayPeerStats(): Map<string, RelayPeerStats> {
    return this.relay?.peerStats() ?? new Map();
  }

  /** Relay slots we hold. */
  slots(): RelaySlot[] {
    return this.autoRelay?.slots() ?? [];
  }
}

function onPort(ma: Multiaddr, port: number | undefined): boolean {
  return port !== undefined &&
    ma.getComponents().some((c) => c.name === "tcp" && Number(c.value) === port);
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export { isRelayed };
