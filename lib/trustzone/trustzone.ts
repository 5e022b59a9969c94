/**
 * The trust zone (Go's PeerGuard): members prove they hold a trust-zone key by signing a
 * challenge on the public room; the gate drops ledger messages from peers not in `trustzone`.
 */
import type { Hub, HubMessage } from "../hub/hub.ts";
import type { Job, Ledger } from "../ledger/ledger.ts";
import { BUCKETS } from "../ledger/buckets.ts";
import { errorMessage } from "../util/errors.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { signEcdsa, verifyEcdsa } from "./ecdsa.ts";

/**
 * How challenges are checked. `go`: Go EdgeVPN's, a signature over whatever text the message
 * carries (Go signs the constant `challenge`, so one captured signature admits anyone who
 * replays it). `bound`: ours, the signed text names the sender and a time and a fresh nonce;
 * it admits only the peer that signed the gossip message, within the time window, once.
 */
export type TrustMode = "go" | "bound";

/** Options of {@link TrustZone} (Go `--peergate*`). */
export interface TrustZoneOptions {
  mode: TrustMode;
  /** Gate ledger messages from peers outside the zone (Go `--peergate`). */
  gate: boolean;
  /** While the zone is empty, let everything through (Go `--peergate-relaxed`). */
  relaxed: boolean;
  /** Remove zone members that left the main topic (Go `--peergate-autoclean`). */
  autoclean: boolean;
  /** Challenge and refresh period (Go `--peergate-interval`). */
  intervalMs: number;
  /** Our trust-zone private key (Go `--peergate-auth '{"ecdsa":{"private_key":…}}'`). */
  ecdsaPrivateKey?: string;
}

/** What the trust zone did. */
export interface TrustZoneCounters {
  challengesSent: number;
  admitted: number;
  refused: {
    badSignature: number;
    wrongSender: number;
    stale: number;
    replay: number;
    malformed: number;
  };
  gated: number;
}

/** What the trust zone needs from the mesh. */
export interface TrustZoneComponents {
  peerId: string;
  ledger: Pick<Ledger, "currentData" | "getKey" | "persist" | "announce" | "delete">;
  /** The public room (`EdgeNode.createPublicHub()`); started and stopped by the trust zone. */
  publicHub: Hub;
  /** Peers on the main topic (for autoclean). */
  topicPeers: () => string[];
  logger?: Logger;
  now?: () => number;
}

const BOUND_PREFIX = "edgevpn-trustzone/1";
const SIGS = "sigs";
const MAX_NONCES = 4096;
const MIN_WINDOW_MS = 300_000;

/**
 * Challenger, receiver and gate of the trust zone.
 *
 * @example
 * ```ts ignore
 * const tz = new TrustZone({ peerId, ledger, publicHub: node.createPublicHub(), topicPeers }, options);
 * await tz.start();
 * mesh.setMessageGate((peer) => tz.gates(peer));
 * ```
 */
export class TrustZone {
  readonly #c: TrustZoneComponents;
  readonly #o: TrustZoneOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #nonces = new Map<string, number>();
  #enabled: boolean;
  #job: Job | undefined;
  #trusted = new Set<string>();
  readonly #counters: TrustZoneCounters = {
    challengesSent: 0,
    admitted: 0,
    refused: { badSignature: 0, wrongSender: 0, stale: 0, replay: 0, malformed: 0 },
    gated: 0,
  };

  constructor(components: TrustZoneComponents, options: TrustZoneOptions) {
    this.#c = components;
    this.#o = options;
    this.#enabled = options.gate;
    this.#log = (components.logger ?? silentLogger).child("trustzone");
    this.#now = components.now ?? Date.now;
  }

  /** Joins the public room and starts challenging (now, then every interval). */
  async start(): Promise<void> {
    this.#c.publicHub.addEventListener("message", this.#onMessage);
    await this.#c.publicHub.start();
    this.#job = this.#c.ledger.announce(this.#o.intervalMs, () => this.#tick());
  }

  /** Stops challenging and leaves the public room. */
  async stop(): Promise<void> {
    this.#job?.stop();
    this.#c.publicHub.removeEventListener("message", this.#onMessage);
    await this.#c.publicHub.stop();
  }

  /** Whether gating is on (Go's `PeerGater.Enabled`, `/api/peergate`). */
  enabled(): boolean {
    return this.#enabled;
  }

  /** Turns gating on or off (`PUT /api/peergate/enable|disable`). */
  setEnabled(on: boolean): void {
    this.#enabled = on;
  }

  /** Go's `Gate(p)`: true when messages of `peer` must be dropped. */
  gates(peer: string): boolean {
    if (!this.#enabled) return false;
    this.#refreshTrusted();
    if (this.#o.relaxed && this.#trusted.size === 0) return false;
    return !this.#trusted.has(peer);
  }

  /**
   * Whether a ledger message must be dropped: Go gates the peer that delivered it; in `bound`
   * mode the peer that signed it (when known) must be in the zone.
   */
  gatesMessage(m: Pick<HubMessage, "from" | "author">): boolean {
    const gated = this.gates(this.#o.mode === "go" ? m.from : m.author ?? m.from);
    if (gated) this.#counters.gated++;
    return gated;
  }

  /** A snapshot of the counters. */
  counters(): TrustZoneCounters {
    return { ...this.#counters, refused: { ...this.#counters.refused } };
  }

  /**
   * The challenge this node would publish now: the text and its signature (for tests and the
   * challenger). Undefined without a private key.
   */
  async challenge(): Promise<{ text: string; sig: string } | undefined> {
    const key = this.#o.ecdsaPrivateKey;
    if (key === undefined) return undefined;
    const text = this.#o.mode === "go" ? "challenge" : [
      BOUND_PREFIX,
      this.#c.peerId,
      String(Math.floor(this.#now() / 1000)),
      crypto.randomUUID().replaceAll("-", ""),
    ].join(" ");
    return { text, sig: await signEcdsa(key, new TextEncoder().encode(text)) };
  }

  async #tick(): Promise<void> {
    this.#refreshTrusted();
    if (!this.#trusted.has(this.#c.peerId)) {
      const c = await this.challenge();
      if (c !== undefined) {
        await this.#c.publicHub.publish(new TextEncoder().encode(c.text), { [SIGS]: c.sig });
        this.#counters.challengesSent++;
      }
    }
    if (this.#o.autoclean) {
      const present = new Set([...this.#c.topicPeers(), this.#c.peerId]);
      for (const peer of this.#trusted) {
        if (!present.has(peer)) await this.#c.ledger.delete(BUCKETS.trustzone, peer);
      }
    }
  }

  #refreshTrusted(): void {
    this.#trusted = new Set(this.#c.ledger.currentData().get(BUCKETS.trustzone)?.keys() ?? []);
  }

  #onMessage = (e: CustomEvent<HubMessage>): void => {
    this.#receive(e.detail).catch((err) =>
      this.#log.debug("challenge not handled", { error: errorMessage(err) })
    );
  };

  async #receive(m: HubMessage): Promise<void> {
    const sig = m.annotations?.[SIGS];
    if (typeof sig !== "string" || m.data.length > 512) {
      this.#counters.refused.malformed++;
      return;
    }
    const text = new TextDecoder().decode(m.data);
    let subject: string;
    if (this.#o.mode === "go") {
      // Go credits the peer that delivered the message, whatever the text says.
      subject = m.from;
    } else {
      const parts = text.split(" ");
      const author = m.author;
      if (parts.length !== 4 || parts[0] !== BOUND_PREFIX) {
        this.#counters.refused.malformed++;
        return;
      }
      const [, named, seconds, nonce] = parts;
      if (author === undefined || named !== author) {
        this.#counters.refused.wrongSender++;
        return;
      }
      const window = Math.max(MIN_WINDOW_MS, 2 * this.#o.intervalMs);
      const at = Number(seconds) * 1000;
      if (!Number.isFinite(at) || Math.abs(this.#now() - at) > window) {
        this.#counters.refused.stale++;
        return;
      }
      if (this.#nonces.has(nonce)) {
        this.#counters.refused.replay++;
        return;
      }
      this.#remember(nonce, at + window);
      subject = author;
    }
    if (this.#c.ledger.getKey(BUCKETS.trustzone, subject) !== undefined) return;
    const keys = [...(this.#c.ledger.currentData().get(BUCKETS.trustzoneAuth) ?? new Map())]
      .filter(([k]) => k.includes("ecdsa"))
      .map(([, v]) => jsonString(v))
      .filter((v): v is string => v !== undefined);
    for (const key of keys) {
      if (await verifyEcdsa(key, sig, m.data)) {
        this.#counters.admitted++;
        this.#log.info("peer admitted to the trust zone", { peer: subject });
        this.#c.ledger.persist(5_000, 120_000, BUCKETS.trustzone, subject, "");
        return;
      }
    }
    this.#counters.refused.badSignature++;
  }

  #remember(nonce: string, until: number): void {
    const now = this.#now();
    if (this.#nonces.size >= MAX_NONCES) {
      for (const [n, t] of this.#nonces) if (t < now) this.#nonces.delete(n);
      if (this.#nonces.size >= MAX_NONCES) this.#nonces.delete(this.#nonces.keys().next().value!);
    }
    this.#nonces.set(nonce, until);
  }
}

function jsonString(text: string): string | undefined {
  try {
    const v = JSON.parse(text);
    return typeof v === "string" ? v : undefined;
  } catch {
    return undefined;
  }
}
