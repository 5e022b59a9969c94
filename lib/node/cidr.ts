/** IPv4/IPv6 CIDR parsing and matching for the connection gater (no I/O). */
import { InputError } from "../util/errors.ts";

/**
 * A parsed network: address bytes (4 or 16) and prefix length.
 *
 * @example
 * ```ts
 * const net = parseCidr("10.1.0.0/24");
 * cidrContains(net, "10.1.0.7"); // true
 * ```
 */
export interface Cidr {
  bytes: Uint8Array;
  prefix: number;
  /** The text it was parsed from. */
  text: string;
}

/**
 * Parses `a.b.c.d/n`, `x:y::z/n`, or a bare address (a /32 or /128 network).
 *
 * @throws {InputError} `CIDR_INVALID` for anything else.
 * @example
 * ```ts
 * parseCidr("fd00::/8").prefix; // 8
 * ```
 */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf("/");
  const addr = slash < 0 ? text : text.slice(0, slash);
  const bytes = parseIp(addr);
  if (!bytes) throw invalid(text, "an IPv4 or IPv6 address");
  const max = bytes.length * 8;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) throw invalid(text, `a prefix length 0–${max}`);
    prefix = Number(p);
  }
  return { bytes, prefix, text };
}

/**
 * True when `address` (text or bytes) lies in `net`. IPv4-mapped IPv6 addresses
 * (`::ffff:a.b.c.d`) match IPv4 networks.
 *
 * @example
 * ```ts
 * cidrContains(parseCidr("10.0.0.0/8"), "::ffff:10.2.3.4"); // true
 * ```
 */
export function cidrContains(net: Cidr, address: string | Uint8Array): boolean {
  let ip = typeof address === "string" ? parseIp(address) : address;
  if (!ip) return false;
  if (ip.length === 16 && net.bytes.length === 4 && isV4Mapped(ip)) ip = ip.subarray(12);
  if (ip.length !== net.bytes.length) return false;
  const full = net.prefix >> 3;
  for (let i = 0; i < full; i++) if (ip[i] !== net.bytes[i]) return false;
  const rest = net.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (ip[full] & mask) === (net.bytes[full] & mask);
}

/**
 * Parses an IPv4 or IPv6 address (an IPv6 zone suffix `%eth0` is ignored); undefined when it
 * is not one.
 *
 * @example
 * ```ts
 * parseIp("127.0.0.1"); // Uint8Array [127, 0, 0, 1]
 * ```
 */
export function parseIp(text: string): Uint8Array | undefined {
  return text.includes(":") ? parseIpv6(text.replace(/%.*$/, "")) : parseIpv4(text);
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i])) return undefined;
    const n = Number(parts[i]);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIpv6(text: string): Uint8Array | undefined {
  let head = text;
  let tail = "";
  const dbl = text.indexOf("::");
  if (dbl >= 0) {
    if (text.indexOf("::", dbl + 1) >= 0) return undefined;
    head = text.slice(0, dbl);
    tail = text.slice(dbl + 2);
  }
  const groups = (s: string): number[] | undefined => {
    if (s === "") return [];
    const out: number[] = [];
    const parts = s.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (i === parts.length - 1 && p.includes(".")) {
        const v4 = parseIpv4(p);
        if (!v4) return undefined;
        out.push(v4[0] << 8 | v4[1], v4[2] << 8 | v4[3]);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) {
        out.push(parseInt(p, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const h = groups(head);
  const t = groups(tail);
  if (!h || !t) return undefined;
  const missing = 8 - h.length - t.length;
  if (dbl < 0 ? missing !== 0 : missing < 1) return undefined;
  const all = [...h, ...new Array(dbl < 0 ? 0 : missing).fill(0), ...t];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

function isV4Mapped(ip: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (ip[i] !== 0) return false;
  return ip[10] === 0xff && ip[11] === 0xff;
}

function invalid(text: string, expected: string): InputError {
  return new InputError(
    "CIDR_INVALID",
    `Cannot parse CIDR ${JSON.stringify(text)}: expected ${expected}`,
  );
}
