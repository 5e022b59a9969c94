/** Opens a stream through an egress node for the proxy: picks a live node, retries another once, speaks our tunnel or Go's protocol. */
import type { EgressNode } from "../egress/components.ts";
import {
  EGRESS_TUNNEL_PROTOCOL,
  encodeTunnelRequest,
  GO_EGRESS_PROTOCOL,
  parseTunnelStatus,
  TunnelStatus,
  type TunnelStatusCode,
  type TunnelTarget,
} from "../egress/protocol.ts";
import { lingerThenReset } from "../services/pipe.ts";
import type { NodeStream } from "../node/stream.ts";
import { EdgeVpnError, errorMessage } from "../util/errors.ts";
import { clampTimerMs } from "../util/timer.ts";
import type { EgressPicker } from "./picker.ts";

/** Failed attempts (egress nodes that failed) a request may make before giving up. */
export const MAX_EGRESS_FAILURES = 2;

/** An open way out, or why there is none. */
export type EgressOpening =
  /** Our tunnel to the destination is up; `first` holds destination bytes read with the status. */
  | {
    kind: "tunnel";
    peer: string;
    stream: NodeStream;
    reader: AsyncIterator<Uint8Array>;
    first: Uint8Array;
  }
  /** A stream of Go's `/edgevpn/egress/0.1`: one HTTP request goes next. */
  | { kind: "go"; peer: string; stream: NodeStream; reader: AsyncIterator<Uint8Array> }
  /** No live egress node. */
  | { kind: "none" }
  /** Live egress nodes exist, but all speak only Go's protocol (a tunnel was needed). */
  | { kind: "goOnly" }
  /** Egress nodes were tried and failed; `message` says how the last one did. */
  | { kind: "failed"; message: string }
  /** The egress node answered that the destination cannot be reached. */
  | { kind: "target"; status: TunnelStatusCode };

/** The attempts of one request: nodes tried and failures so far (shared by its retries). */
export interface EgressAttempts {
  tried: Set<string>;
  failures: number;
}

/** What {@link openEgress} needs. */
export interface EgressClientContext {
  node: Pick<EgressNode, "dialProtocol">;
  picker: EgressPicker;
  /** Time to open a stream and, for a tunnel, to get the egress node's status. */
  timeoutMs: number;
  /** Counts a retry on another node. */
  onRetry: () => void;
}

/**
 * Opens a way to `target` through a live egress node. `tunnel` requires our tunnel protocol
 * (CONNECT, SOCKS5); otherwise Go's protocol is accepted for a plain HTTP request. A node that
 * cannot be dialled or fails before answering counts as a failure: another is tried, up to
 * {@link MAX_EGRESS_FAILURES} failures per request (shared through `attempts`).
 *
 * @example
 * ```ts ignore
 * const opening = await openEgress(ctx, { host: "example.com", port: 443 }, true, { tried: new Set(), failures: 0 });
 * ```
 */
export async function openEgress(
  ctx: EgressClientContext,
  target: TunnelTarget,
  tunnel: boolean,
  attempts: EgressAttempts,
): Promise<EgressOpening> {
  let last = "";
  const fail = (peer: string, message: string) => {
    ctx.picker.failed(peer);
    attempts.failures++;
    last = message;
  };
  while (attempts.failures < MAX_EGRESS_FAILURES) {
    const peer = ctx.picker.pick({ exclude: attempts.tried, tunnel });
    if (peer === undefined) break;
    if (attempts.failures > 0) ctx.onRetry();
    attempts.tried.add(peer);
    let stream: NodeStream;
    try {
      stream = await ctx.node.dialProtocol(
        peer,
        tunnel ? EGRESS_TUNNEL_PROTOCOL : [EGRESS_TUNNEL_PROTOCOL, GO_EGRESS_PROTOCOL],
        { timeoutMs: ctx.timeoutMs },
      );
    } catch (e) {
      if (tunnel && e instanceof EdgeVpnError && e.code === "PROTOCOL_UNSUPPORTED") {
        ctx.picker.setGoOnly(peer, true);
        continue;
      }
      fail(peer, `cannot open a stream to egress node ${peer}: ${errorMessage(e)}`);
      continue;
    }
    const reader = stream[Symbol.asyncIterator]();
    if (stream.protocol === GO_EGRESS_PROTOCOL) {
      ctx.picker.setGoOnly(peer, true);
      return { kind: "go", peer, stream, reader };
    }
    ctx.picker.setGoOnly(peer, false);
    try {
      await stream.write(encodeTunnelRequest(target));
      const first = await nextWithin(reader, ctx.timeoutMs);
      if (first === undefined || first.length === 0) {
        throw new Error("the egress node ended the stream without an answer");
      }
      const status = parseTunnelStatus(first[0]);
      ctx.picker.succeeded(peer);
      if (status !== TunnelStatus.ok) {
        void stream.close().catch(() => {}).then(() => lingerThenReset(stream, 5_000));
        return { kind: "target", status };
      }
      return { kind: "tunnel", peer, stream, reader, first: first.subarray(1) };
    } catch (e) {
      stream.reset();
      fail(peer, `egress node ${peer} failed: ${errorMessage(e)}`);
    }
  }
  if (attempts.failures > 0) return { kind: "failed", message: last };
  if (tunnel && ctx.picker.hasGoOnly()) return { kind: "goOnly" };
  return { kind: "none" };
}

/**
 * The next chunk of `reader`; `undefined` at its end; throws after `timeoutMs` (the caller
 * resets the stream, which ends the pending read).
 */
async function nextWithin(
  reader: AsyncIterator<Uint8Array>,
  timeoutMs: number,
): Promise<Uint8Array | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${timeoutMs} ms`)),
      clampTimerMs(timeoutMs),
    );
  });
  const next = reader.next();
  next.catch(() => {});
  try {
    const got = await Promise.race([next, deadline]);
    return got.done ? undefined : got.value;
  } finally {
    clearTimeout(timer);
  }
}
