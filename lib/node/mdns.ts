/** mDNS discovery compatible with go-libp2p's (zeroconf): `<mdns>.local` with dnsaddr TXT records. */
import { multiaddr } from "@multiformats/multiaddr";
import { type Clock, systemClock } from "../util/clock.ts";
import { EdgeVpnError, errorMessage } from "../util/errors.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import {
  decodeDnsMessage,
  type DnsMessage,
  type DnsRecord,
  encodeDnsMessage,
  MAX_MDNS_PACKET,
  RR,
  sameName,
} from "./mdns_packet.ts";

const MDNS_GROUP = "224.0.0.251";
const MDNS_PORT = 5353;
/** TTL of service records, as zeroconf's default. */
const RECORD_TTL = 3200;
/** TTL of address records (RFC 6762 §10). */
const ADDRESS_TTL = 120;
/** SRV port; libp2p only reads the TXT records (go-libp2p uses the same constant). */
const SRV_PORT = 4001;
const DNSADDR_PREFIX = "dnsaddr=";
/** Browse queries: first at once, then 4 s growing ×1.5–2.5 up to 60 s (zeroconf's pace). */
const QUERY_FIRST_MS = 4_000;
const QUERY_MAX_MS = 60_000;
/** A peer is reported again at most this often. */
const REPORT_EVERY_MS = 10_000;
const MAX_REMEMBERED = 1024;
/** After a failed receive the socket is read again after 100 ms, doubling up to 30 s. */
const RECEIVE_RETRY_MS = 100;
const RECEIVE_RETRY_MAX_MS = 30_000;

/** A peer announced on the LAN. */
export interface MdnsPeer {
  id: string;
  addrs: string[];
}

/** What mDNS discovery needs from the host. */
export interface MdnsComponents {
  /** The token's `mdns` field; the service is `<serviceName>.local.`. */
  serviceName: string;
  peerId: string;
  /** Multiaddrs to announce, each ending with `/p2p/<peerId>`. */
  addresses(): string[];
  onPeer(peer: MdnsPeer): void;
  /** IPv4 addresses of the interfaces to use; default: every non-internal one. */
  interfaces?(): string[];
  clock?: Clock;
  logger?: Logger;
  /** Opens a UDP socket; default `Deno.listenDatagram` (tests pass their own). */
  listen?: typeof Deno.listenDatagram;
}

interface Socket {
  conn: Deno.DatagramConn;
  local: string;
}

/**
 * Announces this node and browses for others with mDNS over IPv4: answers PTR queries for
 * `<serviceName>.local.` with PTR, SRV, TXT (`dnsaddr=<multiaddr>/p2p/<id>`) and A records,
 * as go-libp2p's zeroconf responder does, and reports the peers found in other responses.
 * Needs `Deno.listenDatagram` (`--unstable-net`).
 *
 * @example
 * ```ts
 * const m = new MdnsDiscovery({ serviceName, peerId, addresses, onPeer });
 * await m.start();
 * await m.stop();
 * ```
 */
export class MdnsDiscovery {
  readonly #c: MdnsComponents;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #service: string;
  readonly #instance: string;
  readonly #host: string;
  readonly #sockets: Socket[] = [];
  readonly #loops: Promise<void>[] = [];
  readonly #timers = new Set<unknown>();
  readonly #reported = new Map<string, number>();
  readonly #wakers = new Set<() => void>();
  #receiveErrors = 0;
  #running = false;
  #queryWaitMs = QUERY_FIRST_MS;

  constructor(components: MdnsComponents) {
    this.#c = components;
    this.#clock = components.clock ?? systemClock;
    this.#log = components.logger ?? silentLogger;
    this.#service = `${components.serviceName || "_p2p._udp"}.local.`;
    const peerName = randomName();
    this.#instance = `${peerName}.${this.#service}`;
    this.#host = `${peerName}.local.`;
  }

  /** Receives that failed (each socket keeps reading after a pause). */
  get receiveErrors(): number {
    return this.#receiveErrors;
  }

  /**
   * Opens the sockets and starts announcing and browsing.
   *
   * @throws {EdgeVpnError} `MDNS_UNAVAILABLE` when UDP multicast cannot be used here.
   */
  async start(): Promise<void> {
    if (this.#running) return;
    const listen = this.#c.listen ??
      (Deno as { listenDatagram?: typeof Deno.listenDatagram }).listenDatagram;
    if (typeof listen !== "function") {
      throw new EdgeVpnError(
        "MDNS_UNAVAILABLE",
        "Cannot start mDNS: Deno.listenDatagram is missing (run Deno with --unstable-net)",
      );
    }
    const ifaces = this.#c.interfaces?.() ?? ipv4Interfaces();
    try {
      const main = listen({
        transport: "udp",
        hostname: "0.0.0.0",
        port: MDNS_PORT,
        reuseAddress: true,
        loopback: true,
      });
      this.#sockets.push({ conn: main, local: "0.0.0.0" });
      let joined = 0;
      for (const ip of ifaces) {
        try {
          const membership = await main.joinMulticastV4(MDNS_GROUP, ip);
          await membership.setTTL(255);
          joined++;
        } catch (e) {
          this.#log.debug("mDNS cannot join the group", { interface: ip, error: errorMessage(e) });
        }
        // A socket bound to the interface's address makes multicast leave through it.
        try {
          const conn = listen({
            transport: "udp",
            hostname: ip,
            port: MDNS_PORT,
            reuseAddress: true,
            loopback: true,
          });
          this.#sockets.push({ conn, local: ip });
        } catch (e) {
          this.#log.debug("mDNS cannot bind", { interface: ip, error: errorMessage(e) });
        }
      }
      if (joined === 0) {
        throw new Error(
          `no interface could join ${MDNS_GROUP} (tried ${ifaces.join(", ") || "none"})`,
        );
      }
    } catch (e) {
      this.#closeSockets();
      throw new EdgeVpnError("MDNS_UNAVAILABLE", `Cannot start mDNS: ${errorMessage(e)}`, {
        cause: e,
      });
    }
    this.#running = true;
    for (const s of this.#sockets) this.#loops.push(this.#receive(s));
    // zeroconf waits up to 250 ms, then announces twice one second apart.
    this.#later(Math.random() * 250, () => {
      this.#query();
      this.#announce();
      this.#later(1000, () => this.#announce());
      this.#later(QUERY_FIRST_MS, () => this.#periodicQuery());
    });
  }

  /** Sends a goodbye, closes the sockets and clears every timer. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    for (const t of this.#timers) this.#clock.clearTimeout(t);
    this.#timers.clear();
    for (const wake of this.#wakers) wake();
    this.#wakers.clear();
    await this.#send(this.#response(0)).catch(() => {});
    this.#closeSockets();
    await Promise.allSettled(this.#loops);
    this.#loops.length = 0;
  }

  #closeSockets(): void {
    for (const s of this.#sockets.splice(0)) {
      try {
        s.conn.close();
      } catch {
        // already closed
      }
    }
  }

  #later(ms: number, fn: () => void): void {
    const t = this.#clock.setTimeout(() => {
      this.#timers.delete(t);
      if (this.#running) fn();
    }, ms);
    this.#timers.add(t);
  }

  // Resolves after `ms`, or at once when stop() runs.
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.#wakers.delete(wake);
        this.#timers.delete(t);
        this.#clock.clearTimeout(t);
        resolve();
      };
      const t = this.#clock.setTimeout(wake, ms);
      this.#timers.add(t);
      this.#wakers.add(wake);
    });
  }

  #periodicQuery(): void {
    this.#query();
    this.#queryWaitMs = Math.min(
      this.#queryWaitMs + this.#queryWaitMs / 2 + Math.random() * this.#queryWaitMs,
      QUERY_MAX_MS,
    );
    this.#later(this.#queryWaitMs, () => this.#periodicQuery());
  }

  #query(): void {
    void this.#send({
      id: 0,
      response: false,
      questions: [{ name: this.#service, type: RR.PTR }],
      answers: [],
      authorities: [],
      additionals: [],
    });
  }

  #announce(): void {
    const r = this.#response(RECORD_TTL);
    if (r) void this.#send(r);
  }

  /** Our records; undefined when there is no address worth announcing. */
  #response(ttl: number): DnsMessage | undefined {
    // A TXT string holds at most 255 bytes.
    const addrs = this.#c.addresses().filter((a) => utf8Length(DNSADDR_PREFIX + a) <= 255);
    if (addrs.length === 0) return undefined;
    const ips = firstIps(addrs);
    const addressTtl = ttl > 0 ? ADDRESS_TTL : 0;
    const records: DnsRecord[] = [
      { name: this.#service, type: RR.PTR, ttl, data: this.#instance },
      {
        name: this.#instance,
        type: RR.SRV,
        ttl,
        flush: true,
        data: { priority: 0, weight: 0, port: SRV_PORT, target: this.#host },
      },
      {
        name: this.#instance,
        type: RR.TXT,
        ttl,
        flush: true,
        data: addrs.map((a) => DNSADDR_PREFIX + a),
      },
      ...ips.v4.map((ip): DnsRecord => ({
        name: this.#host,
        type: RR.A,
        ttl: addressTtl,
        flush: true,
        data: ip,
      })),
      ...ips.v6.map((ip): DnsRecord => ({
        name: this.#host,
        type: RR.AAAA,
        ttl: addressTtl,
        flush: true,
        data: ip,
      })),
    ];
    return {
      id: 0,
      response: true,
      authoritative: true,
      questions: [],
      answers: records,
      authorities: [],
      additionals: [],
    };
  }

  async #send(m: DnsMessage | undefined, to?: Deno.NetAddr): Promise<void> {
    if (!m) return;
    let bytes: Uint8Array;
    try {
      bytes = encodeDnsMessage(m);
    } catch (e) {
      this.#log.warn("mDNS cannot encode a packet", { error: errorMessage(e) });
      return;
    }
    const target: Deno.NetAddr = to ?? { transport: "udp", hostname: MDNS_GROUP, port: MDNS_PORT };
    // Multicast leaves through every interface socket; the wildcard socket is the fallback.
    const senders = to || this.#sockets.length === 1
      ? this.#sockets.slice(0, 1)
      : this.#sockets.slice(1);
    await Promise.all(
      senders.map((s) =>
        s.conn.send(bytes, target).catch((e) =>
          this.#log.debug("mDNS send failed", { via: s.local, error: errorMessage(e) })
        )
      ),
    );
  }

  // A failed receive (an ICMP error reported on the socket, a network going away) pauses the
  // loop, never ends it: a node whose mDNS stopped listening would never find its LAN again.
  async #receive(s: Socket): Promise<void> {
    let failures = 0;
    while (this.#running) {
      let data: Uint8Array;
      let from: Deno.Addr;
      try {
        [data, from] = await s.conn.receive(new Uint8Array(MAX_MDNS_PACKET + 1));
        failures = 0;
      } catch (e) {
        if (!this.#running) return;
        this.#receiveErrors++;
        const retryMs = Math.min(RECEIVE_RETRY_MS * 2 ** failures++, RECEIVE_RETRY_MAX_MS);
        const fields = { via: s.local, error: errorMessage(e), retryInMs: retryMs };
        if (failures === 1) this.#log.warn("mDNS receive failed; reading again", fields);
        else this.#log.debug("mDNS receive failed again", fields);
        await this.#pause(retryMs);
        continue;
      }
      if (!this.#running) return;
      let m: DnsMessage;
      try {
        m = decodeDnsMessage(data);
      } catch {
        continue;
      }
      if (m.response) this.#onResponse(m);
      else this.#onQuery(m, from as Deno.NetAddr);
    }
  }

  #onQuery(m: DnsMessage, from: Deno.NetAddr): void {
    if (m.authorities.length > 0) return; // a probe: zeroconf ignores them too
    for (const q of m.questions) {
      const forService = sameName(q.name, this.#service) &&
        (q.type === RR.PTR || q.type === RR.ANY);
      const forInstance = sameName(q.name, this.#instance) &&
        (q.type === RR.SRV || q.type === RR.TXT || q.type === RR.ANY);
      if (!forService && !forInstance) continue;
      // Known-answer suppression (RFC 6762 §7.1): the asker already has our PTR.
      const known = m.answers.some((a) =>
        a.type === RR.PTR && sameName(a.data as string, this.#instance) && a.ttl >= RECORD_TTL / 2
      );
      if (forService && known) continue;
      void this.#send(this.#response(RECORD_TTL), q.unicast ? from : undefined);
      return;
    }
  }

  #onResponse(m: DnsMessage): void {
    const now = this.#clock.now();
    const byPeer = new Map<string, string[]>();
    for (const r of [...m.answers, ...m.additionals]) {
      if (r.type !== RR.TXT || !nameEndsWith(r.name, this.#service)) continue;
      if (sameName(r.name, this.#instance) || r.ttl === 0) continue;
      for (const txt of r.data as string[]) {
        if (!txt.startsWith(DNSADDR_PREFIX)) continue;
        const text = txt.slice(DNSADDR_PREFIX.length);
        let id: string | undefined;
        try {
          id = multiaddr(text).getComponents().findLast((c) => c.name === "p2p")?.value;
        } catch {
          continue;
        }
        if (!id || id === this.#c.peerId) continue;
        const list = byPeer.get(id) ?? [];
        if (list.length < 16) list.push(text);
        byPeer.set(id, list);
      }
    }
    for (const [id, addrs] of byPeer) {
      const last = this.#reported.get(id);
      if (last !== undefined && now - last < REPORT_EVERY_MS) continue;
      this.#reported.delete(id);
      this.#reported.set(id, now);
      if (this.#reported.size > MAX_REMEMBERED) {
        this.#reported.delete(this.#reported.keys().next().value!);
      }
      this.#c.onPeer({ id, addrs });
    }
  }
}

function nameEndsWith(name: string, suffix: string): boolean {
  const n = name.replace(/\.$/, "").toLowerCase();
  const s = suffix.replace(/\.$/, "").toLowerCase();
  return n === s || n.endsWith("." + s);
}

function utf8Length(s: string): number {
  return new TextEncoder().encode(s).length;
}

function firstIps(addrs: string[]): { v4: string[]; v6: string[] } {
  let v4: string | undefined;
  let v6: string | undefined;
  for (const a of addrs) {
    const m = a.match(/^\/(ip4|ip6)\/([^/]+)/);
    if (m?.[1] === "ip4") v4 ??= m[2];
    if (m?.[1] === "ip6") v6 ??= m[2];
  }
  return { v4: v4 ? [v4] : [], v6: v6 ? [v6] : [] };
}

function ipv4Interfaces(): string[] {
  try {
    return [
      ...new Set(
        Deno.networkInterfaces()
          .filter((i) => i.family === "IPv4" && !i.address.startsWith("127."))
          .map((i) => i.address),
      ),
    ];
  } catch {
    return [];
  }
}

function randomName(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const length = 32 + Math.floor(Math.random() * 32);
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}
