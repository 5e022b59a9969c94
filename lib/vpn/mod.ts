/** The VPN: routing from the ledger, packet framing, and the data-plane protocols. */
export {
  type OpenTun,
  type VpnComponents,
  vpnComponentsOf,
  type VpnLedger,
  type VpnNode,
  type VpnTun,
} from "./components.ts";
export {
  type DataPlane,
  parseRouter,
  parseStaticPeertable,
  parseVpnAddress,
  VPN_DEFAULTS,
  type VpnAddress,
  type VpnOptions,
} from "./config.ts";
export { newVpnCounters, type Traffic, type VpnCounters } from "./counters.ts";
export {
  BATCH_BYTES,
  FAST_GSO_PROTOCOL,
  FAST_PROTOCOL,
  FrameDecoder,
  FrameError,
  LEGACY_PROTOCOL,
} from "./frame.ts";
export type { LinkInfo, LinkProtocol } from "./link.ts";
export { type Machine, machineOf, MACHINES_BUCKET } from "./machine.ts";
export { type Route, type RouteEntry, type RouteInput, RouteMiss, RouteTable } from "./routes.ts";
export { createVpn, type Vpn, type VpnCountersSnapshot } from "./vpn.ts";
export {
  newSender,
  type Sender,
  type SourceInput,
  SourceTable,
  SourceVerdict,
  type SourceVerdictCode,
} from "./sources.ts";
