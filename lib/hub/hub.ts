/** Sealed gossip rooms: Go EdgeVPN's message hub on a rotating topic and seal key. */
import type { NetworkConfig } from "../config/network.ts";
import { publicTopicAt, sealKeyAt, topicAt } from "../crypto/derive.ts";
import { hexBytesToBytes, openSealedRaw, sealRaw } from "../crypto/seal.ts";
import { EdgeVpnError } from "../util/errors.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { type BucketRate, KeyedRateLimiter } from "../util/rate_limit.ts";
import { type Clock, systemClock } from "../util/clock.ts";
import { decodeEnvelopeHex, encodeSealedEnvelope } from "./envelope.ts";
import { TypedEventTarget, type TypedListener } from "../util/events.ts";
import type { PubSub, PubSubMessage, Verdict } from "./pubsub.ts";
import { rotationPlan } from "./rotation.ts";

/** Go's pubsub default (1 MiB), used when a token says `max_message_size: 0`. */
export const DEFAULT_MAX_MESSAGE_SIZE = 1 << 20;

/** Defaults of {@link HubOptions}. */
export const HUB_DEFAULTS = {
  /** Subscribe to the next window's topic this long before the boundary. */
  leadMs: 5_000,
  /** Keep the previous window's topic and key this long after the boundary. */
  graceMs: 10_000,
  /** Received messages waiting to be opened; more are dropped as `overload`. */
  maxQueue: 1024,
  /** Bytes of received messages waiting to be opened, from every peer together. */
  maxQueueBytes: 64 << 20,
  /**
   * Messages per second (and burst) each author may have opened; more are dropped as
   * `rateLimited`. A node sends a digest per sync round, a block per change (at most one a
   * second) and answers to peers that differ.
   */
  messageRate: { perSecond: 20, burst: 200 } as BucketRate,
  /** Peers whose counters are kept (the least recently heard from are forgotten first). */
  maxPeerStats: 1024,
  /** Re-plan at least this often, so a wall-clock jump is noticed. */
  maxSleepMs: 60_000,
} as const;

/**
 * Options of {@link createHub}.
 *
 * @example
 * ```ts ignore
 * const options: HubOptions = { pubsub, network };
 * ```
 */
export interface HubOptions {
  pubsub: PubSub;
  network: NetworkConfig;
  clock?: Clock;
  logger?: Logger;
  leadMs?: number;
  graceMs?: number;
  maxQueue?: number;
  /** See {@link HUB_DEFAULTS}.maxQueueBytes (64 MiB). */
  maxQueueBytes?: number;
  /** Bytes waiting from one peer; default the larger of `max_message_size` and 8 MiB. */
  maxPeerQueueBytes?: number;
  /** See {@link HUB_DEFAULTS}.messageRate. */
  messageRate?: BucketRate;
  /**
   * Bytes per second (and burst) each author may have opened; default a burst of 4 ×
   * `max_message_size`, refilled at one `max_message_size` per 4 s.
   */
  byteRate?: BucketRate;
  /**
   * Bytes the router adds around an envelope (GossipSub: topic, author, seqno, signature);
   * an envelope is at most `max_message_size` minus this. Default 0.
   */
  envelopeHeadroom?: number;
  /** `public`: the PeerGuard room (Go's generic hub) instead of the ledger's; default `main`. */
  room?: "main" | "public";
}

/**
 * A message that opened with one of the accepted keys.
 *
 * @example
 * ```ts ignore
 * hub.addEventListener("message", (e) => console.log(e.detail.from, e.detail.data.length));
 * ```
 */
export interface HubMessage {
  /** The plaintext (Go: the unsealed `Message`). */
  data: Uint8Array;
  /** The peer that delivered it (Go overwrites `SenderID` with this). */
  from: string;
  /** The peer that signed it at the pubsub layer, when known. */
  author?: string;
  topic: string;
  annotations: Record<string, unknown> | null;
}

/** Why a received message was dropped. */
export type HubDropReason =
  | "badEnvelope"
  | "badSeal"
  | "oversize"
  | "unknownSender"
  | "overload"
  | "rateLimited";

/** Messages opened and dropped for one peer (the one that delivered them). */
export interface HubPeerStats {
  received: number;
  dropped: number;
}

/**
 * Running totals; `dropped` counts messages by the reason they were refused.
 *
 * @example
 * ```ts ignore
 * hub.counters.dropped.badSeal; // 0
 * ```
 */
export interface HubCounters {
  received: number;
  published: number;
  /** Bytes of the envelopes published (what this node originates on the topic). */
  publishedBytes: number;
  dropped: Record<HubDropReason, number>;
}

/** Events of a {@link Hub}. */
export interface HubEvents {
  message: HubMessage;
  /** The current window changed; `topic` is where messages are now published. */
  rotate: { counter: number; topic: string };
  /**
   * A message was refused as malformed or sealed with a key we do not hold: `peer` delivered
   * it (the node penalises it; members never relay such messages).
   */
  rejected: { peer: string; author?: string; reason: HubDropReason };
}

interface WindowSecrets {
  topic: string;
  key: string;
}

/**
 * The hub: joins the room's topic for the current OTP window (and its neighbours around a
 * boundary), seals what it publishes, opens what it receives and emits `message` events.
 *
 * @example
 * ```ts ignore
 * const hub = createHub({ pubsub, network });
 * hub.addEventListener("message", (e) => console.log(new TextDecoder().decode(e.detail.data)));
 * await hub.start();
 * await hub.publish(new TextEncoder().encode("hello"));
 * await hub.stop();
 * ```
 */
export class Hub extends TypedEventTarget<HubEvents> {
  readonly #pubsub: PubSub;
  readonly #network: NetworkConfig;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #leadMs: number;
  readonly #graceMs: number;
  readonly #maxQueue: number;
  readonly #maxQueueBytes: number;
  readonly #maxPeerQueueBytes: number;
  readonly #maxSize: number;
  readonly #headroom: number;
  readonly #messageRate: KeyedRateLimiter;
  readonly #byteRate: KeyedRateLimiter;
  /** Bytes waiting in the queue, in all and per delivering peer. */
  #queuedBytes = 0;
  readonly #peerQueued = new Map<string, number>();
  readonly #peerStats = new Map<string, HubPeerStats>();
  /** The router checks admission itself (removes our check when called; see `addAdmission`). */
  #gated: (() => void) | undefined;
  readonly #topicAt: typeof topicAt;
  readonly #secrets = new Map<number, Promise<WindowSecrets>>();
  /** Subscribed topic → its window counter. */
  readonly #subscribed = new Map<string, number>();
  /** Received messages with the windows whose keys may open them (fixed on arrival). */
  readonly #queue: { m: PubSubMessage; windows: number[] }[] = [];
  readonly #counters: HubCounters = {
    received: 0,
    published: 0,
    publishedBytes: 0,
    dropped: {
      badEnvelope: 0,
      badSeal: 0,
      oversize: 0,
      unknownSender: 0,
      overload: 0,
      rateLimited: 0,
    },
  };
  #started = false;
  #timer: unknown;
  #current = -1;
  #planning: Promise<void> = Promise.resolve();
  #draining: Promise<void> | undefined;

  constructor(options: HubOptions) {
    super();
    this.#pubsub = options.pubsub;
    this.#network = options.network;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger ?? silentLogger;
    this.#leadMs = options.leadMs ?? HUB_DEFAULTS.leadMs;
    this.#graceMs = options.graceMs ?? HUB_DEFAULTS.graceMs;
    this.#maxQueue = options.maxQueue ?? HUB_DEFAULTS.maxQueue;
    this.#topicAt = options.room === "public" ? publicTopicAt : topicAt;
    this.#maxSize = options.network.maxMessageSize > 0
      ? options.network.maxMessageSize
      : DEFAULT_MAX_MESSAGE_SIZE;
    this.#headroom = options.envelopeHeadroom ?? 0;
    this.#maxQueueBytes = options.maxQueueBytes ?? HUB_DEFAULTS.maxQueueBytes;
    this.#maxPeerQueueBytes = options.maxPeerQueueBytes ?? Math.max(this.#maxSize, 8 << 20);
    this.#messageRate = new KeyedRateLimiter(options.messageRate ?? HUB_DEFAULTS.messageRate, {
      now: () => this.#clock.now(),
    });
    this.#byteRate = new KeyedRateLimiter(
      options.byteRate ?? { perSecond: this.#maxSize / 4, burst: 4 * this.#maxSize },
      { now: () => this.#clock.now() },
    );
    if (!(options.network.otp.crypto.interval > 0)) {
      throw new EdgeVpnError(
        "HUB_INTERVAL_INVALID",
        `otp.crypto.interval must be > 0 seconds, got ${options.network.otp.crypto.interval}`,
      );
    }
  }

  /** The topic messages are published on now (empty before `start()`). */
  get topic(): string {
    return [...this.#subscribed].find(([, c]) => c === this.#current)?.[0] ?? "";
  }

  /** Every topic currently subscribed (the current one, and a neighbour near a boundary). */
  get topics(): string[] {
    return [...this.#subscribed.keys()];
  }

  /** A snapshot of the counters. */
  get counters(): HubCounters {
    return { ...this.#counters, dropped: { ...this.#counters.dropped } };
  }

  /** Messages opened and dropped per delivering peer (the most recently active peers). */
  peerStats(): Map<string, HubPeerStats> {
    return new Map([...this.#peerStats].map(([p, s]) => [p, { ...s }]));
  }

  /** The largest plaintext {@link publish} carries (sealed, hex-encoded and enveloped). */
  get maxPayloadBytes(): number {
    // Hex doubles the sealed size (12-byte nonce, 16-byte tag); the JSON adds ~50 bytes.
    return Math.max(0, Math.floor((this.#maxEnvelope - 64) / 2) - 28);
  }

  get #maxEnvelope(): number {
    return this.#maxSize - this.#headroom;
  }

  /** Subscribes to the current window's topic and schedules the rotations. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#pubsub.addEventListener("message", this.#onMessage);
    this.#gated = this.#pubsub.addAdmission?.(this.#admit);
    await this.#replan();
  }

  /** Unsubscribes, clears the rotation timer and waits for messages being opened. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pubsub.removeEventListener("message", this.#onMessage);
    this.#gated?.();
    this.#gated = undefined;
    await this.#planning;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const { m } of this.#queue.splice(0)) this.#dequeued(m, "ignore");
    await this.#draining;
    for (const topic of this.#subscribed.keys()) this.#pubsub.unsubscribe(topic);
    this.#subscribed.clear();
    this.#current = -1;
  }

  /**
   * Seals `data` with the current key and publishes it on the current topic.
   *
   * @throws {EdgeVpnError} `HUB_NOT_STARTED` before `start()`; `MESSAGE_TOO_LARGE` when the
   * envelope would exceed the network's `max_message_size`.
   */
  async publish(
    data: Uint8Array,
    annotations: Record<string, unknown> | null = null,
  ): Promise<void> {
    if (!this.#started) {
      throw new EdgeVpnError("HUB_NOT_STARTED", "Cannot publish: the hub is not started");
    }
    // Hex doubles the sealed size (12-byte nonce, 16-byte tag); the JSON adds ~50 bytes.
    const estimate = 2 * (data.length + 28) + 64;
    if (estimate > this.#maxEnvelope) throw tooLarge(data.length, estimate, this.#maxEnvelope);
    const { topic, key } = await this.#secretsFor(
      rotationPlan(this.#network.otp.crypto.interval, this.#clock.now(), 0, 0).current,
    );
    const envelope = encodeSealedEnvelope(await sealRaw(key, data), "", annotations);
    if (envelope.length > this.#maxEnvelope) {
      throw tooLarge(data.length, envelope.length, this.#maxEnvelope);
    }
    await this.#pubsub.publish(topic, envelope);
    this.#counters.published++;
    this.#counters.publishedBytes += envelope.length;
  }

  /**
   * The cheap checks a message passes before it is queued (run by the router before it caches
   * or relays anything, when it can): our topic, its size, the author's rate, room in the queue.
   */
  #admit = (m: PubSubMessage): Verdict => {
    if (!this.#started || !this.#subscribed.has(m.topic)) return "ignore";
    if (m.data.length > this.#maxSize) return this.#refuse("oversize", m);
    // Every envelope is a JSON object: anything else is refused before it is even queued.
    if (!OBJECT_START.has(m.data[0])) return this.#refuse("badEnvelope", m);
    if (m.receivedFrom === "") return this.#refuse("unknownSender", m);
    const author = m.author ?? m.receivedFrom;
    if (!this.#messageRate.take(author) || !this.#byteRate.take(author, m.data.length)) {
      return this.#refuse("rateLimited", m);
    }
    return this.#hasRoom(m) ? "accept" : this.#refuse("overload", m);
  };

  #hasRoom(m: PubSubMessage): boolean {
    return this.#queue.length < this.#maxQueue &&
      this.#queuedBytes + m.data.length <= this.#maxQueueBytes &&
      (this.#peerQueued.get(m.receivedFrom) ?? 0) + m.data.length <= this.#maxPeerQueueBytes;
  }

  #onMessage: TypedListener<PubSubMessage> = (event) => {
    const m = event.detail;
    if (!this.#started) return this.#pubsub.report?.(m, "ignore");
    if (this.#gated) {
      // Admitted by the router a moment ago; only the queue may have filled since. Another
      // hub's topic (PeerGuard's public room beside the ledger's) is that hub's to report.
      if (!this.#subscribed.has(m.topic)) return;
      if (!this.#hasRoom(m)) return this.#pubsub.report?.(m, this.#refuse("overload", m));
    } else {
      const verdict = this.#admit(m);
      if (verdict !== "accept") return this.#pubsub.report?.(m, verdict);
    }
    // The keys are chosen now, so time spent waiting in the queue cannot expire them. The
    // topic's own window comes first; then its neighbours, because a Go node computes its
    // seal key at send time but may still publish on the previous topic for up to a second.
    const topicWindow = this.#subscribed.get(m.topic)!;
    const plan = rotationPlan(
      this.#network.otp.crypto.interval,
      this.#clock.now(),
      this.#leadMs,
      this.#graceMs,
    );
    const windows = [topicWindow, ...plan.active.filter((c) => c !== topicWindow)];
    this.#queue.push({ m, windows });
    this.#queuedBytes += m.data.length;
    this.#peerQueued.set(
      m.receivedFrom,
      (this.#peerQueued.get(m.receivedFrom) ?? 0) + m.data.length,
    );
    this.#draining ??= this.#drain();
  };

  async #drain(): Promise<void> {
    try {
      for (let item = this.#queue.shift(); item !== undefined; item = this.#queue.shift()) {
        let verdict: Verdict = "ignore";
        try {
          verdict = await this.#open(item.m, item.windows);
        } finally {
          this.#dequeued(item.m, verdict);
        }
      }
    } finally {
      // Cleared in the same turn as the last emptiness check, so no message is stranded.
      this.#draining = undefined;
    }
  }

  /** Releases a message's room in the queue and tells the router what became of it. */
  #dequeued(m: PubSubMessage, verdict: Verdict): void {
    this.#queuedBytes -= m.data.length;
    const left = (this.#peerQueued.get(m.receivedFrom) ?? 0) - m.data.length;
    if (left > 0) this.#peerQueued.set(m.receivedFrom, left);
    else this.#peerQueued.delete(m.receivedFrom);
    this.#pubsub.report?.(m, verdict);
  }

  async #open(m: PubSubMessage, windows: number[]): Promise<Verdict> {
    let envelope;
    try {
      // Every envelope is a JSON object: anything else is refused before it is decoded.
      if (!OBJECT_START.has(m.data[0])) throw new Error("not a JSON object");
      envelope = decodeEnvelopeHex(m.data);
    } catch {
      return this.#refuse("badEnvelope", m);
    }
    let sealed: Uint8Array;
    try {
      sealed = hexBytesToBytes(envelope.messageHex);
    } catch {
      return this.#refuse("badSeal", m);
    }
    for (const counter of windows) {
      const { key } = await this.#secretsFor(counter);
      let data: Uint8Array;
      try {
        data = await openSealedRaw(key, sealed);
      } catch {
        continue;
      }
      if (!this.#started) return "ignore";
      this.#counters.received++;
      this.#stats(m.receivedFrom).received++;
      this.dispatch("message", {
        data,
        from: m.receivedFrom,
        author: m.author,
        topic: m.topic,
        annotations: envelope.annotations,
      });
      return "accept";
    }
    return this.#refuse("badSeal", m);
  }

  /**
   * Counts a dropped message; the offences (a message no member would send or relay) are
   * `reject`ed and reported as a `rejected` event, the rest `ignore`d.
   */
  #refuse(reason: HubDropReason, m: PubSubMessage): Verdict {
    this.#counters.dropped[reason]++;
    this.#stats(m.receivedFrom).dropped++;
    if (this.#log.enabled("debug")) {
      this.#log.debug("dropped hub message", {
        reason,
        from: m.receivedFrom,
        bytes: m.data.length,
      });
    }
    if (reason === "badEnvelope" || reason === "badSeal" || reason === "oversize") {
      this.dispatch("rejected", { peer: m.receivedFrom, author: m.author, reason });
      return "reject";
    }
    return "ignore";
  }

  #stats(peer: string): HubPeerStats {
    let s = this.#peerStats.get(peer);
    if (s === undefined) {
      if (this.#peerStats.size >= HUB_DEFAULTS.maxPeerStats) {
        this.#peerStats.delete(this.#peerStats.keys().next().value!);
      }
      s = { received: 0, dropped: 0 };
    } else {
      this.#peerStats.delete(peer);
    }
    this.#peerStats.set(peer, s);
    return s;
  }

  #replan(): Promise<void> {
    this.#planning = this.#planning.then(() => this.#applyPlan()).catch((e) => {
      this.#log.error("hub rotation failed", { error: String(e) });
    });
    return this.#planning;
  }

  async #applyPlan(): Promise<void> {
    if (!this.#started) return;
    const plan = rotationPlan(
      this.#network.otp.crypto.interval,
      this.#clock.now(),
      this.#leadMs,
      this.#graceMs,
    );
    const wanted = new Map<string, number>();
    for (const counter of plan.active) {
      wanted.set((await this.#secretsFor(counter)).topic, counter);
    }
    if (!this.#started) return;
    for (const [topic, counter] of wanted) {
      if (!this.#subscribed.has(topic)) this.#pubsub.subscribe(topic);
      this.#subscribed.set(topic, counter);
    }
    for (const topic of [...this.#subscribed.keys()]) {
      if (!wanted.has(topic)) {
        this.#pubsub.unsubscribe(topic);
        this.#subscribed.delete(topic);
      }
    }
    for (const counter of this.#secrets.keys()) {
      if (Math.abs(counter - plan.current) > 2) this.#secrets.delete(counter);
    }
    if (plan.current !== this.#current) {
      this.#current = plan.current;
      const topic = this.topic;
      this.#log.debug("hub topic", { counter: plan.current, topic });
      this.dispatch("rotate", { counter: plan.current, topic });
    }
    const wait = Math.min(
      Math.max(0, plan.nextChangeMs - this.#clock.now()),
      HUB_DEFAULTS.maxSleepMs,
    );
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      void this.#replan();
    }, wait);
  }

  #secretsFor(counter: number): Promise<WindowSecrets> {
    let secrets = this.#secrets.get(counter);
    if (!secrets) {
      const at = counter * this.#network.otp.crypto.interval * 1000;
      secrets = Promise.all([this.#topicAt(this.#network, at), sealKeyAt(this.#network, at)]).then((
        [topic, key],
      ) => ({ topic, key }));
      this.#secrets.set(counter, secrets);
    }
    return secrets;
  }
}

/**
 * Creates a {@link Hub}; nothing happens until `start()`.
 *
 * @example
 * ```ts ignore
 * const hub = createHub({ pubsub, network });
 * ```
 */
export function createHub(options: HubOptions): Hub {
  return new Hub(options);
}

/** `{` and the whitespace JSON allows before it. */
const OBJECT_START = new Set([0x7b, 0x20, 0x09, 0x0a, 0x0d]);

function tooLarge(plain: number, wire: number, limit: number): EdgeVpnError {
  return new EdgeVpnError(
    "MESSAGE_TOO_LARGE",
    `Cannot publish ${plain} bytes: the sealed envelope needs ~${wire} bytes, the network's max_message_size is ${limit}`,
  );
}
