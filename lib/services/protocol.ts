/** Protocol IDs of TCP services and the header of ours that names the service. */
import { InputError } from "../util/errors.ts";

/** Go EdgeVPN's service tunnel: raw TCP bytes, no header; a node serves one service on it. */
export const GO_SERVICE_PROTOCOL = "/edgevpn/service/0.1";
/** Ours: the dialer names the service first, the exposer answers with a status byte. */
export const SERVICE_PROTOCOL = "/edgevpn/service/1.0.0";

/** Version byte that opens a request of {@link SERVICE_PROTOCOL}. */
const REQUEST_VERSION = 1;
/** Longest service name in a request, in UTF-8 bytes. */
export const MAX_SERVICE_NAME_BYTES = 255;

/** The exposer's answer to a request, the first byte it sends back. */
export const ServiceStatus = {
  /** Connected to the backend: raw bytes follow both ways. */
  ok: 0,
  /** This node exposes no service of that name. */
  unknownService: 1,
  /** The backend refused or did not answer: the stream ends. */
  backendUnreachable: 2,
} as const;

/** One of {@link ServiceStatus}. */
export type ServiceStatusCode = typeof ServiceStatus[keyof typeof ServiceStatus];

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * The request header of {@link SERVICE_PROTOCOL}: version 1, the name's length (1–255) and
 * the name in UTF-8.
 *
 * @throws {InputError} `SERVICE_NAME_INVALID` for an empty or too long name.
 * @example
 * ```ts
 * encodeServiceRequest("db"); // Uint8Array [1, 2, 100, 98]
 * ```
 */
export function encodeServiceRequest(name: string): Uint8Array {
  const bytes = encoder.encode(name);
  if (bytes.length === 0 || bytes.length > MAX_SERVICE_NAME_BYTES) {
    throw new InputError(
      "SERVICE_NAME_INVALID",
      `Service name must be 1 to ${MAX_SERVICE_NAME_BYTES} bytes of UTF-8, got ${bytes.length}`,
    );
  }
  const out = new Uint8Array(2 + bytes.length);
  out[0] = REQUEST_VERSION;
  out[1] = bytes.length;
  out.set(bytes, 2);
  return out;
}

/** A parsed request: the service name and how many bytes of the input the header took. */
export interface ServiceRequest {
  name: string;
  length: number;
}

/**
 * Parses the request header at the start of `bytes` (what the dialer sent so far). Returns
 * `undefined` while the header is incomplete; bytes after it belong to the service.
 *
 * @throws {InputError} `SERVICE_REQUEST_INVALID` for an unknown version, an empty name or a
 * name that is not UTF-8.
 * @example
 * ```ts
 * parseServiceRequest(Uint8Array.of(1, 2, 100, 98, 7)); // { name: "db", length: 4 }
 * parseServiceRequest(Uint8Array.of(1, 2, 100)); // undefined
 * ```
 */
export function parseServiceRequest(bytes: Uint8Array): ServiceRequest | undefined {
  if (bytes.length === 0) return undefined;
  if (bytes[0] !== REQUEST_VERSION) {
    throw new InputError(
      "SERVICE_REQUEST_INVALID",
      `Service request: expected version ${REQUEST_VERSION}, got ${bytes[0]}`,
    );
  }
  if (bytes.length < 2) return undefined;
  const size = bytes[1];
  if (size === 0) throw new InputError("SERVICE_REQUEST_INVALID", "Service request: empty name");
  if (bytes.length < 2 + size) return undefined;
  let name: string;
  try {
    name = decoder.decode(bytes.subarray(2, 2 + size));
  } catch {
    throw new InputError("SERVICE_REQUEST_INVALID", "Service request: name is not UTF-8");
  }
  return { name, length: 2 + size };
}

/**
 * The status byte of an answer, or throws for a byte that is none.
 *
 * @throws {InputError} `SERVICE_STATUS_INVALID`.
 * @example
 * ```ts
 * parseServiceStatus(0); // 0 (ok)
 * ```
 */
export function parseServiceStatus(byte: number): ServiceStatusCode {
  if (byte === 0 || byte === 1 || byte === 2) return byte;
  throw new InputError("SERVICE_STATUS_INVALID", `Service answer: unknown status ${byte}`);
}
