/** The Linux TUN device: open, configure with ioctls, and move packets without blocking the event loop. */

import { setImmediate } from "node:timers";
import { syscallError, TunError } from "./errors.ts";
import { Errno, libc, Linux } from "./libc.ts";
import {
  addInterfaceIPv6,
  ifreq,
  type InterfaceAddress,
  interfaceIndex,
  interfaceMtu,
  setInterfaceIPv4,
  setInterfaceMtu,
  setInterfaceTxQueueLength,
  setInterfaceUp,
} from "./netdev.ts";
import { cString, lastErrno, readCString } from "./ptr.ts";
import { ipPacketLength, VIRTIO_NET_HDR_LENGTH } from "./tun_frame.ts";

/** Largest frame an offload device hands over: the virtio header plus a 64 KiB IP packet. */
export const MAX_OFFLOAD_FRAME = VIRTIO_NET_HDR_LENGTH + 0xffff;

/**
 * How to create and configure a TUN device; every field is optional.
 *
 * @example
 * ```ts
 * const ipv4 = { address: new Uint8Array([10, 1, 0, 1]), prefixLength: 24 };
 * const options: TunOptions = { name: "edgevpn0", ipv4, mtu: 1420, offload: true };
 * ```
 */
export interface TunOptions {
  /**
   * Interface name, or a kernel template such as `edgevpn%d`; at most 15 bytes. Empty (the
   * default) lets the kernel pick `tunN`. {@link TunDevice.name} holds the name it assigned.
   */
  name?: string;
  /**
   * Enable `IFF_VNET_HDR` and `TUNSETOFFLOAD` (checksum, TSO4, TSO6): frames carry a
   * 10-byte `virtio_net_hdr` and may be TCP super-packets of up to 64 KiB, in both directions.
   */
  offload?: boolean;
  /** IPv4 address and prefix, e.g. `10.1.0.1/24` parsed (`parseCidr` of `lib/net`). */
  ipv4?: InterfaceAddress;
  /** IPv6 address and prefix, e.g. `fd00::1/64` parsed (needs an MTU of at least 1280). */
  ipv6?: InterfaceAddress;
  /** Link MTU in bytes. */
  mtu?: number;
  /** Transmit queue length in packets. */
  txQueueLength?: number;
  /** Bring the link up after configuring it (default true). */
  up?: boolean;
  /** The clone device (default `/dev/net/tun`). */
  devicePath?: string;
}

/**
 * Packet counters of a device; `rx` is what was read from the kernel, `tx` what was written.
 *
 * @example
 * ```ts
 * const { rxPackets, readWaits } = tun.stats;
 * const packetsPerWakeUp = rxPackets / Math.max(1, readWaits);
 * ```
 */
export interface TunStats {
  rxPackets: number;
  rxBytes: number;
  /** Frames longer than the read buffer (cut by the kernel), dropped. */
  rxTruncated: number;
  txPackets: number;
  txBytes: number;
  /** Frames the kernel rejected (malformed, link down), dropped. */
  txDropped: number;
  /** Writes that found the device queue full (`EAGAIN`) and had to wait. */
  txWouldBlock: number;
  /** Times a reader found no packet and waited on `poll` in a worker thread. */
  readWaits: number;
}

/**
 * Counters of a device that has seen no traffic.
 *
 * @example
 * ```ts
 * emptyTunStats().rxPackets; // 0
 * ```
 */
export function emptyTunStats(): TunStats {
  return {
    rxPackets: 0,
    rxBytes: 0,
    rxTruncated: 0,
    txPackets: 0,
    txBytes: 0,
    txDropped: 0,
    txWouldBlock: 0,
    readWaits: 0,
  };
}

const POLLFD_SIZE = 8;
const EVENTFD_SIGNAL = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]);

/**
 * An open TUN device (`IFF_TUN | IFF_NO_PI`, optionally `IFF_VNET_HDR`), non-blocking.
 *
 * Reads drain the device with synchronous `read` calls until `EAGAIN`, then wait for the next
 * packet with `poll` on a worker thread, so the event loop is never blocked. `close()` wakes
 * that `poll` through an eventfd and resolves once every descriptor is released.
 *
 * Configuration (`open` options, `setMtu`, `setIPv4`, ...) addresses the interface by name
 * through a socket created on the calling thread, so it acts in that thread's network
 * namespace; reading and writing use the descriptor and work from anywhere.
 *
 * @example
 * ```ts
 * const ipv4 = { address: new Uint8Array([10, 1, 0, 1]), prefixLength: 24 }; // 10.1.0.1/24
 * const tun = TunDevice.open({ name: "edgevpn%d", ipv4, mtu: 1420 });
 * const bufs = Array.from({ length: 64 }, () => new Uint8Array(tun.frameSize));
 * const lengths = new Uint32Array(64);
 * const n = await tun.readBatch(bufs, lengths); // 0 once closed
 * for (let i = 0; i < n; i++) route(bufs[i].subarray(0, lengths[i]));
 * await tun.close();
 * ```
 */
export class TunDevice {
  /** The interface name the kernel assigned. */
  readonly name: string;
  /** Whether frames carry a `virtio_net_hdr` (see {@link TunOptions.offload}). */
  readonly offload: boolean;

  readonly #fd: number;
  readonly #wakeFd: number;
  readonly #readPollFds: Uint8Array;
  readonly #writePollFds: Uint8Array;
  readonly #stats: TunStats = emptyTunStats();
  #mtu: number;
  #closed = false;
  #closing: Promise<void> | undefined;
  #reading = false;
  #readPoll: Promise<unknown> | undefined;
  #writePoll: Promise<unknown> | undefined;
  #readWithoutWait = false;
  #staging: Uint8Array | undefined;

  private constructor(fd: number, wakeFd: number, name: string, offload: boolean) {
    this.#fd = fd;
    this.#wakeFd = wakeFd;
    this.name = name;
    this.offload = offload;
    this.#readPollFds = pollFds(fd, Linux.POLLIN, wakeFd);
    this.#writePollFds = pollFds(fd, Linux.POLLOUT, wakeFd);
    this.#mtu = interfaceMtu(name);
  }

  /**
   * Creates the interface and applies the options, in the order MTU, tx queue length, IPv4,
   * IPv6, link up. On any failure the device is closed again and a {@link TunError} thrown:
   * `TUN_PERMISSION_DENIED` without root/`CAP_NET_ADMIN`, `TUN_UNAVAILABLE` without
   * `/dev/net/tun`, `TUN_BUSY` when another open device holds the name, `TUN_INVALID` for a
   * bad name, address or value, `TUN_ADDRESS_IN_USE` for a duplicate address.
   *
   * @example
   * ```ts
   * const ipv4 = { address: new Uint8Array([10, 1, 0, 1]), prefixLength: 24 }; // 10.1.0.1/24
   * const tun = TunDevice.open({ name: "edgevpn0", ipv4, mtu: 1420 });
   * tun.name; // "edgevpn0"
   * ```
   */
  static open(options: TunOptions = {}): TunDevice {
    const ifr = ifreq(options.name ?? "");
    const path = options.devicePath ?? "/dev/net/tun";
    const fd = libc().open(cString(path), Linux.O_RDWR | Linux.O_NONBLOCK | Linux.O_CLOEXEC, 0);
    if (fd < 0) throw syscallError(`Cannot open ${path}`, "open", lastErrno());
    let wakeFd = -1;
    try {
      const offload = options.offload ?? false;
      const flags = Linux.IFF_TUN | Linux.IFF_NO_PI | (offload ? Linux.IFF_VNET_HDR : 0);
      new DataView(ifr.buffer).setUint16(16, flags, true);
      if (libc().ioctl(fd, BigInt(Linux.TUNSETIFF), ifr) < 0) {
        throw syscallError(
          `Cannot create TUN interface ${JSON.stringify(options.name ?? "")}`,
          "ioctl(TUNSETIFF)",
          lastErrno(),
        );
      }
      const name = readCString(ifr, 0, Linux.IFNAMSIZ);
      if (offload) {
        const features = Linux.TUN_F_CSUM | Linux.TUN_F_TSO4 | Linux.TUN_F_TSO6;
        if (libc().ioctlInt(fd, BigInt(Linux.TUNSETOFFLOAD), BigInt(features)) < 0) {
          throw syscallError(
            `Cannot enable offload on ${name}`,
            "ioctl(TUNSETOFFLOAD)",
            lastErrno(),
          );
        }
      }
      wakeFd = libc().eventfd(0, Linux.EFD_NONBLOCK | Linux.EFD_CLOEXEC);
      if (wakeFd < 0) {
        throw syscallError(`Cannot create eventfd for ${name}`, "eventfd", lastErrno());
      }
      const device = new TunDevice(fd, wakeFd, name, offload);
      if (options.mtu !== undefined) device.setMtu(options.mtu);
      if (options.txQueueLength !== undefined) device.setTxQueueLength(options.txQueueLength);
      if (options.ipv4 !== undefined) device.setIPv4(options.ipv4);
      if (options.ipv6 !== undefined) device.addIPv6(options.ipv6);
      if (options.up ?? true) device.setUp(true);
      return device;
    } catch (e) {
      if (wakeFd >= 0) libc().close(wakeFd);
      libc().close(fd);
      throw e;
    }
  }

  /** Live packet counters (the same object on every access; do not modify). */
  get stats(): Readonly<TunStats> {
    return this.#stats;
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The file descriptor, for diagnostics; do not read, write or close it directly. */
  get fd(): number {
    return this.#fd;
  }

  /** The MTU last set through this object (or read when it was opened). */
  get mtu(): number {
    return this.#mtu;
  }

  /**
   * A read buffer size that no frame exceeds: {@link MAX_OFFLOAD_FRAME} with offload,
   * otherwise the MTU.
   */
  get frameSize(): number {
    return this.offload ? MAX_OFFLOAD_FRAME : this.#mtu;
  }

  /** The kernel's interface index. */
  get index(): number {
    return interfaceIndex(this.name);
  }

  /** Sets the link MTU. */
  setMtu(mtu: number): void {
    this.#assertOpen();
    setInterfaceMtu(this.name, mtu);
    this.#mtu = mtu;
  }

  /** Sets the transmit queue length. */
  setTxQueueLength(length: number): void {
    this.#assertOpen();
    setInterfaceTxQueueLength(this.name, length);
  }

  /** Sets the IPv4 address and prefix (`10.1.0.1/24`), replacing any previous one. */
  setIPv4(cidr: InterfaceAddress): void {
    this.#assertOpen();
    setInterfaceIPv4(this.name, cidr);
  }

  /** Adds an IPv6 address and prefix (`fd00::1/64`). */
  addIPv6(cidr: InterfaceAddress): void {
    this.#assertOpen();
    addInterfaceIPv6(this.name, cidr);
  }

  /** Brings the link up or down. */
  setUp(up = true): void {
    this.#assertOpen();
    setInterfaceUp(this.name, up);
  }

  /**
   * Reads one frame into `buffer` without waiting: returns its length, or 0 when no packet is
   * queued. Frames longer than the buffer are dropped and counted in `rxTruncated`.
   */
  readSync(buffer: Uint8Array): number {
    this.#assertOpen();
    if (buffer.byteLength === 0) {
      throw new TunError("TUN_INVALID", `Cannot read ${this.name}: the buffer is empty`);
    }
    for (;;) {
      const n = Number(libc().read(this.#fd, buffer, BigInt(buffer.byteLength)));
      if (n === buffer.byteLength && this.#truncated(buffer)) {
        this.#stats.rxTruncated++;
        continue;
      }
      if (n > 0) {
        this.#stats.rxPackets++;
        this.#stats.rxBytes += n;
        return n;
      }
      if (n === 0) return 0;
      const errno = lastErrno();
      if (errno === Errno.EAGAIN) return 0;
      if (errno !== Errno.EINTR) {
        throw syscallError(`Cannot read from ${this.name}`, "read", errno);
      }
    }
  }

  /**
   * Fills `buffers[0..n)` with frames (each from offset 0) and `lengths[0..n)` with their sizes;
   * waits without blocking the event loop when none is queued. Resolves with n ≥ 1, or 0 once
   * the device is closed. Under sustained load it yields to the event loop (`setImmediate`)
   * before each batch so other I/O keeps running. One reader at a time.
   */
  async readBatch(buffers: Uint8Array[], lengths: Uint32Array | number[]): Promise<number> {
    if (this.#reading) {
      throw new TunError("TUN_READ_IN_PROGRESS", `Cannot read ${this.name}: a read is pending`);
    }
    this.#reading = true;
    try {
      if (this.#readWithoutWait) await yieldToEventLoop();
      for (;;) {
        if (this.#closed) return 0;
        const n = this.#drain(buffers, lengths);
        if (n > 0) {
          this.#readWithoutWait = true;
          return n;
        }
        this.#readWithoutWait = false;
        this.#stats.readWaits++;
        this.#readPoll = libc().pollWait(this.#readPollFds, 2n, -1);
        await this.#readPoll;
        this.#readPoll = undefined;
      }
    } finally {
      this.#reading = false;
    }
  }

  /**
   * Yields every frame until the device is closed. Each frame is a view into a reused buffer,
   * valid until the next iteration step.
   *
   * @example
   * ```ts
   * for await (const frame of tun.frames()) handle(frame);
   * ```
   */
  async *frames(batchSize = 64): AsyncGenerator<Uint8Array, void, undefined> {
    const buffers = Array.from({ length: batchSize }, () => new Uint8Array(this.frameSize));
    const lengths = new Uint32Array(batchSize);
    for (;;) {
      const n = await this.readBatch(buffers, lengths);
      if (n === 0) return;
      for (let i = 0; i < n; i++) yield buffers[i].subarray(0, lengths[i]);
    }
  }

  /**
   * Writes one frame (with offload: `virtio_net_hdr` + packet) synchronously. Returns false,
   * writing nothing, when the device queue is full: wait for {@link writable} and retry. A
   * frame the kernel rejects (malformed, link down) is dropped, counted in `txDropped`, and
   * true is returned.
   */
  writeSync(frame: Uint8Array): boolean {
    this.#assertOpen();
    for (;;) {
      const n = Number(libc().write(this.#fd, frame, BigInt(frame.byteLength)));
      if (n >= 0) {
        this.#stats.txPackets++;
        this.#stats.txBytes += n;
        return true;
      }
      const errno = lastErrno();
      if (errno === Errno.EINTR) continue;
      if (errno === Errno.EAGAIN) {
        this.#stats.txWouldBlock++;
        return false;
      }
      if (errno === Errno.EBADF || errno === Errno.EBADFD) {
        throw syscallError(`Cannot write to ${this.name}`, "write", errno);
      }
      this.#stats.txDropped++;
      return true;
    }
  }

  /**
   * Writes one frame, waiting for room when the device queue is full.
   * Rejects with `TUN_CLOSED` if the device is closed while waiting.
   */
  async write(frame: Uint8Array): Promise<void> {
    while (!this.writeSync(frame)) await this.writable();
  }

  /**
   * Writes one plain IP packet: as is without offload, behind a zeroed `virtio_net_hdr` (no
   * GSO, checksums complete) with offload. Same return value as {@link writeSync}.
   */
  writePacketSync(packet: Uint8Array): boolean {
    if (!this.offload) return this.writeSync(packet);
    this.#staging ??= new Uint8Array(MAX_OFFLOAD_FRAME);
    if (packet.length > MAX_OFFLOAD_FRAME - VIRTIO_NET_HDR_LENGTH) {
      this.#stats.txDropped++;
      return true;
    }
    this.#staging.set(packet, VIRTIO_NET_HDR_LENGTH);
    return this.writeSync(this.#staging.subarray(0, VIRTIO_NET_HDR_LENGTH + packet.length));
  }

  /** Resolves when the device can take a write again (or is closed). */
  async writable(): Promise<void> {
    this.#assertOpen();
    if (this.#writePoll === undefined) {
      this.#writePoll = libc().pollWait(this.#writePollFds, 2n, -1);
      this.#writePoll.finally(() => this.#writePoll = undefined);
    }
    await this.#writePoll;
    this.#assertOpen();
  }

  /**
   * Closes the device: a pending `readBatch` resolves 0, a pending `writable` rejects with
   * `TUN_CLOSED`, and the descriptors are closed once no worker thread uses them. The
   * interface disappears with the last descriptor. Safe to call more than once.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    // The eventfd stays readable from now on, so every poll in flight or to come returns.
    libc().write(this.#wakeFd, EVENTFD_SIGNAL, 8n);
    this.#closing = Promise.allSettled([this.#readPoll, this.#writePoll]).then(() => {
      libc().close(this.#fd);
      libc().close(this.#wakeFd);
    });
    return this.#closing;
  }

  /** Same as {@link close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #drain(buffers: Uint8Array[], lengths: Uint32Array | number[]): number {
    let n = 0;
    while (n < buffers.length) {
      const length = this.readSync(buffers[n]);
      if (length === 0) break;
      lengths[n++] = length;
    }
    return n;
  }

  // The kernel cuts a frame to the buffer and returns the buffer's size, so a full buffer is
  // checked against the IP length field.
  #truncated(frame: Uint8Array): boolean {
    const packet = this.offload ? frame.subarray(VIRTIO_NET_HDR_LENGTH) : frame;
    return ipPacketLength(packet) > packet.length;
  }

  #assertOpen(): void {
    if (this.#closed) throw new TunError("TUN_CLOSED", `Cannot use ${this.name}: it is closed`);
  }
}

function pollFds(fd: number, events: number, wakeFd: number): Uint8Array {
  const fds = new Uint8Array(2 * POLLFD_SIZE);
  const view = new DataView(fds.buffer);
  view.setInt32(0, fd, true);
  view.setInt16(4, events, true);
  view.setInt32(POLLFD_SIZE, wakeFd, true);
  view.setInt16(POLLFD_SIZE + 4, Linux.POLLIN, true);
  return fds;
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
