/** SOCKS5 framing (RFC 1928) for the proxy: the greeting, the request and the reply, parsed within bounds. */
import { isTunnelHost, type TunnelTarget } from "../egress/protocol.ts";
import { formatIP } from "../net/ip.ts";
import { InputError } from "../util/errors.ts";

/** The version byte of every SOCKS5 message. */
export const SOCKS_VERSION = 5;
/** The method "no authentication required". */
export const SOCKS_NO_AUTH = 0;
/** The method answer "no acceptable methods". */
export const SOCKS_NO_ACCEPTABLE = 0xff;
/** Longest greeting: version, count, 255 methods. */
export const MAX_SOCKS_GREETING_BYTES = 2 + 255;
/** Longest request: version, command, reserved, address type, a 255-byte name and a port. */
export const MAX_SOCKS_REQUEST_BYTES = 4 + 1 + 255 + 2;

/** Commands of a request. */
export const SocksCommand = { connect: 1, bind: 2, udpAssociate: 3 } as const;

/** Reply codes (RFC 1928 §6). */
export const SocksReply = {
  succeeded: 0,
  generalFailure: 1,
  notAllowed: 2,
  networkUnreachable: 3,
  hostUnreachable: 4,
  connectionRefused: 5,
  ttlExpired: 6,
  commandNotSupported: 7,
  addressTypeNotSupported: 8,
} as const;

/** One of {@link SocksReply}. */
export type SocksReplyCode = typeof SocksReply[keyof typeof SocksReply];

/** A parsed greeting: the methods the client offers and the greeting's length. */
export interface SocksGreeting {
  methods: number[];
  length: number;
}

/**
 * A malformed SOCKS5 message; `reply` is the code to answer with, when one is due.
 *
 * @example
 * ```ts
 * new SocksError("SOCKS request: reserved byte must be 0", SocksReply.generalFailure).reply; // 1
 * ```
 */
export class SocksError extends InputError {
  readonly reply: SocksReplyCode | undefined;
  constructor(message: string, reply?: SocksReplyCode) {
    super("SOCKS_INVALID", message);
    this.reply = reply;
  }
}

/**
 * Parses the client's greeting at the start of `bytes`; `undefined` while incomplete.
 *
 * @throws {SocksError} for a version other than 5 or an empty method list.
 * @example
 * ```ts
 * parseSocksGreeting(Uint8Array.of(5, 1, 0)); // { methods: [0], length: 3 }
 * ```
 */
export function parseSocksGreeting(bytes: Uint8Array): SocksGreeting | undefined {
  if (bytes.length === 0) return undefined;
  if (bytes[0] !== SOCKS_VERSION) {
    throw new SocksError(`SOCKS greeting: expected version 5, got ${bytes[0]}`);
  }
  if (bytes.length < 2) return undefined;
  const count = bytes[1];
  if (count === 0) throw new SocksError("SOCKS greeting: no authentication method offered");
  if (bytes.length < 2 + count) return undefined;
  return { methods: [...bytes.subarray(2, 2 + count)], length: 2 + count };
}

/** A parsed request: its command, the destination and the request's length. */
export interface SocksRequest {
  command: number;
  target: TunnelTarget;
  length: number;
}

/**
 * Parses the client's request at the start of `bytes`; `undefined` while incomplete. The
 * destination is an IPv4 address, an IPv6 address or a domain name (resolved by the egress
 * node, as with socks5h).
 *
 * @throws {SocksError} with the reply to send: version, reserved byte, address type (8),
 * port 0 or a name that is not a host name.
 * @example
 * ```ts
 * parseSocksRequest(Uint8Array.of(5, 1, 0, 1, 127, 0, 0, 1, 0, 80)); // { command: 1, target: { host: "127.0.0.1", port: 80 }, length: 10 }
 * ```
 */
export function parseSocksRequest(bytes: Uint8Array): SocksRequest | undefined {
  if (bytes.length === 0) return undefined;
  if (bytes[0] !== SOCKS_VERSION) {
    throw new SocksError(`SOCKS request: expected version 5, got ${bytes[0]}`);
  }
  if (bytes.length < 4) return undefined;
  if (bytes[2] !== 0) {
    throw new SocksError("SOCKS request: reserved byte must be 0", SocksReply.generalFailure);
  }
  let host: string;
  let at: number;
  switch (bytes[3]) {
    case 1:
      if (bytes.length < 10) return undefined;
      host = formatIP(bytes.subarray(4, 8));
      at = 8;
      break;
    case 4:
      if (bytes.length < 22) return undefined;
      host = formatIP(bytes.subarray(4, 20));
      at = 20;
      break;
    case 3: {
      if (bytes.length < 5) return undefined;
      const size = bytes[4];
      if (size === 0) {
        throw new SocksError("SOCKS request: empty domain name", SocksReply.hostUnreachable);
      }
      if (bytes.length < 5 + size + 2) return undefined;
      host = String.fromCharCode(...bytes.subarray(5, 5 + size)).toLowerCase();
      if (!isTunnelHost(host) || host.includes(":")) {
        throw new SocksError("SOCKS request: malformed domain name", SocksReply.hostUnreachable);
      }
      at = 5 + size;
      break;
    }
    default:
      throw new SocksError(
        `SOCKS request: unknown address type ${bytes[3]}`,
        SocksReply.addressTypeNotSupported,
      );
  }
  const port = (bytes[at] << 8) | bytes[at + 1];
  if (port === 0) throw new SocksError("SOCKS request: port 0", SocksReply.hostUnreachable);
  return { command: bytes[1], target: { host, port }, length: at + 2 };
}

/**
 * A reply with `code` and an unspecified bound address (0.0.0.0:0): the proxy's address on
 * the egress node's side is neither known here nor useful to a CONNECT client.
 *
 * @example
 * ```ts
 * socksReply(SocksReply.succeeded); // Uint8Array [5, 0, 0, 1, 0, 0, 0, 0, 0, 0]
 * ```
 */
export function socksReply(code: SocksReplyCode): Uint8Array {
  return Uint8Array.of(SOCKS_VERSION, code, 0, 1, 0, 0, 0, 0, 0, 0);
}
