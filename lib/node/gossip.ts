/** Adapts js-libp2p GossipSub to the hub's narrow {@link PubSub} interface. */
import type { GossipSub, GossipsubMessage } from "@libp2p/gossipsub";
import { TypedEventTarget } from "../util/events.ts";
import type { PubSub, PubSubMessage } from "../hub/pubsub.ts";

/**
 * The hub's pubsub view of a GossipSub service: `message` events carry the topic, the data,
 * the forwarding peer (`receivedFrom`) and the signing peer (`author`).
 *
 * @example
 * ```ts
 * const pubsub = new GossipPubSub(libp2p.services.pubsub);
 * pubsub.start();
 * ```
 */
export class GossipPubSub extends TypedEventTarget<{ message: PubSubMessage }> implements PubSub {
  readonly #gossip: GossipSub;
  #listening = false;

  constructor(gossip: GossipSub) {
    super();
    this.#gossip = gossip;
  }

  start(): void {
    if (this.#listening) return;
    this.#listening = true;
    this.#gossip.addEventListener("gossipsub:message", this.#onMessage);
  }

  stop(): void {
    this.#listening = false;
    this.#gossip.removeEventListener("gossipsub:message", this.#onMessage);
  }

  subscribe(topic: string): void {
    this.#gossip.subscribe(topic);
  }

  unsubscribe(topic: string): void {
    this.#gossip.unsubscribe(topic);
  }

  async publish(topic: string, data: Uint8Array): Promise<void> {
    await this.#gossip.publish(topic, data);
  }

  /** Peers known to be subscribed to `topic`. */
  subscribers(topic: string): string[] {
    return this.#gossip.getSubscribers(topic).map((p) => p.toString());
  }

  #onMessage = (event: CustomEvent<GossipsubMessage>) => {
    const { msg, propagationSource } = event.detail;
    this.dispatch("message", {
      topic: msg.topic,
      data: msg.data,
      receivedFrom: propagationSource.toString(),
      author: msg.type === "signed" ? msg.from.toString() : undefined,
    });
  };
}
