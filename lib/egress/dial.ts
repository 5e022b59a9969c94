/** Connects an egress node to a destination: resolve, check each address against the policy, connect to a checked one. */
import { lookup } from "node:dns/promises";
import { parseIP } from "../net/ip.ts";
import { EdgeVpnError, errorMessage } from "../util/errors.ts";
import { clampTimerMs } from "../util/timer.ts";
import { isNonPublicAddress } from "./address_policy.ts";
import { describeTunnelStatus, TunnelStatus, type TunnelStatusCode } from "./protocol.ts";
import type { TunnelTarget } from "./protocol.ts";

/**
 * Why a destination could not be reached, as the tunnel status the dialer is told.
 *
 * @example
 * ```ts
 * new TargetError(TunnelStatus.forbidden, "10.0.0.1 is a private address").status; // 1
 * ```
 */
export class TargetError extends EdgeVpnError {
  readonly status: TunnelStatusCode;
  constructor(status: TunnelStatusCode, message: string, options?: ErrorOptions) {
    super("EGRESS_TARGET_FAILED", message, options);
    this.status = status;
  }
}

/** Resolves a host name to IP address texts (the system resolver by default). */
export type HostResolver = (host: string) => Promise<string[]>;

/** Options of {@link connectTarget}. */
export interface ConnectTargetOptions {
  /** Connect to private, loopback and link-local addresses too (Go's behaviour). */
  allowPrivate: boolean;
  /** Time for resolving and connecting, together. */
  timeoutMs: number;
  signal?: AbortSignal;
  resolve?: HostResolver;
}

/** Addresses tried per destination, in the resolver's order. */
const MAX_ADDRESSES = 4;

/**
 * The system resolver (getaddrinfo: /etc/hosts, then DNS), every address.
 *
 * @example
 * ```ts
 * await systemResolver("localhost"); // ["127.0.0.1"]
 * ```
 */
export const systemResolver: HostResolver = async (host) =>
  (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/**
 * Opens a TCP connection to `target`. A host name is resolved first and every address it
 * gives is checked before any connection is attempted, so a name cannot slip a private address
 * past the policy (the connection goes to the address that was checked, never to a second
 * resolution).
 *
 * @throws {TargetError} with the {@link TunnelStatus} to report.
 * @example
 * ```ts
 * const conn = await connectTarget({ host: "example.com", port: 80 }, { allowPrivate: false, timeoutMs: 10_000 });
 * ```
 */
export async function connectTarget(
  target: TunnelTarget,
  options: ConnectTargetOptions,
): Promise<Deno.TcpConn> {
  const deadline = AbortSignal.timeout(clampTimerMs(options.timeoutMs));
  const signal = options.signal ? AbortSignal.any([deadline, options.signal]) : deadline;
  const where = `${target.host}:${target.port}`;
  const addresses = parseIP(target.host) !== null
    ? [target.host]
    : await resolveHost(target.host, options.resolve ?? systemResolver, signal);
  const allowed = options.allowPrivate
    ? addresses
    : addresses.filter((a) => !isNonPublicAddress(a));
  if (allowed.length === 0) {
    throw new TargetError(
      TunnelStatus.forbidden,
      `${where}: ${describeTunnelStatus(TunnelStatus.forbidden)} (${addresses.join(", ")})`,
    );
  }
  let last: TargetError | undefined;
  for (const hostname of allowed.slice(0, MAX_ADDRESSES)) {
    if (signal.aborted) break;
    try {
      return await Deno.connect({ hostname, port: target.port, signal });
    } catch (e) {
      last = new TargetError(statusOfConnectError(e, signal), `${where}: ${errorMessage(e)}`, {
        cause: e,
      });
    }
  }
  throw last ?? new TargetError(TunnelStatus.timeout, `${where}: no answer in time`);
}

async function resolveHost(
  host: string,
  resolve: HostResolver,
  signal: AbortSignal,
): Promise<string[]> {
  // getaddrinfo cannot be cancelled: stop waiting for it instead.
  const { promise: aborted, reject } = Promise.withResolvers<never>();
  const onAbort = () =>
    reject(new TargetError(TunnelStatus.timeout, `${host}: resolving timed out`));
  signal.addEventListener("abort", onAbort, { once: true });
  if (signal.aborted) onAbort();
  const resolving = resolve(host);
  resolving.catch(() => {});
  aborted.catch(() => {});
  try {
    const addresses = await Promise.race([resolving, aborted]);
    const valid = addresses.filter((a) => parseIP(a) !== null);
    if (valid.length === 0) throw new Error("no address");
    return valid;
  } catch (e) {
    if (e instanceof TargetError) throw e;
    throw new TargetError(
      TunnelStatus.unresolved,
      `${host}: ${describeTunnelStatus(TunnelStatus.unresolved)} (${errorMessage(e)})`,
      { cause: e },
    );
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

function statusOfConnectError(e: unknown, signal: AbortSignal): TunnelStatusCode {
  if (signal.aborted) return TunnelStatus.timeout;
  switch ((e as Error)?.name) {
    case "ConnectionRefused":
      return TunnelStatus.refused;
    case "TimedOut":
      return TunnelStatus.timeout;
    case "NetworkUnreachable":
    case "HostUnreachable":
    case "AddrNotAvailable":
      return TunnelStatus.unreachable;
    default:
      return TunnelStatus.failed;
  }
}
