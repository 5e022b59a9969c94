/** The `users` entry a node needs before Go's service, file and egress servers accept it. */
import type { Job } from "../ledger/ledger.ts";
import { BUCKETS } from "../ledger/policy.ts";
import { goTimeString, msToNs } from "../util/gotime.ts";
import type { ServiceLedger } from "./components.ts";

/**
 * Adds `users[peerId] = {"PeerID", "Timestamp"}` now and on every announce tick while it is
 * missing (Go's `ConnectNetworkService` and `ReceiveFile`; the timestamp is Go's
 * `time.Now().String()` and is never read).
 *
 * @example
 * ```ts
 * const job = announceUser(ledger, node.peerId, 10_000);
 * job.stop();
 * ```
 */
export function announceUser(
  ledger: Pick<ServiceLedger, "getKey" | "add" | "announce">,
  peerId: string,
  intervalMs: number,
  now: () => number = Date.now,
): Job {
  return ledger.announce(intervalMs, async () => {
    if (ledger.getKey(BUCKETS.users, peerId) !== undefined) return;
    await ledger.add(BUCKETS.users, {
      [peerId]: { PeerID: peerId, Timestamp: goTimeString(msToNs(now())) },
    });
  });
}

/**
 * The `PeerID` of a `services` or `files` value (`{"PeerID","Name"}`), or undefined when the
 * text is not such an object.
 *
 * @example
 * ```ts
 * ownerOfEntry('{"PeerID":"12D3KooW…","Name":"db"}'); // "12D3KooW…"
 * ```
 */
export function ownerOfEntry(valueText: string | undefined): string | undefined {
  if (valueText === undefined || valueText.length > 4096) return undefined;
  try {
    const v = JSON.parse(valueText);
    return typeof v?.PeerID === "string" && v.PeerID !== "" ? v.PeerID : undefined;
  } catch {
    return undefined;
  }
}
