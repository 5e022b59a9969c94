/**
 * EdgeVPN for Deno: a serverless peer-to-peer VPN and service mesh on libp2p, wire-compatible
 * with Go EdgeVPN v0.35.
 *
 * @example
 * ```ts
 * import { encodeToken, generateNetworkConfig } from "./mod.ts";
 * const token = encodeToken(generateNetworkConfig());
 * // A node with the VPN: createMesh(...), then vpn.createVpn(vpn.vpnComponentsOf(mesh), {...}).
 * ```
 * @module
 */
export type { NetworkConfig, OtpSettings } from "./lib/config/network.ts";
export {
  decodeToken,
  encodeToken,
  generateNetworkConfig,
  networkConfigToYaml,
  parseNetworkYaml,
} from "./lib/config/token.ts";
export { loadNetworkConfig, requireNetworkConfig } from "./lib/config/load.ts";
export { type OptionName, OPTIONS, type OptionSpec, type Settings } from "./lib/config/options.ts";
export { resolveSettings } from "./lib/config/settings.ts";
export { md5Hex, totp } from "./lib/crypto/otp.ts";
export {
  leaseFileName,
  type NetworkSecrets,
  otpWindow,
  publicTopicAt,
  rendezvousAt,
  sealKeyAt,
  topicAt,
} from "./lib/crypto/derive.ts";
export { openSealed, seal } from "./lib/crypto/seal.ts";
export {
  generateIdentity,
  type Identity,
  identityFromProtobuf,
  identityFromSeed,
  verifyPeerSignature,
} from "./lib/crypto/identity.ts";
export { EdgeVpnError, InputError, UsageError } from "./lib/util/errors.ts";
export {
  createLogger,
  formatLogRecord,
  type LogFormat,
  type Logger,
  type LogLevel,
} from "./lib/util/logger.ts";
export { VERSION } from "./lib/version.ts";
export {
  createMesh,
  Mesh,
  type MeshAliveOptions,
  type MeshLedgerOptions,
  type MeshOptions,
} from "./lib/mesh/mesh.ts";
export * as net from "./lib/net/mod.ts";
export * as node from "./lib/node/mod.ts";
export * as hub from "./lib/hub/mod.ts";
export * as ledger from "./lib/ledger/mod.ts";
export * as vpn from "./lib/vpn/mod.ts";
export * as api from "./lib/api/mod.ts";
export * as dashboard from "./lib/dashboard/mod.ts";
export * as metrics from "./lib/metrics/mod.ts";
export * as dns from "./lib/dns/mod.ts";
export * as egress from "./lib/egress/mod.ts";
export * as proxy from "./lib/proxy/mod.ts";
export { type NodeApiContext, startNodeApi } from "./lib/commands/api_server.ts";
export {
  dhcpDecision,
  type DhcpOptions,
  nextFreeIP,
  nextIP,
  obtainAddress,
} from "./lib/dhcp/dhcp.ts";
export {
  installProcessGuard,
  type ProcessErrorCounts,
  processErrorCounts,
} from "./lib/util/process_guard.ts";
