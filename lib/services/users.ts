/** The `users` entry a node needs before Go's service, file and egress servers accept it. */
import type { Job } from "../ledger/ledger.ts";
import { BUCKETS, fileCodec, serviceCodec, userCodec } from "../ledger/buckets.ts";
import { goTimeString, msToNs } from "../util/gotime.ts";
import { clampTimerMs } from "../util/timer.ts";
import type { ServiceLedger } from "./components.ts";

/**
 * Adds `users[peerId] = {"PeerID", "Timestamp"}` now and on every announce tick while it is
 * missing (Go's `ConnectNetworkService`, `ReceiveFile` and proxy; the timestamp is Go's
 * `time.Now().String()` and is never read).
 *
 * @example
 * ```ts ignore
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
 * ```ts ignore
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

/** How long a stream from a peer without a `users` entry waits for it before being reset. */
export const USER_GRACE_MS = 5_000;

/**
 * Resolves true once `isUser(peer)` holds, checking again at every ledger change, or false
 * after `ms`. A receiver or connector announces its `users` entry as it starts and may open
 * its stream before the entry has reached us; Go resets such a stream at once, and Go's
 * `file-receive` then saves an empty file and exits 0.
 *
 * @example
 * ```ts ignore
 * if (!(await untilUser(ledger, isUser, peer, USER_GRACE_MS))) stream.reset();
 * ```
 */
export function untilUser(
  ledger: Pick<ServiceLedger, "addEventListener" | "removeEventListener">,
  isUser: (peer: string) => boolean,
  peer: string,
  ms: number,
): Promise<boolean> {
  if (isUser(peer)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      ledger.removeEventListener("change", check);
      resolve(ok);
    };
    const check = () => {
      if (isUser(peer)) finish(true);
    };
    const timer = setTimeout(() => finish(isUser(peer)), clampTimerMs(ms));
    ledger.addEventListener("change", check);
  });
}
