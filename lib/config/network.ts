/** The network configuration carried by a token: OTP secrets, room, rendezvous, mDNS tag. */

import type { OtpSettings } from "../crypto/otp.ts";

export type { OtpSettings };

/**
 * Everything a token holds (Go's `YAMLConnectionConfig`).
 *
 * @example
 * ```ts
 * const c: NetworkConfig = {
 *   otp: {
 *     dht: { interval: 360, key: "k1", length: 43 },
 *     crypto: { interval: 360, key: "k2", length: 43 },
 *   },
 *   room: "r",
 *   rendezvous: "z",
 *   mdns: "m",
 *   maxMessageSize: 20971520,
 * };
 * ```
 */
export interface NetworkConfig {
  otp: { dht: OtpSettings; crypto: OtpSettings };
  /** Secret of the gossip topic name. */
  room: string;
  /** Static DHT rendezvous, used only when `otp.dht.key` is empty. */
  rendezvous: string;
  /** mDNS service name. */
  mdns: string;
  /** GossipSub message size limit in bytes (`max_message_size`). */
  maxMessageSize: number;
}
