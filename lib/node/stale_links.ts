/**
 * Keeps links to a peer usable when it has more than one connection, one of them dead.
 *
 * A peer that was killed or partitioned away and comes back connects anew while we may still
 * hold its old connection: nothing told us it died (its FIN or RST was lost, or never sent
 * across the partition). libp2p hands every new stream to the oldest open connection, and
 * GossipSub keeps its one outbound stream per peer on the connection it was first opened on:
 *
 * - GossipSub's stream stays on the dead connection, so our messages and subscriptions never
 *   reach the peer's new process; when that connection finally closes, GossipSub drops the
 *   stream and opens no other while the peer stays connected through the new one, and the peer
 *   never hears from us again (it sees us off the topic, and our ledger replies never arrive);
 * - VPN and other streams go to the dead connection until libp2p's monitor pings it out, up to
 *   10 s plus the ping's timeout later.
 *
 * So: a new connection to a peer probes its older ones at once (a protocol negotiation, which a
 * restarted peer's kernel answers with a reset), and aborts those that fail; GossipSub's
 * outbound stream moves to the newest connection as soon as it opens, and is opened again on a
 * remaining connection when the one it was on closes.
 */
import type { Connection, Libp2p, PeerId, Stream } from "@libp2p/interface";
import { errorMessage } from "../util/errors.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { type GossipStreamInternals, gossipStreams } from "./workarounds.ts";

/**
 * A protocol nobody serves: a live peer answers "na" to it (ours and Go's alike), a dead
 * connection never answers or is reset. Not ping: libp2p's connection monitor pings every
 * connection every 10 s and ping allows one outbound stream per connection, so a probe and a
 * heartbeat at the same moment failed each other ("Too many outbound protocol streams") and
 * one of them aborted a live connection (a relayed connection kept after hole punching, with a
 * service stream on it, was lost so once in about a dozen NAT test runs).
 */
const PROBE_PROTOCOL = "/edgevpn/liveness-probe/0";
/** How long an older connection has to answer the probe before it is aborted. */
export const PROBE_TIMEOUT_MS = 10_000;

/** What {@link StaleLinks} did, for tests and debugging. */
export interface StaleLinkCounters {
  /** Older connections probed because a newer one to the same peer opened. */
  probes: number;
  /** Of those, connections that answered (kept). */
  alive: number;
  /** Of those, connections that failed the probe and were aborted. */
  aborted: number;
  /** GossipSub outbound streams moved to a newer connection. */
  moved: number;
  /** GossipSub outbound streams opened again after their connection closed. */
  reopened: number;
}

/**
 * Attach with {@link StaleLinks.attach} before libp2p starts; {@link StaleLinks.stop} cancels
 * probes in flight.
 *
 * @example
 * ```ts ignore
 * const links = new StaleLinks(libp2p, libp2p.services.pubsub, logger);
 * links.attach();
 * await libp2p.start();
 * ```
 */
export class StaleLinks {
  readonly counters: StaleLinkCounters = {
    probes: 0,
    alive: 0,
    aborted: 0,
    moved: 0,
    reopened: 0,
  };
  readonly #libp2p: Libp2p;
  readonly #gossip: GossipStreamInternals | undefined;
  readonly #log: Logger;
  /** The connection each GossipSub outbound stream was opened on. */
  readonly #streamConnection = new WeakMap<object, Connection>();
  readonly #probing = new Set<Connection>();
  /** Peers whose GossipSub outbound stream is being opened. */
  readonly #opening = new Map<string, number>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  #attached = false;

  constructor(libp2p: Libp2p, gossip: unknown, logger: Logger = silentLogger) {
    this.#libp2p = libp2p;
    // Only with the internals where GossipSub 17.1 keeps them; otherwise just the probes.
    this.#gossip = gossipStreams(gossip);
    this.#log = logger;
  }

  attach(): void {
    if (this.#attached) return;
    this.#attached = true;
    const g = this.#gossip;
    if (g) {
      const create = g.createOutboundStream.bind(g);
      g.createOutboundStream = async (peerId, connection) => {
        const id = peerId.toString();
        const current = g.streamsOutbound.get(id);
        if (current !== undefined && connection.status === "open") {
          const on = this.#streamConnection.get(current);
          if (on !== connection && (on === undefined || isNewer(connection, on))) {
            g.streamsOutbound.delete(id);
            void current.close().catch(() => {});
            this.counters.moved++;
          }
        }
        this.#opening.set(id, (this.#opening.get(id) ?? 0) + 1);
        try {
          await create(peerId, connection);
        } finally {
          const left = this.#opening.get(id)! - 1;
          if (left > 0) this.#opening.set(id, left);
          else this.#opening.delete(id);
        }
        const created = g.streamsOutbound.get(id);
        if (created !== undefined && !this.#streamConnection.has(created)) {
          this.#streamConnection.set(created, connection);
        }
      };
    }
    this.#libp2p.addEventListener("connection:open", this.#onOpen);
    this.#libp2p.addEventListener("connection:close", this.#onClose);
  }

  stop(): void {
    this.#libp2p.removeEventListener("connection:open", this.#onOpen);
    this.#libp2p.removeEventListener("connection:close", this.#onClose);
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  #onOpen = (e: CustomEvent<Connection>) => {
    const fresh = e.detail;
    for (const old of this.#libp2p.getConnections(fresh.remotePeer)) {
      if (old !== fresh && old.status === "open" && !this.#probing.has(old)) void this.#probe(old);
    }
  };

  #onClose = (e: CustomEvent<Connection>) => {
    const closed = e.detail;
    // After GossipSub's own handlers for this event (a last connection removes the peer).
    queueMicrotask(() => this.#reopenGossip(closed.remotePeer));
  };

  /** Opens GossipSub's outbound stream to `peer` again if it is gone or on a closed connection. */
  #reopenGossip(peer: PeerId): void {
    const g = this.#gossip;
    const id = peer.toString();
    if (!g?.outboundInflightQueue || !g.peers.has(id) || this.#opening.has(id)) return;
    const current = g.streamsOutbound.get(id);
    if (current !== undefined && this.#streamConnection.get(current)?.status === "open") return;
    const live = newestOpen(this.#libp2p.getConnections(peer));
    if (live === undefined) return;
    if (current !== undefined) {
      g.streamsOutbound.delete(id);
      void current.close().catch(() => {});
    }
    this.counters.reopened++;
    this.#log.debug("gossip stream reopened on a remaining connection", { peer: id });
    g.outboundInflightQueue.push({ peerId: peer, connection: live });
  }

  async #probe(conn: Connection): Promise<void> {
    this.#probing.add(conn);
    this.counters.probes++;
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)),
      PROBE_TIMEOUT_MS,
    );
    this.#timers.add(timer);
    let stream: Stream | undefined;
    try {
      stream = await conn.newStream(PROBE_PROTOCOL, {
        signal: controller.signal,
        runOnLimitedConnection: true,
      });
      stream.abort(new Error("probe done"));
      this.counters.alive++;
    } catch (e) {
      stream?.abort(e as Error);
      // The peer answered that it does not serve the probe: the connection is alive.
      if ((e as Error)?.name === "UnsupportedProtocolError") this.counters.alive++;
      else if (conn.status === "open") {
        this.counters.aborted++;
        this.#log.debug("aborting a connection a newer one replaced", {
          peer: conn.remotePeer.toString(),
          error: errorMessage(e),
        });
        conn.abort(e as Error);
      }
    } finally {
      clearTimeout(timer);
      this.#timers.delete(timer);
      this.#probing.delete(conn);
    }
  }
}

function isNewer(a: Connection, b: Connection): boolean {
  return b.status !== "open" || a.timeline.open > b.timeline.open;
}

function newestOpen(connections: Connection[]): Connection | undefined {
  let best: Connection | undefined;
  for (const c of connections) {
    if (c.status !== "open" || c.limits !== undefined) continue;
    if (best === undefined || c.timeline.open > best.timeline.open) best = c;
  }
  return best;
}
