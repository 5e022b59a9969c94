/** Records of the `dns` ledger bucket: the value (type number → data text) and the data text of each type, checked and turned into wire form. */
import { Buffer } from "node:buffer";
import { expandedIPv6, parseIPv4, parseIPv6 } from "../net/ip.ts";
import { EdgeVpnError } from "../util/errors.ts";
import { dnsTypeName } from "./types.ts";
import { type DnsRecord, packetTypeName } from "./wire.ts";

/** Record data text that is not valid for its type. */
export class DnsRecordError extends EdgeVpnError {
  constructor(message: string) {
    super("DNS_RECORD_INVALID", message);
  }
}

/**
 * Record data in the form dns-packet encodes: the type name it uses (`UNKNOWN_<n>` for data
 * written in RFC 3597 form) and the data.
 */
export interface RecordData {
  type: number;
  packetType: string;
  data: unknown;
}

/** Types whose zone-file text is parsed here; any type also takes the RFC 3597 form `\# <len> <hex>`. */
export const STRUCTURED_TYPES: readonly number[] = [1, 2, 5, 6, 12, 15, 16, 28, 33, 39, 257];

/** Longest record data text considered (the ledger bounds values; this bounds parsing). */
const MAX_TEXT = 65_535;

/**
 * Checks the data text of a record of `type` as a zone file writes it after the type
 * (`10.1.0.5`, `10 mail.example.com.`, `"v=spf1 -all"`, `\# 4 0a010005`) and returns its wire
 * form. Names without a trailing dot are taken as absolute, as Go EdgeVPN (the origin is the
 * root). Escapes and zone-file comments are not accepted in names.
 *
 * @throws {DnsRecordError} naming the type, what was expected and what was received.
 * @example
 * ```ts
 * parseRecordData(15, "10 mail.example.com").data; // { preference: 10, exchange: "mail.example.com." }
 * parseRecordData(1, "10.1.0.300"); // throws DnsRecordError
 * ```
 */
export function parseRecordData(type: number, text: string): RecordData {
  const name = dnsTypeName(type);
  const fail = (expected: string): never => {
    throw new DnsRecordError(
      `${name} record: expected ${expected}, got ${JSON.stringify(text.slice(0, 200))}`,
    );
  };
  if (text.length > MAX_TEXT) fail(`at most ${MAX_TEXT} characters`);
  const tokens = tokenize(text) ?? fail("balanced quotes and valid escapes");
  if (tokens.length >= 1 && tokens[0].raw === "\\#") return generic(type, tokens, fail);
  const packetType = packetTypeName(type);
  const one = (expected: string) => {
    if (tokens.length !== 1 || tokens[0].quoted) fail(expected);
    return tokens[0].raw;
  };
  const fields = (count: number, expected: string) => {
    if (tokens.length !== count || tokens.some((t) => t.quoted)) fail(expected);
    return tokens.map((t) => t.raw);
  };
  switch (type) {
    case 1: {
      const ip = one("an IPv4 address such as 10.1.0.5");
      if (parseIPv4(ip) === null) fail("an IPv4 address such as 10.1.0.5");
      return { type, packetType, data: ip };
    }
    case 28: {
      const ip = one("an IPv6 address such as fd00::5");
      const bytes = parseIPv6(ip);
      if (bytes === null) fail("an IPv6 address such as fd00::5");
      return { type, packetType, data: expandedIPv6(bytes!) };
    }
    case 2:
    case 5:
    case 12:
    case 39: {
      const target = domainName(one("a domain name such as host.example.com."));
      if (target === undefined) fail("a domain name such as host.example.com.");
      return { type, packetType, data: target };
    }
    case 15: {
      const [pref, host] = fields(2, "a preference and a mail host: 10 mail.example.com.");
      const preference = uint(pref, 0xffff);
      const exchange = domainName(host);
      if (preference === undefined || exchange === undefined) {
        fail("a preference and a mail host: 10 mail.example.com.");
      }
      return { type, packetType, data: { preference, exchange } };
    }
    case 33: {
      const expected = "priority, weight, port and target: 10 5 5060 sip.example.com.";
      const [p, w, port, host] = fields(4, expected);
      const data = {
        priority: uint(p, 0xffff),
        weight: uint(w, 0xffff),
        port: uint(port, 0xffff),
        target: domainName(host),
      };
      if (Object.values(data).some((v) => v === undefined)) fail(expected);
      return { type, packetType, data };
    }
    case 16: {
      if (tokens.length === 0) fail('one or more strings such as "v=spf1 -all"');
      const strings: Buffer[] = [];
      for (const t of tokens) {
        // Longer strings are split in 255-byte pieces, as miekg/dns does.
        for (let i = 0; i === 0 || i < t.bytes.length; i += 255) {
          strings.push(Buffer.from(t.bytes.subarray(i, i + 255)));
        }
      }
      return { type, packetType, data: strings };
    }
    case 6: {
      const expected = "mname rname serial refresh retry expire minimum";
      const [mname, rname, ...numbers] = fields(7, expected);
      const n = numbers.map((v) => uint(v, 0xffffffff));
      const data = {
        mname: domainName(mname),
        rname: domainName(rname),
        serial: n[0],
        refresh: n[1],
        retry: n[2],
        expire: n[3],
        minimum: n[4],
      };
      if (Object.values(data).some((v) => v === undefined)) fail(expected);
      return { type, packetType, data };
    }
    case 257: {
      const expected = 'flags, tag and value: 0 issue "letsencrypt.org"';
      if (tokens.length !== 3 || tokens[0].quoted || tokens[1].quoted) fail(expected);
      const flags = uint(tokens[0].raw, 0xff);
      const tag = tokens[1].raw;
      if (flags === undefined || !/^[A-Za-z0-9]{1,255}$/.test(tag)) fail(expected);
      return {
        type,
        packetType,
        data: { flags, tag, value: new TextDecoder().decode(tokens[2].bytes) },
      };
    }
  }
  return fail(
    `the RFC 3597 form \\# <length> <hex> (this server reads ${
      STRUCTURED_TYPES.map(dnsTypeName).join(", ")
    } in zone-file form)`,
  );
}

/**
 * The answer record for `name` (with its trailing dot) of parsed data.
 *
 * @example
 * ```ts
 * recordOf("db.mesh.", 60, parseRecordData(1, "10.1.0.9")); // { name: "db.mesh.", type: "A", ... }
 * ```
 */
export function recordOf(name: string, ttl: number, data: RecordData): DnsRecord {
  return { name, type: data.packetType, class: "IN", ttl, data: data.data } as DnsRecord;
}

/**
 * An absolute domain name with its trailing dot, from zone-file text without escapes, or
 * undefined when it is not one (empty labels, labels over 63 bytes, over 255 bytes on the
 * wire, blanks, quotes or backslashes).
 *
 * @example
 * ```ts
 * domainName("mail.example.com"); // "mail.example.com."
 * domainName("a..b"); // undefined
 * ```
 */
export function domainName(text: string): string | undefined {
  if (text === ".") return ".";
  const body = text.endsWith(".") ? text.slice(0, -1) : text;
  // deno-lint-ignore no-control-regex -- control characters are refused like blanks
  if (body === "" || /[\s"\\();\x00-\x1f\x7f]/.test(body)) return undefined;
  const labels = body.split(".");
  let wire = 1;
  for (const label of labels) {
    const length = new TextEncoder().encode(label).length;
    if (length === 0 || length > 63) return undefined;
    wire += length + 1;
  }
  return wire > 255 ? undefined : `${body}.`;
}

interface Token {
  /** The text as written (quotes removed). */
  raw: string;
  /** The bytes it stands for, escapes resolved. */
  bytes: Uint8Array;
  quoted: boolean;
}

/** Splits zone-file text on blanks; quoted strings keep blanks; `\X` and `\DDD` escapes. */
function tokenize(text: string): Token[] | undefined {
  const tokens: Token[] = [];
  const encoder = new TextEncoder();
  let i = 0;
  while (i < text.length) {
    if (/\s/.test(text[i])) {
      i++;
      continue;
    }
    const quoted = text[i] === '"';
    if (quoted) i++;
    const bytes: number[] = [];
    let raw = "";
    for (;;) {
      if (i >= text.length) {
        if (quoted) return undefined;
        break;
      }
      const c = text[i];
      if (quoted ? c === '"' : /\s/.test(c)) {
        if (quoted) i++;
        break;
      }
      if (!quoted && c === '"') return undefined;
      if (c === "\\") {
        const digits = /^[0-9]{3}/.exec(text.slice(i + 1, i + 4));
        if (digits) {
          const n = Number(digits[0]);
          if (n > 255) return undefined;
          bytes.push(n);
          raw += text.slice(i, i + 4);
          i += 4;
          continue;
        }
        if (i + 1 >= text.length) return undefined;
        const next = text.codePointAt(i + 1)!;
        const ch = String.fromCodePoint(next);
        bytes.push(...encoder.encode(ch));
        raw += c + ch;
        i += 1 + ch.length;
        continue;
      }
      const cp = text.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      bytes.push(...encoder.encode(ch));
      raw += ch;
      i += ch.length;
    }
    tokens.push({ raw, bytes: new Uint8Array(bytes), quoted });
  }
  return tokens;
}

function generic(type: number, tokens: Token[], fail: (expected: string) => never): RecordData {
  const expected = "\\# <length> <hex>, with as many bytes as the length says";
  if (tokens.length < 2 || tokens.some((t) => t.quoted)) fail(expected);
  const length = uint(tokens[1].raw, 0xffff);
  const hex = tokens.slice(2).map((t) => t.raw).join("");
  if (length === undefined || !/^(?:[0-9a-fA-F]{2})*$/.test(hex) || hex.length !== length * 2) {
    fail(expected);
  }
  const data = Buffer.from(hex, "hex");
  return { type, packetType: `UNKNOWN_${type}`, data };
}

function uint(text: string, max: number): number | undefined {
  if (!/^[0-9]{1,10}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= max ? n : undefined;
}
