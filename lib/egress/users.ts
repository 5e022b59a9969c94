/** The `users` entry a proxy needs before Go's (and our) egress nodes accept its streams. */
import type { Job } from "../ledger/ledger.ts";
import { BUCKETS, userCodec } from "../ledger/buckets.ts";
import { goTimeString, msToNs } from "../util/gotime.ts";
import type { EgressLedger } from "./components.ts";

/**
 * Adds `users[peerId] = {"PeerID", "Timestamp"}` now and on every announce tick while it is
 * missing (Go's proxy; the timestamp is Go's `time.Now().String()` and is never read).
 *
 * @example
 * ```ts
 * const job = announceUser(ledger, node.peerId, 120_000);
 * job.stop();
 * ```
 */
export function announceUser(
  ledger: Pick<EgressLedger, "getKey" | "add" | "announce">,
  peerId: string,
  intervalMs: number,
  now: () => number = Date.now,
): Job {
  return ledger.announce(intervalMs, async () => {
    if (ledger.getKey(BUCKETS.users, peerId) !== undefined) return;
    await ledger.add(BUCKETS.users, {
      [peerId]: userCodec.value({ PeerID: peerId, Timestamp: goTimeString(msToNs(now())) }),
    });
  });
}
