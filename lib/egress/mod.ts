/** Egress nodes: Go's HTTP egress protocol, our tunnel protocol, the address policy and the pieces the proxy shares. */
export { isNonPublicAddress } from "./address_policy.ts";
export { type EgressComponents, egressComponentsOf } from "./components.ts";
export { connectTarget, type HostResolver, systemResolver, TargetError } from "./dial.ts";
export { createEgress, type Egress, type EgressCounters, type EgressOptions } from "./egress.ts";
export {
  DEFAULT_HEAD_LIMITS,
  errorResponse,
  forwardedHead,
  HeadReader,
  HttpHeadError,
  type HttpHeadLimits,
  type HttpRequestHead,
  parseAuthority,
  parseRequestHead,
} from "./http_head.ts";
export { type PipeOptions, type PipeResult, pipeStream } from "../services/pipe.ts";
export {
  describeTunnelStatus,
  EGRESS_TUNNEL_PROTOCOL,
  encodeTunnelRequest,
  GO_EGRESS_PROTOCOL,
  parseTunnelRequest,
  parseTunnelStatus,
  TunnelStatus,
  type TunnelStatusCode,
  type TunnelTarget,
} from "./protocol.ts";
export { announceUser } from "../services/users.ts";
