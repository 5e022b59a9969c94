/** The `users` entry a node needs before Go's service, file and egress servers accept it. */
import type { Job } from "../ledger/ledger.ts";
import { BUCKETS, fileCodec, serviceCodec, userCodec } from "../ledger/buckets.ts";
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
      [peerId]: userCodec.value({ PeerID: peerId, Timestamp: goTimeString(msToNs(now())) }),
    });
  });
}

/**
 * The peer that announced `name` in a `services` or `files` bucket (the value's `PeerID`, read
 * by the bucket's codec), or undefined when there is no such entry or it names nobody.
 *
 * @example
 * ```ts
 * providerOf(ledger, "services", "db"); // "12D3KooW…"
 * ```
 */
export function providerOf(
  ledger: Pick<ServiceLedger, "getKey">,
  bucket: typeof BUCKETS.services | typeof BUCKETS.files,
  name: string,
): string | undefined {
  const text = ledger.getKey(bucket, name);
  if (text === undefined) return undefined;
  const codec = bucket === BUCKETS.services ? serviceCodec : fileCodec;
  const peer = codec.parse(text).PeerID;
  return peer === "" ? undefined : peer;
}
