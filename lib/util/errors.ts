/** Error classes shared by every part of the library, each with a stable `code`. */

/**
 * Base class of every error the library throws on purpose.
 *
 * @example
 * ```ts
 * try {
 *   throw new EdgeVpnError("EXAMPLE", "Cannot do X: expected Y, got Z");
 * } catch (e) {
 *   if (e instanceof EdgeVpnError) console.log(e.code);
 * }
 * ```
 */
export class EdgeVpnError extends Error {
  /** Stable machine-readable code, e.g. `TOKEN_INVALID`. */
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * Bad input from the user (token, config file, flag value): the CLI maps it to exit code 2.
 *
 * @example
 * ```ts
 * const error = new UsageError("BAD_FLAG", "--mtu: expected an integer, got \"big\"");
 * ```
 */
export class UsageError extends EdgeVpnError {}

/**
 * Bytes from the network or from disk that do not parse: dropped and counted, never fatal.
 *
 * @example
 * ```ts
 * const error = new InputError("SEAL_INVALID", "Cannot open sealed message: odd-length hex");
 * ```
 */
export class InputError extends EdgeVpnError {}

/**
 * Returns a one-line description of any thrown value, for logs and CLI messages.
 *
 * @example
 * ```ts
 * errorMessage(new Error("boom")); // "boom"
 * ```
 */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message.split("\n")[0];
  return String(e).split("\n")[0];
}

/**
 * Why binding a local address failed, in words for a one-line error message.
 *
 * @example
 * ```ts
 * listenErrorReason(new Deno.errors.AddrInUse("os error 98")); // "the address is in use"
 * ```
 */
export function listenErrorReason(e: unknown): string {
  return e instanceof Deno.errors.AddrInUse
    ? "the address is in use"
    : e instanceof Deno.errors.PermissionDenied
    ? "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
    : e instanceof Deno.errors.AddrNotAvailable
    ? "no interface has this address"
    : errorMessage(e);
}
