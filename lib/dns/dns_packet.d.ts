/** Types of the parts of dns-packet used here (its own package has none; @types/dns-packet drags in @types/node, whose DOM types clash with Deno's). */
import type { Buffer } from "node:buffer";

/** A type name: `A`, `AAAA`, … or `UNKNOWN_<n>`. */
export type RecordType = string;
/** A class name: `IN`, `CS`, `CH`, `HS`, `ANY`. */
export type RecordClass = "IN" | "CS" | "CH" | "HS" | "ANY";

/** One question. */
export interface Question {
  type: RecordType;
  name: string;
  class?: RecordClass;
}

/** A resource record other than OPT; `data`'s shape depends on the type. */
export interface RecordAnswer {
  type: RecordType;
  name: string;
  ttl?: number;
  class?: RecordClass;
  flush?: boolean;
  data: unknown;
}

/** The OPT pseudo-record of EDNS. */
export interface OptAnswer {
  type: "OPT";
  name: string;
  udpPayloadSize: number;
  extendedRcode: number;
  ednsVersion: number;
  flags: number;
  flag_do: boolean;
  options: unknown[];
}

/** Any record. */
export type Answer = RecordAnswer | OptAnswer;

/** A message to encode. */
export interface Packet {
  type?: "query" | "response";
  id?: number;
  flags?: number;
  questions?: Question[];
  answers?: Answer[];
  authorities?: Answer[];
  additionals?: Answer[];
}

/** A decoded message. */
export interface DecodedPacket extends Packet {
  flag_qr: boolean;
  opcode: string;
  rcode: string;
}

/** Encodes a message (names without compression). */
export function encode(packet: Packet, buf?: Buffer, offset?: number): Buffer;
/** Decodes a message; throws on bytes that are not one. */
export function decode(buf: Buffer, offset?: number): DecodedPacket;
