/** DNS messages on the wire, through dns-packet: bounded decoding into typed values, encoding, header flags. */
import { Buffer } from "node:buffer";
// @ts-types="./dns_packet.d.ts"
import * as packet from "dns-packet";
// @ts-types="./dns_packet_types.d.ts"
import * as packetTypes from "dns-packet/types.js";
import { EdgeVpnError, errorMessage } from "../util/errors.ts";

/** Largest query accepted from a client (UDP or TCP); real queries are well under 512 bytes. */
export const MAX_QUERY_BYTES = 4096;
/** Largest DNS message (the TCP length prefix is 16 bits). */
export const MAX_MESSAGE_BYTES = 65535;
/** UDP answer size without EDNS (RFC 1035). */
export const CLASSIC_UDP_BYTES = 512;
/** UDP answer size offered and accepted with EDNS (the DNS flag day 2020 value: no fragments). */
export const EDNS_UDP_BYTES = 1232;

/** Header flag bits (RFC 1035 §4.1.1, RFC 4035). */
export const FLAG = {
  QR: 0x8000,
  AA: 0x0400,
  TC: 0x0200,
  RD: 0x0100,
  RA: 0x0080,
  AD: 0x0020,
  CD: 0x0010,
} as const;

/** Response codes used here. */
export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;

/** The QUERY opcode. */
export const OPCODE_QUERY = 0;
/** Class IN. */
export const CLASS_IN = 1;
export const TYPE_OPT = 41;

/** A resource record as dns-packet encodes and decodes it (OPT records excluded). */
export type DnsRecord = packet.RecordAnswer;

/** One question: the name as sent, with a trailing dot (`www.example.com.`, root is `.`). */
export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
}

/** EDNS of a message (its OPT record). */
export interface DnsEdns {
  /** Largest UDP answer the sender accepts. */
  udpPayloadSize: number;
  /** DNSSEC OK bit. */
  dnssecOk: boolean;
}

/** A decoded message. */
export interface DnsMessage {
  id: number;
  /** The 16-bit flags word: QR, opcode, AA, TC, RD, RA, Z, AD, CD, rcode. */
  flags: number;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  /** Additional records other than OPT. */
  additionals: DnsRecord[];
  edns?: DnsEdns;
}

/** Why bytes were not a DNS message: the reasons drops are counted by. */
export type DnsWireReason = "oversize" | "truncated" | "malformed";

/** Bytes that are not an acceptable DNS message. */
export class DnsWireError extends EdgeVpnError {
  /** The drop reason. */
  readonly reason: DnsWireReason;
  constructor(reason: DnsWireReason, message: string) {
    super("DNS_MESSAGE_INVALID", message);
    this.reason = reason;
  }
}

/**
 * Decodes a message of at most `maxBytes` bytes. Compression pointers must point backwards
 * (dns-packet's rule), so a name cannot loop; the size limit bounds the work of every name.
 *
 * @throws {DnsWireError} with reason `oversize`, `truncated` (shorter than a header or cut
 * inside a section) or `malformed`.
 * @example
 * ```ts ignore
 * const message = decodeMessage(bytes, MAX_QUERY_BYTES);
 * message.questions[0].name; // "example.com."
 * ```
 */
export function decodeMessage(bytes: Uint8Array, maxBytes: number): DnsMessage {
  if (bytes.length > maxBytes) {
    throw new DnsWireError(
      "oversize",
      `DNS message: expected at most ${maxBytes} bytes, got ${bytes.length}`,
    );
  }
  if (bytes.length < 12) {
    throw new DnsWireError(
      "truncated",
      `DNS message: expected a 12-byte header, got ${bytes.length} bytes`,
    );
  }
  let decoded: packet.DecodedPacket;
  try {
    decoded = packet.decode(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
  } catch (e) {
    const truncated = e instanceof RangeError || /overflow/i.test(errorMessage(e));
    throw new DnsWireError(
      truncated ? "truncated" : "malformed",
      `DNS message: cannot decode ${bytes.length} bytes: ${errorMessage(e)}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const flags = view.getUint16(2);
  const questions: DnsQuestion[] = (decoded.questions ?? []).map((q) => ({
    name: absoluteName(q.name),
    type: packetTypes.toType(q.type),
    class: classNumber(q.class),
  }));
  if (questions.some((q) => !isPlainName(q.name))) {
    // dns-packet reads label bytes as UTF-8 text and joins labels with dots, so names with other
    // bytes would not encode back to the question asked.
    throw new DnsWireError(
      "malformed",
      "DNS message: expected a question name of printable ASCII labels",
    );
  }
  if (questions.some((q) => q.class === 0)) {
    // dns-packet cannot encode other classes back, so no answer could echo the question.
    throw new DnsWireError("malformed", "DNS message: expected class IN, CH, HS or ANY");
  }
  let edns: DnsEdns | undefined;
  const additionals: DnsRecord[] = [];
  for (const record of decoded.additionals ?? []) {
    if (record.type === "OPT") {
      const opt = record as packet.OptAnswer;
      edns ??= {
        udpPayloadSize: opt.udpPayloadSize,
        dnssecOk: ((opt.flags ?? 0) & 0x8000) !== 0,
      };
    } else {
      additionals.push(record as DnsRecord);
    }
  }
  return {
    id: view.getUint16(0),
    flags,
    questions,
    answers: (decoded.answers ?? []).filter((r) => r.type !== "OPT") as DnsRecord[],
    authorities: (decoded.authorities ?? []).filter((r) => r.type !== "OPT") as DnsRecord[],
    additionals,
    edns,
  };
}

/**
 * Encodes a message; with `edns`, an OPT record is added.
 *
 * @throws {DnsWireError} `malformed` when a record cannot be encoded (a name too long, data of
 * the wrong shape).
 * @example
 * ```ts
 * const bytes = encodeMessage({ id: 1, flags: FLAG.RD, questions: [{ name: "a.", type: 1, class: 1 }], answers: [], authorities: [], additionals: [] });
 * ```
 */
export function encodeMessage(message: DnsMessage): Uint8Array {
  const additionals: packet.Answer[] = [...message.additionals];
  if (message.edns) {
    additionals.push({
      type: "OPT",
      name: ".",
      udpPayloadSize: message.edns.udpPayloadSize,
      extendedRcode: 0,
      ednsVersion: 0,
      flags: message.edns.dnssecOk ? 0x8000 : 0,
      flag_do: message.edns.dnssecOk,
      options: [],
    });
  }
  try {
    const buf = packet.encode({
      id: message.id,
      type: (message.flags & FLAG.QR) !== 0 ? "response" : "query",
      flags: message.flags & 0x7fff,
      questions: message.questions.map((q) => ({
        name: q.name,
        type: packetTypes.toString(q.type),
        class: className(q.class),
      })),
      answers: message.answers,
      authorities: message.authorities,
      additionals,
    });
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  } catch (e) {
    throw new DnsWireError("malformed", `Cannot encode a DNS message: ${errorMessage(e)}`);
  }
}

/**
 * The opcode of a flags word.
 *
 * @example
 * ```ts
 * opcodeOf(0x0100); // 0 (QUERY)
 * ```
 */
export function opcodeOf(flags: number): number {
  return (flags >> 11) & 0xf;
}

/**
 * The response code of a flags word.
 *
 * @example
 * ```ts
 * rcodeOf(0x8183); // 3 (NXDOMAIN)
 * ```
 */
export function rcodeOf(flags: number): number {
  return flags & 0xf;
}

/**
 * The dns-packet name of a type number (`A`, `UNKNOWN_65280`).
 *
 * @example
 * ```ts
 * packetTypeName(28); // "AAAA"
 * ```
 */
export function packetTypeName(type: number): string {
  return packetTypes.toString(type);
}

/**
 * The number of a dns-packet type name.
 *
 * @example
 * ```ts
 * packetTypeNumber("UNKNOWN_65280"); // 65280
 * ```
 */
export function packetTypeNumber(name: string): number {
  return packetTypes.toType(name);
}

/** A name of 1 to 63-byte labels of printable ASCII, at most 255 bytes on the wire. */
function isPlainName(name: string): boolean {
  if (name === ".") return true;
  if (name.length > 254 || !/^[\x21-\x7e]+$/.test(name)) return false;
  return name.slice(0, -1).split(".").every((l) => l.length >= 1 && l.length <= 63);
}

/** dns-packet names without the trailing dot; questions and records here carry it. */
function absoluteName(name: string): string {
  return name === "." || name === "" ? "." : `${name}.`;
}

function classNumber(name: string | undefined): number {
  switch ((name ?? "IN").toUpperCase()) {
    case "IN":
      return 1;
    case "CS":
      return 2;
    case "CH":
      return 3;
    case "HS":
      return 4;
    case "ANY":
      return 255;
  }
  return 0;
}

function className(klass: number): packet.RecordClass {
  const names: Record<number, packet.RecordClass> = {
    1: "IN",
    2: "CS",
    3: "CH",
    4: "HS",
    255: "ANY",
  };
  return names[klass] ?? "IN";
}
