/** The small DNS subset mDNS discovery speaks (PTR, SRV, TXT, A, AAAA): encoding and parsing. */
import { InputError } from "../util/errors.ts";
import { parseIP } from "../net/ip.ts";

/** Record types used here. */
export const RR = { A: 1, PTR: 12, TXT: 16, AAAA: 28, SRV: 33, ANY: 255 } as const;

/** Top bit of a question's class (unicast response wanted) or a record's class (cache flush). */
const TOP_BIT = 0x8000;
const CLASS_IN = 1;
/** Largest packet parsed; mDNS packets must fit a jumbo frame. */
export const MAX_MDNS_PACKET = 9000;

/** One question. */
export interface DnsQuestion {
  name: string;
  type: number;
  /** The unicast-response bit. */
  unicast?: boolean;
}

/** One resource record; `data` depends on `type`. */
export type DnsRecord =
  & { name: string; ttl: number; flush?: boolean }
  & (
    | { type: typeof RR.PTR; data: string }
    | { type: typeof RR.TXT; data: string[] }
    | {
      type: typeof RR.SRV;
      data: { priority: number; weight: number; port: number; target: string };
    }
    | { type: typeof RR.A | typeof RR.AAAA; data: string }
    | { type: number; data: Uint8Array }
  );

/** A DNS message. */
export interface DnsMessage {
  id: number;
  response: boolean;
  authoritative?: boolean;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Encodes a message (names uncompressed, which every decoder accepts).
 *
 * @throws {InputError} `DNS_NAME_INVALID` for a label longer than 63 bytes.
 * @example
 * ```ts
 * encodeDnsMessage({
 *   id: 0, response: false, answers: [], authorities: [], additionals: [],
 *   questions: [{ name: "svc.local.", type: RR.PTR }],
 * });
 * ```
 */
export function encodeDnsMessage(m: DnsMessage): Uint8Array {
  const out: number[] = [];
  const u16 = (v: number) => out.push(v >> 8 & 0xff, v & 0xff);
  const u32 = (v: number) => out.push(v >>> 24 & 0xff, v >>> 16 & 0xff, v >>> 8 & 0xff, v & 0xff);
  const bytes = (b: Uint8Array) => {
    for (const x of b) out.push(x);
  };
  const name = (n: string) => bytes(encodeName(n));
  u16(m.id);
  u16((m.response ? 0x8000 : 0) | (m.authoritative ? 0x0400 : 0));
  u16(m.questions.length);
  u16(m.answers.length);
  u16(m.authorities.length);
  u16(m.additionals.length);
  for (const q of m.questions) {
    name(q.name);
    u16(q.type);
    u16(CLASS_IN | (q.unicast ? TOP_BIT : 0));
  }
  for (const r of [...m.answers, ...m.authorities, ...m.additionals]) {
    name(r.name);
    u16(r.type);
    u16(CLASS_IN | (r.flush ? TOP_BIT : 0));
    u32(r.ttl);
    const rdata = encodeRdata(r);
    u16(rdata.length);
    bytes(rdata);
  }
  return Uint8Array.from(out);
}

/**
 * Parses a DNS message; unknown record types keep their raw data.
 *
 * @throws {InputError} `DNS_PACKET_INVALID` for truncated or malformed packets.
 * @example
 * ```ts
 * const m = decodeDnsMessage(bytes);
 * m.answers.filter((r) => r.type === RR.TXT);
 * ```
 */
export function decodeDnsMessage(buf: Uint8Array): DnsMessage {
  if (buf.length > MAX_MDNS_PACKET) {
    bad(`expected at most ${MAX_MDNS_PACKET} bytes, got ${buf.length}`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  const need = (n: number) => {
    if (off + n > buf.length) bad(`truncated at offset ${off}`);
  };
  const u16 = () => {
    need(2);
    const v = view.getUint16(off);
    off += 2;
    return v;
  };
  const u32 = () => {
    need(4);
    const v = view.getUint32(off);
    off += 4;
    return v;
  };
  const id = u16();
  const flags = u16();
  const counts = [u16(), u16(), u16(), u16()];
  if (counts.reduce((a, b) => a + b, 0) > buf.length) bad("record counts exceed the packet");
  const questions: DnsQuestion[] = [];
  for (let i = 0; i < counts[0]; i++) {
    const [n, next] = decodeName(buf, off);
    off = next;
    const type = u16();
    const klass = u16();
    questions.push({ name: n, type, unicast: (klass & TOP_BIT) !== 0 });
  }
  const records = (count: number): DnsRecord[] => {
    const list: DnsRecord[] = [];
    for (let i = 0; i < count; i++) {
      const [n, next] = decodeName(buf, off);
      off = next;
      const type = u16();
      const klass = u16();
      const ttl = u32();
      const len = u16();
      need(len);
      const start = off;
      off += len;
      list.push({
        name: n,
        ttl,
        flush: (klass & TOP_BIT) !== 0,
        ...decodeRdata(buf, type, start, len),
      } as DnsRecord);
    }
    return list;
  };
  const answers = records(counts[1]);
  const authorities = records(counts[2]);
  const additionals = records(counts[3]);
  return {
    id,
    response: (flags & 0x8000) !== 0,
    authoritative: (flags & 0x0400) !== 0,
    questions,
    answers,
    authorities,
    additionals,
  };
}

/**
 * Compares DNS names case-insensitively, ignoring a trailing dot.
 *
 * @example
 * ```ts
 * sameName("A.local.", "a.local"); // true
 * ```
 */
export function sameName(a: string, b: string): boolean {
  return a.replace(/\.$/, "").toLowerCase() === b.replace(/\.$/, "").toLowerCase();
}

function encodeName(n: string): Uint8Array {
  const labels = n.replace(/\.$/, "").split(".").filter((l) => l !== "");
  const parts: number[] = [];
  for (const label of labels) {
    const b = encoder.encode(label);
    if (b.length > 63) {
      throw new InputError(
        "DNS_NAME_INVALID",
        `Cannot encode DNS name ${JSON.stringify(n)}: label of ${b.length} bytes (at most 63)`,
      );
    }
    parts.push(b.length, ...b);
  }
  parts.push(0);
  if (parts.length > 255) {
    throw new InputError(
      "DNS_NAME_INVALID",
      `Cannot encode DNS name: ${parts.length} bytes (at most 255)`,
    );
  }
  return Uint8Array.from(parts);
}

function encodeRdata(r: DnsRecord): Uint8Array {
  switch (r.type) {
    case RR.PTR:
      return encodeName(r.data as string);
    case RR.TXT: {
      const out: number[] = [];
      for (const s of r.data as string[]) {
        const b = encoder.encode(s);
        if (b.length > 255) {
          throw new InputError("DNS_TXT_INVALID", `Cannot encode TXT string of ${b.length} bytes`);
        }
        out.push(b.length, ...b);
      }
      if (out.length === 0) out.push(0);
      return Uint8Array.from(out);
    }
    case RR.SRV: {
      const d = r.data as { priority: number; weight: number; port: number; target: string };
      const target = encodeName(d.target);
      const out = new Uint8Array(6 + target.length);
      const v = new DataView(out.buffer);
      v.setUint16(0, d.priority);
      v.setUint16(2, d.weight);
      v.setUint16(4, d.port);
      out.set(target, 6);
      return out;
    }
    case RR.A:
    case RR.AAAA: {
      const ip = parseIP(r.data as string);
      if (!ip || ip.length !== (r.type === RR.A ? 4 : 16)) {
        throw new InputError(
          "DNS_ADDRESS_INVALID",
          `Cannot encode address ${JSON.stringify(r.data)}`,
        );
      }
      return ip;
    }
    default:
      return r.data as Uint8Array;
  }
}

function decodeRdata(
  buf: Uint8Array,
  type: number,
  start: number,
  len: number,
): { type: number; data: unknown } {
  const end = start + len;
  switch (type) {
    case RR.PTR:
      return { type, data: decodeName(buf, start)[0] };
    case RR.TXT: {
      const strings: string[] = [];
      let o = start;
      while (o < end) {
        const l = buf[o];
        if (o + 1 + l > end) bad("TXT string overruns its record");
        strings.push(decoder.decode(buf.subarray(o + 1, o + 1 + l)));
        o += 1 + l;
      }
      return { type, data: strings };
    }
    case RR.SRV: {
      if (len < 7) bad("SRV record too short");
      const v = new DataView(buf.buffer, buf.byteOffset + start, 6);
      return {
        type,
        data: {
          priority: v.getUint16(0),
          weight: v.getUint16(2),
          port: v.getUint16(4),
          target: decodeName(buf, start + 6)[0],
        },
      };
    }
    case RR.A:
      if (len !== 4) bad(`A record of ${len} bytes`);
      return { type, data: Array.from(buf.subarray(start, end)).join(".") };
    case RR.AAAA: {
      if (len !== 16) bad(`AAAA record of ${len} bytes`);
      const groups: string[] = [];
      for (let i = 0; i < 16; i += 2) {
        groups.push(((buf[start + i] << 8) | buf[start + i + 1]).toString(16));
      }
      return { type, data: groups.join(":") };
    }
    default:
      return { type, data: buf.slice(start, end) };
  }
}

/** Reads a possibly compressed name at `offset`; returns it (with a trailing dot) and the next offset. */
function decodeName(buf: Uint8Array, offset: number): [string, number] {
  const labels: string[] = [];
  let off = offset;
  let next = -1;
  let jumps = 0;
  let length = 0;
  while (true) {
    if (off >= buf.length) bad(`name runs past the packet at offset ${off}`);
    const l = buf[off];
    if (l === 0) {
      off++;
      break;
    }
    if ((l & 0xc0) === 0xc0) {
      if (off + 1 >= buf.length) bad("truncated name pointer");
      if (++jumps > 32) bad("name pointer loop");
      if (next < 0) next = off + 2;
      off = ((l & 0x3f) << 8) | buf[off + 1];
      continue;
    }
    if ((l & 0xc0) !== 0) bad(`unsupported label type 0x${l.toString(16)}`);
    if (off + 1 + l > buf.length) bad("label runs past the packet");
    length += l + 1;
    if (length > 255) bad("name longer than 255 bytes");
    labels.push(decoder.decode(buf.subarray(off + 1, off + 1 + l)));
    off += 1 + l;
  }
  return [labels.join(".") + ".", next < 0 ? off : next];
}

function bad(detail: string): never {
  throw new InputError("DNS_PACKET_INVALID", `Cannot parse DNS packet: ${detail}`);
}
