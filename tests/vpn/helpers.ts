/** Test support for the VPN: an in-memory TUN device, packet builders, meshes with a VPN. */
import { emptyTunStats, MAX_OFFLOAD_FRAME, type TunOptions, type TunStats } from "../../ffi/tun.ts";
import type { NetworkConfig } from "../../lib/config/network.ts";
import type { OwnershipMode } from "../../lib/ledger/policy.ts";
import type { Mesh } from "../../lib/mesh/mesh.ts";
import { startLoopbackMesh } from "../mesh/helpers.ts";
import { vpnComponentsOf, type VpnTun } from "../../lib/vpn/components.ts";
import type { VpnOptions } from "../../lib/vpn/config.ts";
import {
  internetChecksum,
  pseudoHeaderSum,
  VirtioNetGsoType,
  VirtioNetHdrFlag,
  writeVirtioNetHdr,
} from "../../lib/vpn/gso.ts";
import { createVpn, type Vpn } from "../../lib/vpn/vpn.ts";
import { parseIPv4 } from "../../lib/net/ip.ts";

/**
 * A TUN device in memory: `inject` queues frames the VPN will read (as if the kernel sent them);
 * frames the VPN writes land in `written`.
 */
export class MemoryTun implements VpnTun {
  readonly name: string;
  readonly offload: boolean;
  readonly mtu: number;
  readonly options: TunOptions;
  readonly written: Uint8Array[] = [];
  readonly stats: TunStats = emptyTunStats();
  #inbox: Uint8Array[] = [];
  #wake: (() => void) | undefined;
  #closed = false;
  #onWrite: (() => void)[] = [];
  /** Writes fail (return false) while set. */
  refuseWrites = false;
  #readError: Error | undefined;

  constructor(options: TunOptions) {
    this.options = options;
    this.name = options.name ?? "mem0";
    this.offload = options.offload ?? false;
    this.mtu = options.mtu ?? 1420;
  }

  get frameSize(): number {
    return this.offload ? MAX_OFFLOAD_FRAME : this.mtu;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Queues frames for the VPN to read (copies them). */
  inject(...frames: Uint8Array[]): void {
    for (const f of frames) this.#inbox.push(f.slice());
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Makes every later read throw `error`, as a device that went away does. */
  failReads(error: Error): void {
    this.#readError = error;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async readBatch(buffers: Uint8Array[], lengths: Uint32Array): Promise<number> {
    for (;;) {
      if (this.#closed) return 0;
      if (this.#readError) throw this.#readError;
      if (this.#inbox.length > 0) {
        let n = 0;
        while (n < buffers.length && this.#inbox.length > 0) {
          const frame = this.#inbox.shift()!;
          if (frame.length > buffers[n].length) {
            this.stats.rxTruncated++;
            continue;
          }
          buffers[n].set(frame);
          lengths[n++] = frame.length;
          this.stats.rxPackets++;
          this.stats.rxBytes += frame.length;
        }
        if (n > 0) return n;
        continue;
      }
      this.stats.readWaits++;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }

  readSync(buffer: Uint8Array): number {
    if (this.#closed) throw new Error("closed");
    for (;;) {
      const frame = this.#inbox.shift();
      if (frame === undefined) return 0;
      if (frame.length > buffer.length) {
        this.stats.rxTruncated++;
        continue;
      }
      buffer.set(frame);
      this.stats.rxPackets++;
      this.stats.rxBytes += frame.length;
      return frame.length;
    }
  }

  writeSync(frame: Uint8Array): boolean {
    if (this.#closed) throw new Error("closed");
    if (this.refuseWrites) return false;
    // A copy as a plain Uint8Array (what libp2p hands over may be a Buffer view).
    this.written.push(new Uint8Array(frame));
    this.stats.txPackets++;
    this.stats.txBytes += frame.length;
    for (const w of this.#onWrite.splice(0)) w();
    return true;
  }

  writePacketSync(packet: Uint8Array): boolean {
    if (!this.offload) return this.writeSync(packet);
    const frame = new Uint8Array(10 + packet.length);
    frame.set(packet, 10);
    return this.writeSync(frame);
  }

  /** Resolves once at least `count` frames were written; rejects after `timeoutMs`. */
  async waitWritten(count: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.written.length < count) {
      if (Date.now() > deadline) {
        throw new Error(
          `timed out: ${this.written.length}/${count} frames written to ${this.name}`,
        );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.#onWrite.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): Promise<void> {
    this.#closed = true;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
    return Promise.resolve();
  }
}

/**
 * An IPv4 UDP packet from `src` to `dst` with `payload` (or `size` bytes of a counter pattern),
 * checksums filled in.
 */
export function udp4(src: string, dst: string, payload: Uint8Array | number, id = 1): Uint8Array {
  const body = typeof payload === "number"
    ? Uint8Array.from({ length: payload }, (_, i) => (i * 7 + id) & 0xff)
    : payload;
  const p = new Uint8Array(28 + body.length);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, p.length);
  v.setUint16(4, id & 0xffff);
  p[8] = 64;
  p[9] = 17;
  v.setUint32(12, parseIPv4(src)!);
  v.setUint32(16, parseIPv4(dst)!);
  v.setUint16(10, internetChecksum(p.subarray(0, 20)));
  v.setUint16(20, 1000);
  v.setUint16(22, 2000);
  v.setUint16(24, 8 + body.length);
  p.set(body, 28);
  return p;
}

/** The same packet behind a zeroed virtio header (what an offload TUN hands over). */
export function withVnetHeader(packet: Uint8Array): Uint8Array {
  const f = new Uint8Array(10 + packet.length);
  f.set(packet, 10);
  return f;
}

/**
 * A virtio frame holding a TCPv4 super-packet from `src` to `dst` (`payload` bytes, `mss` per
 * segment) with the partial checksum the kernel leaves, as an offload TUN hands it over.
 */
export function tcp4SuperFrame(src: string, dst: string, payload: number, mss: number): Uint8Array {
  const packet = new Uint8Array(40 + payload);
  const v = new DataView(packet.buffer);
  packet[0] = 0x45;
  v.setUint16(2, packet.length);
  v.setUint16(4, 7);
  packet[6] = 0x40;
  packet[8] = 64;
  packet[9] = 6;
  v.setUint32(12, parseIPv4(src)!);
  v.setUint32(16, parseIPv4(dst)!);
  v.setUint16(10, internetChecksum(packet.subarray(0, 20)));
  v.setUint16(20, 40000);
  v.setUint16(22, 5201);
  v.setUint32(24, 1000);
  v.setUint32(28, 1);
  packet[32] = 5 << 4;
  packet[33] = 0x18; // PSH, ACK
  v.setUint16(34, 64240);
  for (let i = 40; i < packet.length; i++) packet[i] = (i * 13) & 0xff;
  const partial = 0xffff ^
    internetChecksum(new Uint8Array(), pseudoHeaderSum(packet, 6, 20 + payload));
  v.setUint16(36, partial);
  const frame = new Uint8Array(10 + packet.length);
  writeVirtioNetHdr(frame, {
    flags: VirtioNetHdrFlag.NEEDS_CSUM,
    gsoType: VirtioNetGsoType.TCPV4,
    hdrLen: 40,
    gsoSize: mss,
    csumStart: 20,
    csumOffset: 16,
  });
  frame.set(packet, 10);
  return frame;
}

/** True when an IPv4 TCP/UDP packet's header and transport checksums verify. */
export function checksumsValid(packet: Uint8Array): boolean {
  const ihl = (packet[0] & 0x0f) * 4;
  const transport = packet.subarray(ihl);
  return internetChecksum(packet.subarray(0, ihl)) === 0 &&
    internetChecksum(transport, pseudoHeaderSum(packet, packet[9], transport.length)) === 0;
}

/** Starts a mesh (loopback, heartbeats every second) without a VPN. */
export function startMesh(
  network: NetworkConfig,
  bootstrap: string[] = [],
  mode: OwnershipMode = "enforce",
): Promise<Mesh> {
  return startLoopbackMesh(network, { bootstrap, mode });
}

/** Waits until `vpn` routes `address` to a peer. */
export async function waitForRoute(vpn: Vpn, address: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!vpn.routes().some((r) => r.address === address && r.status === "ok")) {
    if (Date.now() > deadline) {
      throw new Error(
        `no route to ${address} after ${timeoutMs} ms: ${JSON.stringify(vpn.routes())}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A mesh with a VPN on an in-memory TUN, on loopback. */
export interface VpnNodeUnderTest {
  network: NetworkConfig;
  mesh: Mesh;
  vpn: Vpn;
  tun: MemoryTun;
  stop(): Promise<void>;
}

/** Starts a mesh (loopback, given bootstrap) and a VPN on a {@link MemoryTun}. */
export async function startVpnNode(
  network: NetworkConfig,
  options: VpnOptions & {
    bootstrap?: string[];
    mode?: OwnershipMode;
    tunOffload?: boolean;
  },
): Promise<VpnNodeUnderTest> {
  const mesh = await startMesh(network, options.bootstrap ?? [], options.mode ?? "enforce");
  let tun: MemoryTun | undefined;
  const vpn = createVpn(
    vpnComponentsOf(mesh, {
      openTun: (o) => {
        if (o.offload && options.tunOffload === false) throw new Error("offload refused");
        return tun = new MemoryTun(o);
      },
    }),
    { announceIntervalMs: 500, ...options },
  );
  try {
    await vpn.start();
  } catch (e) {
    await mesh.stop();
    throw e;
  }
  return {
    network,
    mesh,
    vpn,
    tun: tun!,
    stop: async () => {
      await vpn.stop();
      await mesh.stop();
    },
  };
}
