/** Chooses the egress node for a proxied request: announced, alive, not failing, able to carry it. */
import { BUCKETS } from "../ledger/buckets.ts";
import type { EgressLedger } from "../egress/components.ts";

/** How long an egress node that failed is passed over while others are available. */
const FAILURE_PENALTY_MS = 30_000;
/** Peers remembered as failing or as speaking only Go's protocol. */
const MAX_REMEMBERED = 4096;

/** Options of {@link EgressPicker}. */
export interface EgressPickerOptions {
  /** Egress nodes whose heartbeat is older than this are dead (Go `--dead-interval`). */
  deadIntervalMs: number;
  random?: () => number;
  now?: () => number;
}

/**
 * Picks egress nodes as Go's proxy does (keys of the `egress` bucket that are alive within the
 * dead interval, uniformly at random), and also passes over nodes that failed in the last
 * 30 s while others remain, and, for tunnels, nodes known to speak only Go's protocol.
 *
 * @example
 * ```ts
 * const picker = new EgressPicker(ledger, selfId, { deadIntervalMs: 600_000 });
 * const peer = picker.pick({ exclude: new Set(), tunnel: true });
 * ```
 */
export class EgressPicker {
  readonly #ledger: Pick<EgressLedger, "currentData" | "availableNodes">;
  readonly #self: string;
  readonly #deadIntervalMs: number;
  readonly #random: () => number;
  readonly #now: () => number;
  readonly #failedUntil = new Map<string, number>();
  readonly #goOnly = new Set<string>();

  constructor(
    ledger: Pick<EgressLedger, "currentData" | "availableNodes">,
    self: string,
    options: EgressPickerOptions,
  ) {
    this.#ledger = ledger;
    this.#self = self;
    this.#deadIntervalMs = options.deadIntervalMs;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? Date.now;
  }

  /** Egress nodes that are alive: keys of `egress` with a heartbeat within the dead interval. */
  alive(): string[] {
    const egress = this.#ledger.currentData().get(BUCKETS.egress);
    if (egress === undefined || egress.size === 0) return [];
    return this.#ledger.availableNodes(this.#deadIntervalMs).filter((peer) =>
      peer !== this.#self && egress.has(peer)
    );
  }

  /**
   * One live egress node not in `exclude`, preferring nodes that have not failed lately; with
   * `tunnel`, only nodes not known to lack our tunnel protocol. Undefined when none is left.
   */
  pick(options: { exclude: ReadonlySet<string>; tunnel: boolean }): string | undefined {
    const now = this.#now();
    const usable = this.alive().filter((peer) =>
      !options.exclude.has(peer) && !(options.tunnel && this.#goOnly.has(peer))
    );
    const healthy = usable.filter((peer) => (this.#failedUntil.get(peer) ?? 0) <= now);
    const from = healthy.length > 0 ? healthy : usable;
    if (from.length === 0) return undefined;
    return from[Math.min(from.length - 1, Math.floor(this.#random() * from.length))];
  }

  /** True when some live egress node was passed over only because it speaks Go's protocol. */
  hasGoOnly(): boolean {
    return this.alive().some((peer) => this.#goOnly.has(peer));
  }

  /** Remembers that `peer` failed to serve a request. */
  failed(peer: string): void {
    remember(this.#failedUntil, peer, this.#now() + FAILURE_PENALTY_MS);
  }

  /** Forgets a failure of `peer`. */
  succeeded(peer: string): void {
    this.#failedUntil.delete(peer);
  }

  /** Remembers whether `peer` speaks our tunnel protocol (a node may be upgraded). */
  setGoOnly(peer: string, goOnly: boolean): void {
    if (!goOnly) {
      this.#goOnly.delete(peer);
      return;
    }
    if (this.#goOnly.size >= MAX_REMEMBERED) this.#goOnly.clear();
    this.#goOnly.add(peer);
  }
}

function remember(map: Map<string, number>, key: string, value: number): void {
  map.delete(key);
  if (map.size >= MAX_REMEMBERED) map.delete(map.keys().next().value!);
  map.set(key, value);
}
