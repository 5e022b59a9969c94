/** Adapts js-libp2p GossipSub to the hub's narrow {@link PubSub} interface. */
import {
  type GossipSub,
  type GossipsubMessage,
  type TopicValidatorFn,
  TopicValidatorResult,
} from "@libp2p/gossipsub";
import { TypedEventTarget } from "../util/events.ts";
import type { PubSub, PubSubMessage, Verdict } from "../hub/pubsub.ts";

const RESULTS: Record<Verdict, TopicValidatorResult> = {
  accept: TopicValidatorResult.Accept,
  reject: TopicValidatorResult.Reject,
  ignore: TopicValidatorResult.Ignore,
};

/**
 * The hub's pubsub view of a GossipSub service: `message` events carry the topic, the data,
 * the forwarding peer (`receivedFrom`), the signing peer (`author`) and the message ID.
 *
 * Run the router with `asyncValidation`: a message is then relayed only once the hub has opened
 * it and {@link report}ed it accepted. Before that, one validator for every topic (installed by
 * {@link start}) drops, without caching it, any message on a topic we do not follow and any the
 * hub's admission check refuses.
 *
 * @example
 * ```ts ignore
 * const pubsub = new GossipPubSub(libp2p.services.pubsub);
 * pubsub.start();
 * ```
 */
export class GossipPubSub extends TypedEventTarget<{ message: PubSubMessage }> implements PubSub {
  readonly #gossip: GossipSub;
  readonly #subscribed = new Set<string>();
  /** One check per hub on this router (the ledger's room, PeerGuard's public room). */
  readonly #admits = new Set<(message: PubSubMessage) => Verdict>();
  #listening = false;
  #restoreValidators: (() => void) | undefined;

  constructor(gossip: GossipSub) {
    super();
    this.#gossip = gossip;
  }

  start(): void {
    if (this.#listening) return;
    this.#listening = true;
    this.#gossip.addEventListener("gossipsub:message", this.#onMessage);
    this.#restoreValidators = validateEveryTopic(this.#gossip, this.#validate);
  }

  stop(): void {
    this.#listening = false;
    this.#gossip.removeEventListener("gossipsub:message", this.#onMessage);
    this.#restoreValidators?.();
    this.#restoreValidators = undefined;
  }

  subscribe(topic: string): void {
    this.#subscribed.add(topic);
    this.#gossip.subscribe(topic);
  }

  unsubscribe(topic: string): void {
    this.#subscribed.delete(topic);
    this.#gossip.unsubscribe(topic);
  }

  async publish(topic: string, data: Uint8Array): Promise<void> {
    await this.#gossip.publish(topic, data);
  }

  report(message: PubSubMessage, verdict: Verdict): void {
    if (message.msgId === undefined) return;
    // On the router class, not on the `GossipSub` interface it is exported as.
    (this.#gossip as GossipSub & AsyncValidation).reportMessageValidationResult(
      message.msgId,
      message.receivedFrom,
      RESULTS[verdict],
    );
  }

  addAdmission(admit: (message: PubSubMessage) => Verdict): () => void {
    const own = (m: PubSubMessage) => admit(m);
    this.#admits.add(own);
    return () => void this.#admits.delete(own);
  }

  /** Peers known to be subscribed to `topic`. */
  subscribers(topic: string): string[] {
    return this.#gossip.getSubscribers(topic).map((p) => p.toString());
  }

  #validate: TopicValidatorFn = (peer, msg) => {
    if (!this.#subscribed.has(msg.topic)) return TopicValidatorResult.Ignore;
    if (this.#admits.size === 0) return TopicValidatorResult.Accept;
    const message = toPubSubMessage(msg, peer.toString());
    for (const admit of this.#admits) {
      const verdict = admit(message);
      if (verdict !== "ignore") return RESULTS[verdict];
    }
    return TopicValidatorResult.Ignore;
  };

  #onMessage = (event: CustomEvent<GossipsubMessage>) => {
    const { msg, propagationSource, msgId } = event.detail;
    this.dispatch("message", { ...toPubSubMessage(msg, propagationSource.toString()), msgId });
  };
}

interface AsyncValidation {
  reportMessageValidationResult(
    msgId: string,
    propagationSource: string,
    acceptance: TopicValidatorResult,
  ): void;
}

function toPubSubMessage(msg: GossipsubMessage["msg"], receivedFrom: string): PubSubMessage {
  return {
    topic: msg.topic,
    data: msg.data,
    receivedFrom,
    author: msg.type === "signed" ? msg.from.toString() : undefined,
  };
}

/**
 * Makes `validator` the topic validator of every topic (gossipsub looks validators up by
 * topic, so messages on topics nobody registered would be cached and relayed unchecked).
 * Returns the function that undoes it.
 */
function validateEveryTopic(gossip: GossipSub, validator: TopicValidatorFn): () => void {
  const validators = gossip.topicValidators;
  const get = validators.get;
  validators.get = (topic: string) => get.call(validators, topic) ?? validator;
  return () => {
    validators.get = get;
  };
}
