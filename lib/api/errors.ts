/** Errors of the HTTP API: bad requests (answered as JSON 4xx) and listener failures. */

import { EdgeVpnError, InputError } from "../util/errors.ts";

/** HTTP statuses the API answers bad requests with. */
export type ApiErrorStatus = 400 | 401 | 403 | 404 | 405 | 413 | 415 | 503;

/**
 * A request the API refuses; the error handler answers `{"error": message}` with `status`.
 *
 * @example
 * ```ts
 * const error = new ApiRequestError(400, "NAME_INVALID", "bucket: expected 1 to 1024 bytes, got 0");
 * ```
 */
export class ApiRequestError extends InputError {
  readonly status: ApiErrorStatus;
  constructor(status: ApiErrorStatus, code: string, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.status = status;
  }
}

/**
 * The API could not listen. Codes: `API_ADDRESS_IN_USE`, `API_PERMISSION_DENIED`,
 * `API_ADDRESS_UNAVAILABLE`, `API_SOCKET_IN_USE`, `API_SOCKET_NOT_SOCKET`, `API_LISTEN_FAILED`.
 *
 * @example
 * ```ts
 * const error = new ApiListenError("API_ADDRESS_IN_USE", "Cannot listen on 127.0.0.1:8080: address already in use");
 * ```
 */
export class ApiListenError extends EdgeVpnError {}
