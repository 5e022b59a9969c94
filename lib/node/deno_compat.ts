/** Node.js behaviour that js-libp2p relies on and Deno's web globals lack. */
import { BroadcastChannel as NodeBroadcastChannel } from "node:worker_threads";
import { clampTimerMs } from "../util/timer.ts";

let installed = false;

/**
 * Gives two globals the Node.js behaviour js-libp2p is written for (idempotent). Both only
 * decide whether an idle process may exit; neither changes what runs.
 *
 * 1. `BroadcastChannel.prototype.unref()`/`ref()`. The peer store locks with `mortice`, which
 *    opens one process-wide `BroadcastChannel` on first use and calls `channel.unref?.()` so
 *    it never holds the process open. Deno's web `BroadcastChannel` has no `unref`, so any
 *    `deno run` that ever connected to a peer could never exit by itself. Node's class in
 *    `node:worker_threads` extends the same global class and implements `unref()` with Deno's
 *    internal ref switch, so its methods are borrowed as they are.
 * 2. `AbortSignal.timeout()` with an unreferenced timer. Deno keeps the process alive while a
 *    timeout signal has listeners; Node never does. libp2p, kad-dht and gossipsub create such
 *    signals for every stream negotiation, DHT request and disconnect (5–10 s) and leave their
 *    listeners attached, so after `stop()` a process lingered for up to 10 s. Deadlines are
 *    rounded up to 50 ms and share one timer (a stream per packet made one timer per packet).
 *
 * @example
 * ```ts
 * installDenoCompat();
 * const channel = new BroadcastChannel("x") as BroadcastChannel & { unref(): void };
 * channel.unref();
 * ```
 */
export function installDenoCompat(): void {
  if (installed) return;
  installed = true;
  unrefBroadcastChannels();
  unrefTimeoutSignals();
}

/** Deadlines of timeout signals are rounded up to this many milliseconds and share one timer. */
const TIMEOUT_GRANULARITY_MS = 50;

function unrefTimeoutSignals(): void {
  // libp2p makes one of these per stream negotiation (a stream per packet on /edgevpn/0.1):
  // one unreferenced timer per 50 ms of deadlines instead of one per signal.
  const buckets = new Map<number, AbortController[]>();
  const timeout = (ms: number): AbortSignal => {
    const controller = new AbortController();
    const due = Math.ceil((Date.now() + ms) / TIMEOUT_GRANULARITY_MS);
    let bucket = buckets.get(due);
    if (bucket === undefined) {
      const controllers: AbortController[] = bucket = [];
      buckets.set(due, controllers);
      const timer = setTimeout(() => {
        buckets.delete(due);
        const reason = new DOMException("The operation was aborted due to timeout", "TimeoutError");
        for (const c of controllers) c.abort(reason);
      }, clampTimerMs(due * TIMEOUT_GRANULARITY_MS - Date.now()));
      Deno.unrefTimer(timer);
    }
    bucket.push(controller);
    return controller.signal;
  };
  Object.defineProperty(AbortSignal, "timeout", {
    value: timeout,
    configurable: true,
    writable: true,
  });
}

function unrefBroadcastChannels(): void {
  const proto = globalThis.BroadcastChannel?.prototype as
    | { unref?: () => unknown; ref?: () => unknown }
    | undefined;
  const nodeProto: { unref?: () => unknown; ref?: () => unknown } = NodeBroadcastChannel.prototype;
  if (!proto || typeof proto.unref === "function") return;
  if (
    typeof nodeProto.unref !== "function" ||
    !(NodeBroadcastChannel.prototype instanceof globalThis.BroadcastChannel)
  ) return;
  Object.defineProperty(proto, "unref", {
    value: nodeProto.unref,
    configurable: true,
    writable: true,
  });
  Object.defineProperty(proto, "ref", { value: nodeProto.ref, configurable: true, writable: true });
}
