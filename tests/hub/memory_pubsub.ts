/** An in-memory pubsub network for hub tests: delivers only to peers subscribed to the topic. */
import { TypedEventTarget } from "../../lib/util/events.ts";
import type { PubSub, PubSubMessage } from "../../lib/hub/pubsub.ts";

/** Peers on one in-memory network. */
export class MemoryNetwork {
  readonly peers = new Set<MemoryPubSub>();

  /** A new peer named `id`. */
  join(id: string): MemoryPubSub {
    const p = new MemoryPubSub(this, id);
    this.peers.add(p);
    return p;
  }
}

/** One peer; `subscribed` is public so tests can look at it. */
export class MemoryPubSub extends TypedEventTarget<{ message: PubSubMessage }> implements PubSub {
  readonly subscribed = new Set<string>();
  /** Topics ever subscribed, in order. */
  readonly history: string[] = [];

  constructor(readonly network: MemoryNetwork, readonly id: string) {
    super();
  }

  subscribe(topic: string): void {
    this.subscribed.add(topic);
    this.history.push(topic);
  }

  unsubscribe(topic: string): void {
    this.subscribed.delete(topic);
  }

  publish(topic: string, data: Uint8Array): Promise<void> {
    for (const peer of this.network.peers) {
      if (peer !== this && peer.subscribed.has(topic)) {
        queueMicrotask(() => peer.inject({ topic, data, receivedFrom: this.id, author: this.id }));
      }
    }
    return Promise.resolve();
  }

  /** Delivers a message to this peer as if the router had received it. */
  inject(message: PubSubMessage): void {
    this.dispatch("message", message);
  }
}
