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
  /** The router's ID of the message, when it waits for a {@link Verdict} on it. */
  msgId?: string;
}

/**
 * What becomes of a received message: `accept` relays it, `reject` drops it and penalises the
 * peer that delivered it, `ignore` drops it without penalty (overload, rate limits).
 */
export type Verdict = "accept" | "reject" | "ignore";

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
  /**
   * Tells the router what became of a delivered message (once per message). Routers that
   * validate before relaying need it; a router that relays without asking leaves it out.
   */
  report?(message: PubSubMessage, verdict: Verdict): void;
  /**
   * Adds a cheap check that runs before a message is cached, relayed or delivered. Each hub
   * on the router adds its own and answers `ignore` for topics not its own: the first other
   * verdict decides (anything but `accept` drops the message there), all `ignore` ignores it.
   * Returns the function that removes the check.
   */
  addAdmission?(admit: (message: PubSubMessage) => Verdict): () => void;
}
