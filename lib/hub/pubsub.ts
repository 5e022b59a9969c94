/** The narrow publish/subscribe surface the hub runs on; the node adapts GossipSub to it. */
import type { TypedListener } from "../util/events.ts";

/**
 * One message delivered by the pubsub router.
 *
 * @example
 * ```ts
 * const m: PubSubMessage = { topic: "t", data: new Uint8Array(), receivedFrom: "12D3KooW…" };
 * ```
 */
export interface PubSubMessage {
  topic: string;
  data: Uint8Array;
  /** Peer that delivered (or forwarded) the message: Go EdgeVPN's `SenderID`. */
  receivedFrom: string;
  /** Peer that signed the message (GossipSub StrictSign `from`), when known. */
  author?: string;
}

/**
 * What the hub needs from a pubsub router: topic membership, publishing, message events.
 *
 * @example
 * ```ts
 * function join(ps: PubSub) {
 *   ps.subscribe("topic");
 *   ps.addEventListener("message", (e) => console.log(e.detail.topic));
 * }
 * ```
 */
export interface PubSub {
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  /** Publishes `data` on `topic`; resolves once handed to the router. */
  publish(topic: string, data: Uint8Array): Promise<void>;
  addEventListener(type: "message", listener: TypedListener<PubSubMessage>): void;
  removeEventListener(type: "message", listener: TypedListener<PubSubMessage>): void;
}
