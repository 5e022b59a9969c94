/** The circuit relay v2 messages (HopMessage, StopMessage) as bounded protobuf, peer bytes in. */
import { InputError } from "../util/errors.ts";

/** A byte list as libp2p's readers hand it over (`Uint8ArrayList`). */
type ByteList = { length: number; subarray(): Uint8Array };

/** Protocol of relay clients talking to a relay. */
export const HOP_PROTOCOL = "/libp2p/circuit/relay/0.2.0/hop";
/** Protocol of a relay talking to the destination of a circuit. */
export const STOP_PROTOCOL = "/libp2p/circuit/relay/0.2.0/stop";
/** Longest hop or stop message accepted (go-libp2p: 4 KiB). */
export const MAX_RELAY_MESSAGE = 4096;
/** At most this many addresses are read from one message. */
const MAX_ADDRS = 32;

/** `HopMessage.Type`. */
export const HopType = { RESERVE: 0, CONNECT: 1, STATUS: 2 } as const;
/** `StopMessage.Type`. */
export const StopType = { CONNECT: 0, STATUS: 1 } as const;
/** Circuit v2 `Status` codes. */
export const RelayStatus = {
  OK: 100,
  RESERVATION_REFUSED: 200,
  RESOURCE_LIMIT_EXCEEDED: 201,
  PERMISSION_DENIED: 202,
  CONNECTION_FAILED: 203,
  NO_RESERVATION: 204,
  MALFORMED_MESSAGE: 400,
  UNEXPECTED_MESSAGE: 401,
} as const;

/** A peer: its multihash and addresses (multiaddr bytes). */
export interface RelayPeer {
  id: Uint8Array;
  addrs: Uint8Array[];
}

/** Limits of a relayed connection: `duration` in seconds, `data` in bytes per direction. */
export interface RelayLimit {
  duration?: number;
  data?: bigint;
}

/** A reservation granted by a relay; `expire` in Unix seconds. */
export interface RelayReservation {
  expire?: bigint;
  addrs: Uint8Array[];
  voucher?: Uint8Array;
}

/**
 * A hop message (client ↔ relay).
 *
 * @example
 * ```ts
 * const bytes = HopCodec.encode({ type: HopType.RESERVE });
 * HopCodec.decode(bytes).type; // 0
 * ```
 */
export interface HopMessage {
  type?: number;
  peer?: RelayPeer;
  reservation?: RelayReservation;
  limit?: RelayLimit;
  status?: number;
}

/** A stop message (relay ↔ destination). */
export interface StopMessage {
  type?: number;
  peer?: RelayPeer;
  limit?: RelayLimit;
  status?: number;
}

// ---- writer ---------------------------------------------------------------------------------

class Writer {
  readonly #parts: number[] = [];

  varint(value: number | bigint): void {
    let v = BigInt(value);
    if (v < 0n) v &= (1n << 64n) - 1n;
    while (v >= 0x80n) {
      this.#parts.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.#parts.push(Number(v));
  }

  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  uint(field: number, value: number | bigint | undefined): void {
    if (value === undefined) return;
    this.tag(field, 0);
    this.varint(value);
  }

  bytes(field: number, value: Uint8Array | undefined): void {
    if (value === undefined) return;
    this.tag(field, 2);
    this.varint(value.length);
    for (const b of value) this.#parts.push(b);
  }

  message(field: number, value: Uint8Array | undefined): void {
    this.bytes(field, value);
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.#parts);
  }
}

function encodePeer(p: RelayPeer): Uint8Array {
  const w = new Writer();
  w.bytes(1, p.id);
  for (const a of p.addrs) w.bytes(2, a);
  return w.finish();
}

function encodeLimit(l: RelayLimit): Uint8Array {
  const w = new Writer();
  w.uint(1, l.duration);
  w.uint(2, l.data);
  return w.finish();
}

function encodeReservation(r: RelayReservation): Uint8Array {
  const w = new Writer();
  w.uint(1, r.expire);
  for (const a of r.addrs) w.bytes(2, a);
  w.bytes(3, r.voucher);
  return w.finish();
}

// ---- reader ---------------------------------------------------------------------------------

class Reader {
  #at = 0;
  constructor(readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.#at >= this.buf.length;
  }

  varint(): bigint {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.#at >= this.buf.length) throw malformed("truncated varint");
      const b = this.buf[this.#at++];
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return result & ((1n << 64n) - 1n);
    }
    throw malformed("varint longer than 10 bytes");
  }

  small(): number {
    const v = this.varint();
    if (v > 0xffffffffn) throw malformed("value out of range");
    return Number(v);
  }

  bytes(): Uint8Array {
    const n = this.varint();
    if (n > BigInt(this.buf.length - this.#at)) throw malformed("field longer than the message");
    const out = this.buf.subarray(this.#at, this.#at + Number(n));
    this.#at += Number(n);
    return out;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 2) this.bytes();
    else if (wire === 1) this.#advance(8);
    else if (wire === 5) this.#advance(4);
    else throw malformed(`wire type ${wire}`);
  }

  #advance(n: number): void {
    if (this.#at + n > this.buf.length) throw malformed("truncated field");
    this.#at += n;
  }

  fields(onField: (field: number, wire: number) => void): void {
    while (!this.done) {
      const key = this.small();
      onField(key >>> 3, key & 7);
    }
  }
}

function malformed(why: string): InputError {
  return new InputError("RELAY_MESSAGE_INVALID", `Cannot decode a circuit relay message: ${why}`);
}

function expectWire(wire: number, want: number): void {
  if (wire !== want) throw malformed(`unexpected wire type ${wire}`);
}

function decodePeer(buf: Uint8Array): RelayPeer {
  const peer: RelayPeer = { id: new Uint8Array(), addrs: [] };
  const r = new Reader(buf);
  r.fields((field, wire) => {
    if (field === 1) {
      expectWire(wire, 2);
      peer.id = r.bytes().slice();
    } else if (field === 2) {
      expectWire(wire, 2);
      const a = r.bytes();
      if (peer.addrs.length < MAX_ADDRS) peer.addrs.push(a.slice());
    } else r.skip(wire);
  });
  return peer;
}

function decodeLimit(buf: Uint8Array): RelayLimit {
  const limit: RelayLimit = {};
  const r = new Reader(buf);
  r.fields((field, wire) => {
    if (field === 1) {
      expectWire(wire, 0);
      limit.duration = r.small();
    } else if (field === 2) {
      expectWire(wire, 0);
      limit.data = r.varint();
    } else r.skip(wire);
  });
  return limit;
}

function decodeReservation(buf: Uint8Array): RelayReservation {
  const res: RelayReservation = { addrs: [] };
  const r = new Reader(buf);
  r.fields((field, wire) => {
    if (field === 1) {
      expectWire(wire, 0);
      res.expire = r.varint();
    } else if (field === 2) {
      expectWire(wire, 2);
      const a = r.bytes();
      if (res.addrs.length < MAX_ADDRS) res.addrs.push(a.slice());
    } else if (field === 3) {
      expectWire(wire, 2);
      res.voucher = r.bytes().slice();
    } else r.skip(wire);
  });
  return res;
}

function flat(buf: Uint8Array | ByteList): Uint8Array {
  if (buf.length > MAX_RELAY_MESSAGE) throw malformed(`${buf.length} bytes, limit 4096`);
  return buf instanceof Uint8Array ? buf : buf.subarray();
}

/**
 * Encoder and decoder of {@link HopMessage}, in the shape `pbStream().pb()` takes.
 *
 * @throws {InputError} `RELAY_MESSAGE_INVALID` from `decode` on malformed bytes.
 * @example
 * ```ts ignore
 * pbStream(stream, { maxDataLength: MAX_RELAY_MESSAGE }).pb(HopCodec);
 * ```
 */
export const HopCodec = {
  encode(m: HopMessage): Uint8Array {
    const w = new Writer();
    w.uint(1, m.type);
    if (m.peer) w.message(2, encodePeer(m.peer));
    if (m.reservation) w.message(3, encodeReservation(m.reservation));
    if (m.limit) w.message(4, encodeLimit(m.limit));
    w.uint(5, m.status);
    return w.finish();
  },
  decode(buf: Uint8Array | ByteList): HopMessage {
    const m: HopMessage = {};
    const r = new Reader(flat(buf));
    r.fields((field, wire) => {
      if (field === 1) {
        expectWire(wire, 0);
        m.type = r.small();
      } else if (field === 2) {
        expectWire(wire, 2);
        m.peer = decodePeer(r.bytes());
      } else if (field === 3) {
        expectWire(wire, 2);
        m.reservation = decodeReservation(r.bytes());
      } else if (field === 4) {
        expectWire(wire, 2);
        m.limit = decodeLimit(r.bytes());
      } else if (field === 5) {
        expectWire(wire, 0);
        m.status = r.small();
      } else r.skip(wire);
    });
    return m;
  },
};

/**
 * Encoder and decoder of {@link StopMessage}.
 *
 * @throws {InputError} `RELAY_MESSAGE_INVALID` from `decode` on malformed bytes.
 * @example
 * ```ts
 * StopCodec.decode(StopCodec.encode({ type: StopType.STATUS, status: RelayStatus.OK })).status; // 100
 * ```
 */
export const StopCodec = {
  encode(m: StopMessage): Uint8Array {
    const w = new Writer();
    w.uint(1, m.type);
    if (m.peer) w.message(2, encodePeer(m.peer));
    if (m.limit) w.message(3, encodeLimit(m.limit));
    w.uint(4, m.status);
    return w.finish();
  },
  decode(buf: Uint8Array | ByteList): StopMessage {
    const m: StopMessage = {};
    const r = new Reader(flat(buf));
    r.fields((field, wire) => {
      if (field === 1) {
        expectWire(wire, 0);
        m.type = r.small();
      } else if (field === 2) {
        expectWire(wire, 2);
        m.peer = decodePeer(r.bytes());
      } else if (field === 3) {
        expectWire(wire, 2);
        m.limit = decodeLimit(r.bytes());
      } else if (field === 4) {
        expectWire(wire, 0);
        m.status = r.small();
      } else r.skip(wire);
    });
    return m;
  },
};
