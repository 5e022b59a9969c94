/** TCP services: expose local services to the network and reach them through local ports. */
export { formatTcpAddress, parseTcpAddress, type TcpAddress } from "./address.ts";
export {
  type ServiceComponents,
  serviceComponentsOf,
  type ServiceLedger,
  type ServiceNode,
} from "./components.ts";
export {
  createServiceConnector,
  ServiceConnector,
  type ServiceConnectorCounters,
  type ServiceConnectorOptions,
} from "./connect.ts";
export {
  createServiceExposer,
  type ExposedService,
  ServiceExposer,
  type ServiceExposerCounters,
  type ServiceExposerOptions,
} from "./expose.ts";
export { type PipeOptions, type PipeResult, pipeStream, writeAll } from "./pipe.ts";
export {
  encodeServiceRequest,
  GO_SERVICE_PROTOCOL,
  MAX_SERVICE_NAME_BYTES,
  parseServiceRequest,
  parseServiceStatus,
  SERVICE_PROTOCOL,
  type ServiceRequest,
  ServiceStatus,
  type ServiceStatusCode,
} from "./protocol.ts";
export { announceUser, providerOf, untilUser, USER_GRACE_MS } from "./users.ts";
