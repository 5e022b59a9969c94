/** The VPN service: the TUN device, routes from the ledger, announcements and the data planes. */
import type { TunOptions, TunStats } from "../../ffi/tun.ts";
import type { Job } from "../ledger/ledger.ts";
import { emptyTunStats, TunDevice } from "../../ffi/tun.ts";
import { readU32 } from "../net/ip.ts";
import { EdgeVpnError, errorMessage } from "../util/errors.ts";
import { icmpEchoTag, pingSentAt, traceMark, tracing } from "../util/trace.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { clampTimerMs } from "../util/timer.ts";
import type { VpnComponents, VpnTun } from "./components.ts";
import {
  parseRouter,
  parseStaticPeertable,
  parseVpnAddress,
  VPN_DEFAULTS,
  type VpnAddress,
  type VpnOptions,
} from "./config.ts";
import { newVpnCounters, type VpnCounters } from "./counters.ts";
import { FAST_GSO_PROTOCOL, FAST_PROTOCOL, LEGACY_PROTOCOL } from "./frame.ts";
import { VIRTIO_NET_HDR_LENGTH } from "./gso.ts";
import { Ingress } from "./ingress.ts";
import { type LinkContext, type LinkInfo, PeerLink } from "./link.ts";
import { machineCodec } from "../ledger/buckets.ts";
import { machineOf, MACHINES_BUCKET, needsAnnouncement } from "./machine.ts";
import { type RouteEntry, RouteMiss, RouteTable } from "./routes.ts";
import { SourceTable } from "./sources.ts";

/** Streams per connection and protocol libp2p lets through (a packet each on `/edgevpn/0.1`). */
const MAX_LEGACY_STREAMS = 1024;
/** Frames read at most right after writing to the interface. */
const READ_NOW_FRAMES = 8;
/** How often stuck `/edgevpn/0.1` streams are looked for. */
const SWEEP_MS = 1_000;

/**
 * A snapshot of the counters with the interface's own.
 *
 * @example
 * ```ts ignore
 * const { vpn, tun } = service.counters();
 * ```
 */
export interface VpnCountersSnapshot {
  vpn: VpnCounters;
  tun: TunStats;
}

/**
 * A running VPN: call `start()`, then `stop()`.
 *
 * @example
 * ```ts ignore
 * const vpn = createVpn(vpnComponentsOf(mesh), { address: "10.1.0.2/24" });
 * await vpn.start();
 * vpn.links(); // [{ peerId, state: "open", protocol: "fast-gso", ... }]
 * await vpn.stop();
 * ```
 */
export interface Vpn {
  /** Opens the interface, serves the VPN protocols, announces our address, starts forwarding. */
  start(): Promise<void>;
  /** Stops forwarding, closes every stream and the interface, unblocks the gater. */
  stop(): Promise<void>;
  /** Our address (canonical text) and CIDR. */
  readonly address: VpnAddress;
  /** The interface's name, once started. */
  readonly interfaceName: string | undefined;
  /** Whether the interface runs with offload (virtio headers, super-packets). */
  readonly offload: boolean;
  /** A snapshot of the counters. */
  counters(): VpnCountersSnapshot;
  /** The links to peers we have sent to, with the protocol each uses. */
  links(): LinkInfo[];
  /** The current route table. */
  routes(): readonly RouteEntry[];
  /**
   * Resolves with `VPN_FORWARDING_STOPPED` when forwarding stops by itself (reading the
   * interface failed); never resolves once `stop()` was called. A node must not run on without
   * forwarding: its owner stops (the CLI exits 1).
   */
  readonly failure: Promise<EdgeVpnError>;
}

/**
 * Creates the VPN service (nothing happens until `start()`).
 *
 * @throws {UsageError} for a bad address, router or static table.
 * @example
 * ```ts ignore
 * const vpn = createVpn(vpnComponentsOf(mesh, { logger }), { address: "10.1.0.2/24", mtu: 1420 });
 * await vpn.start();
 * ```
 */
export function createVpn(components: VpnComponents, options: VpnOptions = {}): Vpn {
  return new VpnService(components, options);
}

type Settings = Required<Omit<VpnOptions, "txQueueLength" | "hostname">> & {
  txQueueLength?: number;
  hostname?: string;
};

class VpnService implements Vpn {
  readonly address: VpnAddress;
  readonly #components: VpnComponents;
  readonly #settings: Settings;
  readonly #router: string;
  readonly #staticPeers: Map<string, string>;
  readonly #staticPeerIds: Set<string>;
  readonly #log: Logger;
  readonly #counters = newVpnCounters();
  readonly #links = new Map<string, PeerLink>();
  readonly #dirty: PeerLink[] = [];
  #tun: VpnTun | undefined;
  #ingress: Ingress | undefined;
  #context: LinkContext | undefined;
  #routes: RouteTable;
  #announce: Job | undefined;
  #refresh: ReturnType<typeof setInterval> | undefined;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #rebuildQueued = false;
  #reader: Promise<void> | undefined;
  #spare: Uint8Array | undefined;
  #handled: string[] = [];
  #state: "new" | "started" | "stopped" = "new";
  readonly #failure = Promise.withResolvers<EdgeVpnError>();

  constructor(components: VpnComponents, options: VpnOptions) {
    this.#components = components;
    this.#settings = { ...VPN_DEFAULTS, ...stripUndefined(options) } as Settings;
    this.address = parseVpnAddress(this.#settings.address);
    this.#router = parseRouter(this.#settings.router);
    this.#staticPeers = parseStaticPeertable(this.#settings.staticPeertable);
    this.#staticPeerIds = new Set(this.#staticPeers.values());
    this.#log = (components.logger ?? silentLogger).child("vpn");
    this.#routes = RouteTable.empty(this.address.ip);
  }

  get interfaceName(): string | undefined {
    return this.#tun?.name;
  }

  get offload(): boolean {
    return this.#tun?.offload ?? false;
  }

  get failure(): Promise<EdgeVpnError> {
    return this.#failure.promise;
  }

  async start(): Promise<void> {
    if (this.#state !== "new") {
      throw new EdgeVpnError("VPN_STATE", `Cannot start a VPN that is ${this.#state}`);
    }
    const { node, ledger } = this.#components;
    const s = this.#settings;
    const tun = this.#openTun();
    this.#tun = tun;
    this.#state = "started";
    try {
      node.setBlockedCidrs([this.address.cidr]);
      this.#ingress = new Ingress(tun, this.#counters, this.#log, () => this.#readNow());
      this.#context = {
        node,
        counters: this.#counters,
        log: this.#log,
        tunOffload: tun.offload,
        dataPlane: s.dataPlane,
        queueBytes: s.queueBytes,
        legacyInflight: s.legacyInflight,
        streamTimeoutMs: s.streamTimeoutMs,
        fallbackRetryMs: s.fallbackRetryMs,
        scratch: new Uint8Array(0xffff),
        now: Date.now,
      };
      const ingress = this.#ingress;
      this.#rebuildRoutes();
      // Offload frames are taken only when our interface can write them whole.
      if (tun.offload) {
        await this.#handle(FAST_GSO_PROTOCOL, (st) => ingress.serveFast(st, VIRTIO_NET_HDR_LENGTH));
      }
      await this.#handle(FAST_PROTOCOL, (st) => ingress.serveFast(st, 0));
      await this.#components.node.handleMessages(LEGACY_PROTOCOL, ingress.legacyMessage, {
        membersOnly: (peerId) => this.#admits(peerId),
        maxInboundStreams: MAX_LEGACY_STREAMS,
        maxOutboundStreams: MAX_LEGACY_STREAMS,
      });
      this.#handled.push(LEGACY_PROTOCOL);
      ledger.addEventListener("change", this.#onLedgerChange);
      this.#components.node.addEventListener("peer:direct", this.#onDirect);
      this.#refresh = setInterval(() => this.#rebuildRoutes(), clampTimerMs(s.routeRefreshMs));
      this.#sweeper = setInterval(() => this.#sweep(), SWEEP_MS);
      this.#announce = ledger.announce(s.announceIntervalMs, () => this.#announceMachine());
      this.#reader = this.#readLoop(tun);
      this.#log.info("VPN started", {
        interface: tun.name,
        address: this.address.cidr,
        mtu: tun.mtu,
        offload: tun.offload,
        dataPlane: s.dataPlane,
      });
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  // A direct connection replaces a relayed one (hole punching): the fast stream follows.
  #onDirect = (e: CustomEvent<{ peerId: string }>): void => {
    this.#links.get(e.detail.peerId)?.moveToDirect();
  };

  async stop(): Promise<void> {
    if (this.#state !== "started") {
      this.#state = "stopped";
      return;
    }
    this.#state = "stopped";
    const { node, ledger } = this.#components;
    this.#announce?.stop();
    clearInterval(this.#refresh);
    clearInterval(this.#sweeper);
    ledger.removeEventListener("change", this.#onLedgerChange);
    node.removeEventListener("peer:direct", this.#onDirect);
    for (const protocol of this.#handled.splice(0)) {
      await node.unhandle(protocol).catch(() => {});
    }
    for (const link of this.#links.values()) link.close();
    this.#links.clear();
    this.#dirty.length = 0;
    this.#ingress?.close();
    await this.#tun?.close();
    await this.#reader;
    node.setBlockedCidrs([]);
    this.#log.info("VPN stopped");
  }

  counters(): VpnCountersSnapshot {
    const tun = this.#tun?.stats;
    return {
      vpn: structuredClone(this.#counters),
      tun: tun ? { ...tun } : emptyTunStats(),
    };
  }

  links(): LinkInfo[] {
    return [...this.#links.values()].map((l) => l.info());
  }

  routes(): readonly RouteEntry[] {
    return this.#routes.entries();
  }

  // ---- set-up -----------------------------------------------------------------------------

  #openTun(): VpnTun {
    const s = this.#settings;
    const open = this.#components.openTun ?? ((o: TunOptions) => TunDevice.open(o));
    const base: TunOptions = { name: s.interfaceName, hotReadMs: s.hotReadMs };
    if (s.bootstrapIface) {
      base.mtu = s.mtu;
      if (s.txQueueLength !== undefined) base.txQueueLength = s.txQueueLength;
      const address = { address: this.address.bytes, prefixLength: this.address.prefixLength };
      if (this.address.version === 4) base.ipv4 = address;
      else base.ipv6 = address;
      base.up = true;
    } else {
      base.up = false;
    }
    if (s.offload) {
      try {
        return open({ ...base, offload: true });
      } catch (e) {
        this.#log.info("interface offload unavailable: using plain packets", {
          error: errorMessage(e),
        });
      }
    }
    return open({ ...base, offload: false });
  }

  async #handle(
    protocol: string,
    handler: Parameters<VpnComponents["node"]["handle"]>[1],
  ): Promise<void> {
    await this.#components.node.handle(protocol, handler, {
      membersOnly: (peerId) => this.#admits(peerId),
      // The fast link moves itself (`moveToDirect`); one-packet streams are over at once.
      movesToDirect: true,
    });
    this.#handled.push(protocol);
  }

  // Go: with a static table only its peers; otherwise peers owning a machines entry.
  #admits(peerId: string): boolean {
    const ok = this.#staticPeerIds.size > 0
      ? this.#staticPeerIds.has(peerId)
      : this.#components.hasMachine(peerId);
    if (!ok) this.#counters.inbound.nonMember++;
    return ok;
  }

  #sweep(): void {
    const now = Date.now();
    for (const link of this.#links.values()) link.sweep(now);
  }

  // ---- routes and announcements -----------------------------------------------------------

  #onLedgerChange = () => {
    if (this.#rebuildQueued) return;
    this.#rebuildQueued = true;
    queueMicrotask(() => {
      this.#rebuildQueued = false;
      if (this.#state === "started") this.#rebuildRoutes();
    });
  };

  #rebuildRoutes(): void {
    const { ledger, node } = this.#components;
    const bucket = ledger.currentStorage().get(MACHINES_BUCKET);
    const machines: [string, string][] = [];
    for (const [key, entry] of bucket ?? []) if (!entry.deleted) machines.push([key, entry.value]);
    this.#routes = RouteTable.build({
      selfPeerId: node.peerId,
      selfAddress: this.address.ip,
      machines,
      isOwnerLive: (peerId) => ledger.isOwnerLive(peerId),
      staticPeers: this.#staticPeers,
      router: this.#router,
    });
    if (this.#ingress !== undefined) {
      this.#ingress.sources = SourceTable.build({
        selfPeerId: node.peerId,
        machines,
        staticPeers: this.#staticPeers,
        router: this.#router,
      });
    }
  }

  async #announceMachine(): Promise<void> {
    const { ledger, node } = this.#components;
    const current = ledger.getKey(MACHINES_BUCKET, this.address.ip);
    if (!needsAnnouncement(current, node.peerId)) return;
    const machine = machineOf({
      peerId: node.peerId,
      hostname: this.#settings.hostname ?? hostname(),
      address: this.address.ip,
    });
    await ledger.add(MACHINES_BUCKET, { [this.address.ip]: machineCodec.value(machine) });
    this.#log.debug("announced machine", { address: this.address.ip });
  }

  // ---- the data path ----------------------------------------------------------------------

  async #readLoop(tun: VpnTun): Promise<void> {
    const size = this.#settings.readBatch;
    const buffers = Array.from({ length: size }, () => new Uint8Array(tun.frameSize));
    const lengths = new Uint32Array(size);
    try {
      for (;;) {
        const n = await tun.readBatch(buffers, lengths);
        if (n === 0 || this.#state !== "started") return;
        if (tracing) { for (let i = 0; i < n; i++) this.#trace("tun.read", buffers[i]); }
        for (let i = 0; i < n; i++) this.#route(buffers[i], lengths[i]);
        this.#flush();
      }
    } catch (e) {
      if (this.#state === "started") {
        this.#log.error("reading the interface failed: forwarding stopped", {
          error: errorMessage(e),
        });
        this.#failure.resolve(
          new EdgeVpnError(
            "VPN_FORWARDING_STOPPED",
            `VPN forwarding stopped: ${errorMessage(e)}`,
            { cause: e },
          ),
        );
      }
    }
  }

  // Reads what the interface holds right now, with buffers of its own (the read loop's may hold
  // a batch waiting to be routed).
  #readNow(): void {
    const tun = this.#tun;
    if (tun === undefined || this.#state !== "started") return;
    this.#spare ??= new Uint8Array(tun.frameSize);
    try {
      for (let i = 0; i < READ_NOW_FRAMES; i++) {
        const n = tun.readSync(this.#spare);
        if (n === 0) break;
        if (tracing) this.#trace("tun.readNow", this.#spare);
        this.#route(this.#spare, n);
      }
    } catch {
      return;
    }
    this.#flush();
  }

  // The hot path: one frame read from the interface.
  #route(frame: Uint8Array, length: number): void {
    const at = this.#tun!.offload ? VIRTIO_NET_HDR_LENGTH : 0;
    const dropped = this.#counters.dropped;
    if (length < at + 20) {
      dropped.malformed++;
      return;
    }
    const first = frame[at];
    const version = first >> 4;
    let route;
    if (version === 4) {
      const headerLength = (first & 0x0f) << 2;
      const total = (frame[at + 2] << 8) | frame[at + 3];
      if (headerLength < 20 || total !== length - at) {
        dropped.malformed++;
        return;
      }
      route = this.#routes.routeIPv4(readU32(frame, at + 12), readU32(frame, at + 16));
    } else if (version === 6) {
      if (length < at + 40 || 40 + ((frame[at + 4] << 8) | frame[at + 5]) !== length - at) {
        dropped.malformed++;
        return;
      }
      route = this.#routes.routeIPv6(frame, at);
    } else {
      dropped.malformed++;
      return;
    }
    if (typeof route !== "string") {
      if (route === RouteMiss.NO_ROUTE) dropped.noRoute++;
      else if (route === RouteMiss.OWNER_NOT_LIVE) dropped.ownerNotLive++;
      else dropped.self++;
      return;
    }
    let link = this.#links.get(route);
    if (link === undefined) {
      link = new PeerLink(route, this.#context!);
      this.#links.set(route, link);
    }
    if (!link.dirty) {
      link.dirty = true;
      this.#dirty.push(link);
    }
    link.send(frame, length);
  }

  #trace(stage: string, frame: Uint8Array): void {
    const at = this.#tun!.offload ? VIRTIO_NET_HDR_LENGTH : 0;
    const tag = icmpEchoTag(frame, at);
    if (tag >> 16 === 8) traceMark("ping.sent", tag, pingSentAt(frame, at));
    traceMark(stage, tag);
  }

  #flush(): void {
    const dirty = this.#dirty;
    for (let i = 0; i < dirty.length; i++) {
      const link = dirty[i];
      link.dirty = false;
      link.flush();
    }
    dirty.length = 0;
  }
}

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "";
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
