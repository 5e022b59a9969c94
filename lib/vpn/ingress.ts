/** The receiving side: streams from peers (fast frames or `/edgevpn/0.1` packets) into the TUN. */
import type { NodeStream } from "../node/stream.ts";
import { errorMessage } from "../util/errors.ts";
import { icmpEchoTag, traceMark, tracing } from "../util/trace.ts";
import type { Logger } from "../util/logger.ts";
import type { VpnTun } from "./components.ts";
import { peerTraffic, type Traffic, type VpnCounters } from "./counters.ts";
import { FrameDecoder, FrameError } from "./frame.ts";
import { forEachPacket, sanitizeOffloadFrame, VIRTIO_NET_HDR_LENGTH } from "./gso.ts";
import { IpStreamSplitter, sourceKey } from "./packet.ts";
import { newSender, type Sender, SourceTable, SourceVerdict } from "./sources.ts";

/** At most one warning a minute about packets with a source their sender does not own. */
const SPOOF_WARN_MS = 60_000;

/**
 * Writes what peers send into the interface, in the form it takes: offload frames go in whole
 * when the interface has offload and are segmented (checksums completed) when it has not; plain
 * packets get a zeroed virtio header when it has. Failures are counted, never thrown.
 *
 * Before that, every packet's source address must be one its sender may use ({@link SourceTable}),
 * and every virtio header is checked and rebuilt ({@link sanitizeOffloadFrame}).
 *
 * @example
 * ```ts ignore
 * const ingress = new Ingress(tun, counters, logger);
 * await node.handle(FAST_PROTOCOL, (s) => ingress.serveFast(s, 0));
 * ```
 */
export class Ingress {
  readonly #tun: VpnTun;
  readonly #counters: VpnCounters;
  readonly #log: Logger;
  readonly #streams = new Set<NodeStream>();
  readonly #scratch: Uint8Array;
  readonly #splitter = new IpStreamSplitter();
  readonly #afterWrite: () => void;
  #wrote = false;
  #closed = false;
  #sources = SourceTable.empty();
  #spoofWarnedAt = -Infinity;
  /** Who sent the `/edgevpn/0.1` message being split, for the source check. */
  readonly #legacySender: Sender = newSender("");
  /** The sender of the `/edgevpn/0.1` message being split. */
  #legacyPeer: Traffic = { packets: 0, bytes: 0 };

  /**
   * `afterWrite` runs after each chunk that put packets into the interface: the kernel often
   * answers at once (an ICMP echo reply, a TCP ACK), and reading the answer right away saves
   * the wake-up of the interface's poll thread.
   */
  constructor(tun: VpnTun, counters: VpnCounters, log: Logger, afterWrite: () => void = () => {}) {
    this.#tun = tun;
    this.#counters = counters;
    this.#log = log;
    this.#afterWrite = afterWrite;
    this.#scratch = new Uint8Array(tun.offload ? 0 : 0xffff);
  }

  /** Replaces the table of who may send from which address (on every ledger change). */
  set sources(table: SourceTable) {
    this.#sources = table;
  }

  /** Streams being served now. */
  get streams(): number {
    return this.#streams.size;
  }

  /**
   * Serves one fast stream until the peer ends it: `headerLength` 10 for
   * `/edgevpn/fast-gso/1.0.0`, 0 for `/edgevpn/fast/1.0.0`. An impossible frame resets it.
   */
  async serveFast(
    stream: NodeStream,
    headerLength: 0 | typeof VIRTIO_NET_HDR_LENGTH,
  ): Promise<void> {
    if (this.#closed) return stream.reset();
    const decoder = new FrameDecoder(headerLength);
    const traffic = headerLength > 0
      ? this.#counters.received.fastGso
      : this.#counters.received.fast;
    const peer = peerTraffic(this.#counters, stream.remotePeer).received;
    const sender = newSender(stream.remotePeer);
    const onFrame = headerLength > 0
      ? (frame: Uint8Array) => {
        if (!this.#admits(frame, VIRTIO_NET_HDR_LENGTH, sender)) return;
        const bytes = frame.length - VIRTIO_NET_HDR_LENGTH;
        traffic.packets++;
        traffic.bytes += bytes;
        peer.packets++;
        peer.bytes += bytes;
        this.#writeOffloadFrame(frame);
      }
      : (packet: Uint8Array) => {
        if (!this.#admits(packet, 0, sender)) return;
        traffic.packets++;
        traffic.bytes += packet.length;
        peer.packets++;
        peer.bytes += packet.length;
        this.#writePacket(packet);
      };
    this.#streams.add(stream);
    try {
      // Push mode: each chunk reaches the interface in the same task that decrypted it.
      await stream.consume((chunk) => {
        if (tracing) traceMark("ingress.chunk");
        decoder.push(chunk, onFrame);
        this.#written();
      });
      await stream.close();
    } catch (e) {
      if (e instanceof FrameError) {
        this.#counters.inbound.badFrame++;
        this.#log.debug("bad frame: stream reset", { peer: stream.remotePeer, error: e.message });
      }
      stream.reset();
    } finally {
      this.#streams.delete(stream);
    }
  }

  /**
   * Takes the content of one `/edgevpn/0.1` stream and writes the IP packets in it (Go peers
   * send one per stream). Returns false, to reset the stream, when it is malformed.
   */
  legacyMessage = (peer: string, message: Uint8Array): boolean => {
    if (this.#closed) return false;
    if (tracing) traceMark("ingress.message");
    this.#legacyPeer = peerTraffic(this.#counters, peer).received;
    this.#legacySender.peer = peer;
    this.#legacySender.table = undefined;
    this.#splitter.reset();
    try {
      this.#splitter.push(message, this.#onLegacyPacket);
    } catch (e) {
      this.#counters.inbound.badPacket++;
      this.#log.debug("bad /edgevpn/0.1 stream: reset", { peer, error: errorMessage(e) });
      return false;
    } finally {
      this.#written();
    }
    if (this.#splitter.pendingBytes === 0) return true;
    this.#counters.inbound.badPacket++;
    return false;
  };

  /** Resets every stream being served; later streams are reset at once. */
  close(): void {
    this.#closed = true;
    for (const s of this.#streams) s.reset();
    this.#streams.clear();
  }

  #written(): void {
    if (!this.#wrote) return;
    this.#wrote = false;
    this.#afterWrite();
  }

  #onLegacyPacket = (packet: Uint8Array): void => {
    if (!this.#admits(packet, 0, this.#legacySender)) return;
    const traffic: Traffic = this.#counters.received.legacy;
    traffic.packets++;
    traffic.bytes += packet.length;
    this.#legacyPeer.packets++;
    this.#legacyPeer.bytes += packet.length;
    this.#writePacket(packet);
  };

  #writeOffloadFrame(frame: Uint8Array): void {
    if (sanitizeOffloadFrame(frame) !== undefined) {
      this.#counters.inbound.badOffload++;
      return;
    }
    this.#wrote = true;
    if (this.#tun.offload) {
      if (!this.#tun.writeSync(frame)) this.#counters.inbound.tunWriteErrors++;
      if (tracing) traceMark("tun.write", icmpEchoTag(frame, VIRTIO_NET_HDR_LENGTH));
      return;
    }
    try {
      forEachPacket(frame, this.#scratch, this.#writePlain);
    } catch {
      this.#counters.inbound.badOffload++;
    }
  }

  // Whether the packet at `offset` of `bytes` may come from `sender`; counts it when not.
  #admits(bytes: Uint8Array, offset: number, sender: Sender): boolean {
    const verdict = this.#sources.check(bytes, offset, sender);
    if (verdict === SourceVerdict.OK) return true;
    const inbound = this.#counters.inbound;
    if (verdict === SourceVerdict.NOT_OWNED) inbound.spoofedSource++;
    else inbound.unknownSource++;
    const now = Date.now();
    if (now - this.#spoofWarnedAt >= SPOOF_WARN_MS) {
      this.#spoofWarnedAt = now;
      this.#log.warn("dropped packets whose source address the sending peer does not own", {
        peer: sender.peer,
        source: sourceKey(bytes.subarray(offset)),
        spoofed: inbound.spoofedSource,
        unknown: inbound.unknownSource,
      });
    }
    return false;
  }

  #writePlain = (packet: Uint8Array): void => this.#writePacket(packet);

  #writePacket(packet: Uint8Array): void {
    this.#wrote = true;
    if (!this.#tun.writePacketSync(packet)) this.#counters.inbound.tunWriteErrors++;
    if (tracing) traceMark("tun.write", icmpEchoTag(packet, 0));
  }
}
