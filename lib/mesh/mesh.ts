/** A running EdgeVPN network member: the libp2p node, its sealed hub and the shared ledger. */
import { OPTIONS } from "../config/options.ts";
import { BUCKETS, peerIdOf } from "../ledger/buckets.ts";
import { createLedger, type Job, type Ledger } from "../ledger/ledger.ts";
import { openDiskStore } from "../ledger/store_disk.ts";
import type { OwnershipMode } from "../ledger/policy.ts";
import { createNode, type EdgeNode } from "../node/node.ts";
import type { NodeOptions } from "../node/options.ts";
import { errorMessage } from "../util/errors.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { TrustZone, type TrustZoneOptions } from "../trustzone/trustzone.ts";

/** Ledger settings of a mesh. */
export interface MeshLedgerOptions {
  mode: OwnershipMode;
  /** Liveness window of owners (Go `--ownership-ttl`, 0 → 4 × heartbeat interval). */
  ownershipTtlMs: number;
  /** Keep the ledger in this directory (Go `--ledger-state`); in memory when absent. */
  stateDir?: string;
  /** Go `--ledger-synchronization-interval`. */
  syncIntervalMs: number;
  /** Send digests instead of full blocks while idle (default true). */
  quiet?: boolean;
}

/** The alive service (heartbeats and scrubbing), Go's `AliveNetworkService`. */
export interface MeshAliveOptions {
  /** Go `--aliveness-healthcheck-interval`. */
  intervalMs: number;
  /** Go `--aliveness-healthcheck-scrub-interval`. */
  scrubIntervalMs: number;
  /** Go `--aliveness-healthcheck-max-interval`. */
  maxIntervalMs: number;
}

/**
 * Options of {@link createMesh}.
 *
 * @example
 * ```ts ignore
 * const options: MeshOptions = {
 *   node: { network, listenMaddrs: ["/ip4/127.0.0.1/tcp/0"], mdns: false },
 *   ledger: { mode: "enforce", ownershipTtlMs: 0, syncIntervalMs: 10_000 },
 * };
 * ```
 */
export interface MeshOptions {
  node: NodeOptions;
  ledger: MeshLedgerOptions;
  /** Run heartbeats; off by default, as Go's `start`, `dns` and `proxy`. */
  alive?: MeshAliveOptions;
  /** Run the trust zone (Go `--peerguard`); its gate applies to ledger messages and members. */
  trustZone?: TrustZoneOptions;
  logger?: Logger;
}

/** Decides which peers' ledger messages are dropped (the trust zone's gate). */
export interface MessageGate {
  gates(peerId: string): boolean;
  gatesMessage(m: { from: string; author?: string }): boolean;
}

/**
 * A node, its hub and its ledger, wired together and started/stopped as one.
 *
 * @example
 * ```ts ignore
 * const mesh = await createMesh(options);
 * await mesh.start();
 * await mesh.ledger.add("tests", { hello: "world" });
 * await mesh.stop();
 * ```
 */
export class Mesh {
  readonly node: EdgeNode;
  readonly ledger: Ledger;
  readonly #options: MeshOptions;
  readonly #log: Logger;
  readonly #jobs: Job[] = [];
  #users = new Set<string>();
  #machinePeers = new Set<string>();
  #alivePeers = new Set<string>();
  #started = false;
  #gate: MessageGate | undefined;
  #trustZone: TrustZone | undefined;

  /** Use {@link createMesh}. */
  constructor(node: EdgeNode, ledger: Ledger, options: MeshOptions) {
    this.node = node;
    this.ledger = ledger;
    this.#options = options;
    this.#log = (options.logger ?? silentLogger).child("mesh");
    this.#refreshMembers();
    ledger.addEventListener("change", (e) => {
      if (e.detail.contentChanged) this.#refreshMembers();
    });
    // One at a time, bounded per peer (the signer when known: relays forward everyone's).
    node.hub.addEventListener("message", (e) => {
      if (this.#gate?.gatesMessage(e.detail)) return;
      this.ledger.enqueue(e.detail.data, e.detail.author ?? e.detail.from);
    });
    node.setMembership((peer) => this.isMember(peer));
  }

  /** Our peer ID. */
  get peerId(): string {
    return this.node.peerId;
  }

  /** Starts the node, the ledger synchronisation and, if configured, the alive service. */
  async start(): Promise<void> {
    await this.node.start();
    this.#started = true;
    if (this.#options.trustZone) {
      const zone = new TrustZone({
        peerId: this.node.peerId,
        ledger: this.ledger,
        publicHub: this.node.createPublicHub(),
        topicPeers: () => this.node.topicPeers(),
        logger: this.#options.logger,
      }, this.#options.trustZone);
      await zone.start();
      this.#trustZone = zone;
      this.setMessageGate(zone);
    }
    this.#jobs.push(this.ledger.startSync(this.#options.ledger.syncIntervalMs));
    const alive = this.#options.alive;
    if (alive) {
      let lastScrub = Date.now();
      this.#jobs.push(this.ledger.announce(alive.intervalMs, async () => {
        await this.ledger.heartbeat();
        if (Date.now() - lastScrub >= alive.scrubIntervalMs) {
          lastScrub = Date.now();
          if (await this.ledger.scrubIfLeader(alive.maxIntervalMs)) {
            this.#log.debug("scrubbed the ledger as leader");
          }
        }
      }));
    }
  }

  /** Stops every job, then the ledger (flushing writes to disk), then the node. */
  async stop(): Promise<void> {
    for (const job of this.#jobs.splice(0)) job.stop();
    await this.#trustZone?.stop();
    this.#trustZone = undefined;
    try {
      await this.ledger.stop();
    } catch (e) {
      this.#log.warn("ledger did not stop cleanly", { error: errorMessage(e) });
    }
    if (this.#started) await this.node.stop();
    this.#started = false;
  }

  /** The trust zone, when running (`/api/peergate` toggles its gate). */
  get trustZone(): TrustZone | undefined {
    return this.#trustZone;
  }

  /** A peer with a `users` entry: admitted by services, files and egress (Go's rule). */
  isUser(peerId: string): boolean {
    return this.#users.has(peerId);
  }

  /** A peer owning a `machines` entry: admitted by the VPN (Go's rule). */
  hasMachine(peerId: string): boolean {
    return this.#machinePeers.has(peerId);
  }

  /**
   * Any peer the ledger knows as a member: users, machines or heartbeats; with a gate (the
   * trust zone), only those it lets through.
   */
  isMember(peerId: string): boolean {
    const known = this.#users.has(peerId) || this.#machinePeers.has(peerId) ||
      this.#alivePeers.has(peerId);
    return known && !(this.#gate?.gates(peerId) ?? false);
  }

  /**
   * Drops ledger messages the gate refuses and makes its refusals non-members (the trust
   * zone); `undefined` removes it.
   */
  setMessageGate(gate: MessageGate | undefined): void {
    this.#gate = gate;
  }

  #refreshMembers(): void {
    const data = this.ledger.currentData();
    this.#users = new Set(data.get(BUCKETS.users)?.keys() ?? []);
    this.#alivePeers = new Set(data.get(BUCKETS.healthcheck)?.keys() ?? []);
    const machines = new Set<string>();
    for (const value of data.get(BUCKETS.machines)?.values() ?? []) {
      const peer = peerIdOf(value);
      if (peer) machines.add(peer);
    }
    this.#machinePeers = machines;
  }
}

/**
 * Creates the node and the ledger (loading it from disk when `stateDir` is set).
 *
 * @example
 * ```ts ignore
 * const mesh = await createMesh({ node: { network }, ledger: { mode: "off", ownershipTtlMs: 0, syncIntervalMs: 5000 } });
 * ```
 */
export async function createMesh(options: MeshOptions): Promise<Mesh> {
  const logger = options.logger ?? silentLogger;
  const node = await createNode({ ...options.node, logger });
  const store = options.ledger.stateDir ? await openDiskStore(options.ledger.stateDir) : undefined;
  const ttl = options.ledger.ownershipTtlMs ||
    4 * (options.alive?.intervalMs ?? DEFAULT_HEARTBEAT_MS);
  const ledger = await createLedger({
    identity: node.identity,
    mode: options.ledger.mode,
    ownershipTtlMs: ttl,
    store,
    send: (bytes) => node.hub.publish(bytes),
    logger,
    quiet: options.ledger.quiet,
    // A write the gossip could not carry is refused, never silently unsent.
    sizeLimits: { maxBroadcastBytes: node.hub.maxPayloadBytes },
  });
  return new Mesh(node, ledger, options);
}

/** Go `--aliveness-healthcheck-interval`, from the option table. */
const DEFAULT_HEARTBEAT_MS = OPTIONS.alivenessHealthcheckInterval.default * 1000;
