/**
 * How a peer has behaved on the gossip topic: the application score GossipSub ranks it by, and
 * when a peer that is not a member has sent enough messages that failed to open to be banned.
 */

/** Options of {@link PeerStanding}. */
export interface PeerStandingOptions {
  /** Whether the peer is a network member (the ledger's rule, or a message of it opened). */
  isMember(peer: string): boolean;
  now?: () => number;
  /** Penalty points at which a non-member is banned (default 3: three rejected messages). */
  banAfter?: number;
  /** Half-life of penalty points (default 60 s). */
  halfLifeMs?: number;
  /** Peers remembered (default 4096; the least recently penalised are forgotten first). */
  maxPeers?: number;
}

/** Defaults of {@link PeerStandingOptions}. */
export const STANDING_DEFAULTS = {
  banAfter: 3,
  halfLifeMs: 60_000,
  maxPeers: 4096,
  /** Application score of a member: at GossipSub's default `acceptPXThreshold` (10). */
  memberScore: 10,
  /** Score taken off per penalty point: three points reach the default graylist (-80). */
  pointScore: 30,
} as const;

/**
 * Penalty points per peer, decaying with a half-life, and the score and ban decisions drawn
 * from them. Members are never banned (a member sending garbage is graylisted by its score
 * instead); a non-member reaching `banAfter` points is.
 *
 * @example
 * ```ts ignore
 * const standing = new PeerStanding({ isMember: (p) => members.has(p) });
 * standing.penalise("12D3KooWJunk"); // "penalised"
 * standing.score("12D3KooWJunk"); // -30
 * ```
 */
export class PeerStanding {
  readonly #isMember: (peer: string) => boolean;
  readonly #now: () => number;
  readonly #banAfter: number;
  readonly #halfLifeMs: number;
  readonly #maxPeers: number;
  readonly #points = new Map<string, { points: number; at: number }>();

  constructor(options: PeerStandingOptions) {
    this.#isMember = options.isMember;
    this.#now = options.now ?? Date.now;
    this.#banAfter = options.banAfter ?? STANDING_DEFAULTS.banAfter;
    this.#halfLifeMs = options.halfLifeMs ?? STANDING_DEFAULTS.halfLifeMs;
    this.#maxPeers = options.maxPeers ?? STANDING_DEFAULTS.maxPeers;
  }

  /** Adds `points` to `peer`; `ban` when it is not a member and reached the ban threshold. */
  penalise(peer: string, points = 1): "ban" | "penalised" {
    const total = this.points(peer) + points;
    this.#points.delete(peer);
    if (this.#points.size >= this.#maxPeers) {
      this.#points.delete(this.#points.keys().next().value!);
    }
    this.#points.set(peer, { points: total, at: this.#now() });
    // Points decay between offences: `banAfter` of them in quick succession (the last three
    // within about a half-life) reach the threshold.
    return total > this.#banAfter - 1 && !this.#isMember(peer) ? "ban" : "penalised";
  }

  /** The decayed penalty points of `peer`. */
  points(peer: string): number {
    const p = this.#points.get(peer);
    if (p === undefined) return 0;
    const decayed = p.points * 0.5 ** (Math.max(0, this.#now() - p.at) / this.#halfLifeMs);
    if (decayed < 0.01) {
      this.#points.delete(peer);
      return 0;
    }
    return decayed;
  }

  /**
   * GossipSub's application-specific score (used with weight 1): members start at
   * `acceptPXThreshold`, so peer exchange is taken from members only; every penalty point
   * takes 30 off, so a peer whose messages keep failing is graylisted (-80) and GossipSub stops
   * processing what it sends.
   */
  score(peer: string): number {
    const base = this.#isMember(peer) ? STANDING_DEFAULTS.memberScore : 0;
    return base - STANDING_DEFAULTS.pointScore * this.points(peer);
  }
}
