/** Sealed gossip rooms: the hub, its pubsub interface, envelope codec and rotation plan. */
export { type Clock, systemClock } from "../util/clock.ts";
export { decodeEnvelope, encodeEnvelope, type Envelope } from "./envelope.ts";
export { TypedEventTarget, type TypedListener } from "../util/events.ts";
export {
  createHub,
  DEFAULT_MAX_MESSAGE_SIZE,
  Hub,
  HUB_DEFAULTS,
  type HubCounters,
  type HubDropReason,
  type HubEvents,
  type HubMessage,
  type HubOptions,
} from "./hub.ts";
export type { PubSub, PubSubMessage } from "./pubsub.ts";
export { type RotationPlan, rotationPlan } from "./rotation.ts";
