/** What the VPN service needs from the rest of the node, as narrow interfaces. */
import { TunDevice, type TunOptions, type TunStats } from "../../ffi/tun.ts";
import type { Ledger } from "../ledger/ledger.ts";
import type { Mesh } from "../mesh/mesh.ts";
import type { EdgeNode } from "../node/node.ts";
import type { Logger } from "../util/logger.ts";

/** The node's side: serving and opening streams, and the gater's blocked ranges. */
export type VpnNode = Pick<
  EdgeNode,
  | "peerId"
  | "handle"
  | "handleMessages"
  | "unhandle"
  | "dialProtocol"
  | "sendOnce"
  | "flushSends"
  | "setBlockedCidrs"
  | "addEventListener"
  | "removeEventListener"
>;

/** The ledger's side: `machines` entries, owner liveness, announcing, change events. */
export type VpnLedger = Pick<
  Ledger,
  | "getKey"
  | "currentStorage"
  | "isOwnerLive"
  | "add"
  | "announce"
  | "addEventListener"
  | "removeEventListener"
>;

/**
 * The TUN device as the VPN uses it; {@link TunDevice} is one. Tests may pass an in-memory
 * device.
 */
export interface VpnTun {
  readonly name: string;
  /** Frames carry a 10-byte `virtio_net_hdr` and may be TCP super-packets. */
  readonly offload: boolean;
  readonly mtu: number;
  /** A read buffer size no frame exceeds. */
  readonly frameSize: number;
  readonly stats: Readonly<TunStats>;
  /** Fills buffers with frames; resolves with how many, 0 once closed. One reader at a time. */
  readBatch(buffers: Uint8Array[], lengths: Uint32Array): Promise<number>;
  /** Reads one queued frame into `buffer` without waiting; 0 when none is queued. */
  readSync(buffer: Uint8Array): number;
  /** Writes one frame (with the virtio header when `offload`); false when the queue is full. */
  writeSync(frame: Uint8Array): boolean;
  /** Writes one plain, fully checksummed IP packet whatever the offload mode. */
  writePacketSync(packet: Uint8Array): boolean;
  close(): Promise<void>;
}

/** Opens and configures the device (throws when it cannot). */
export type OpenTun = (options: TunOptions) => VpnTun;

/**
 * The components of {@link createVpn}.
 *
 * @example
 * ```ts ignore
 * const components: VpnComponents = vpnComponentsOf(mesh, { logger });
 * ```
 */
export interface VpnComponents {
  node: VpnNode;
  ledger: VpnLedger;
  /** Go's admission rule for VPN streams: the peer owns a `machines` entry. */
  hasMachine: (peerId: string) => boolean;
  /** Default: {@link TunDevice.open}. */
  openTun?: OpenTun;
  logger?: Logger;
}

/**
 * The components of a VPN running on `mesh`.
 *
 * @example
 * ```ts ignore
 * const vpn = createVpn(vpnComponentsOf(mesh, { logger }), { address: "10.1.0.2/24" });
 * ```
 */
export function vpnComponentsOf(
  mesh: Mesh,
  extra: { openTun?: OpenTun; logger?: Logger } = {},
): VpnComponents {
  return {
    node: mesh.node,
    ledger: mesh.ledger,
    hasMachine: (peerId) => mesh.hasMachine(peerId),
    openTun: extra.openTun ?? ((options) => TunDevice.open(options)),
    logger: extra.logger,
  };
}
