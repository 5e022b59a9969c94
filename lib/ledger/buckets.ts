/** The buckets EdgeVPN uses and the codec of each one's values (Go `pkg/protocol`, `pkg/types`). */

import { formatRfc3339Seconds, parseRfc3339 } from "../util/gotime.ts";
import { DEFAULT_BLOCK_LIMITS } from "./block.ts";
import { goFieldName, goMarshal, JsonObject, type JsonValue, parseJson } from "./json.ts";

/** Bucket names EdgeVPN uses (Go `pkg/protocol`). */
export const BUCKETS = {
  machines: "machines",
  services: "services",
  files: "files",
  users: "users",
  healthcheck: "healthcheck",
  dns: "dns",
  egress: "egress",
  trustzone: "trustzone",
  trustzoneAuth: "trustzoneAuth",
  dhcp: "dhcp",
} as const;

/**
 * Longest value text a codec reads: what the ledger admits in a block. Anything longer reads
 * as the zero value, as if it did not decode.
 */
export const MAX_VALUE_TEXT = DEFAULT_BLOCK_LIMITS.maxValueLength;

/**
 * Reads and writes the values of one bucket. `parse` reads stored text as Go's `json.Unmarshal`
 * does with its error ignored (what EdgeVPN does everywhere): it never throws, and text that
 * does not decode gives the zero value. `value` is what to hand `Ledger.add`, `persist` or
 * `announceUpdate` (Go's shape, fields in Go's order); `encode` is the exact text Go stores.
 *
 * @example
 * ```ts
 * const m = machineCodec.parse('{"peerid":"12D3KooWA","Address":"10.1.0.2"}');
 * m.PeerID; // "12D3KooWA" (Go matches field names case-insensitively)
 * machineCodec.encode(m); // '{"PeerID":"12D3KooWA","Hostname":"","OS":"","Arch":"","Address":"10.1.0.2","Version":""}'
 * ```
 */
export interface ValueCodec<T> {
  /** The bucket whose values this codec reads. */
  readonly bucket: string;
  parse(text: string): T;
  value(v: T): unknown;
  encode(v: T): string;
}

/** Go's `types.Machine` fields, in Go's order (the JSON text keeps it). */
export const MACHINE_FIELDS = ["PeerID", "Hostname", "OS", "Arch", "Address", "Version"] as const;

/**
 * A `machines` value: who holds a VPN address (Go `types.Machine`).
 *
 * @example
 * ```ts
 * const m: Machine = {
 *   PeerID: "12D3KooW…",
 *   Hostname: "box",
 *   OS: "linux",
 *   Arch: "amd64",
 *   Address: "10.1.0.1",
 *   Version: "v0.1.0",
 * };
 * ```
 */
export interface Machine {
  PeerID: string;
  Hostname: string;
  /** Go `runtime.GOOS`: linux, darwin, windows, freebsd, … */
  OS: string;
  /** Go `runtime.GOARCH`: amd64, arm64, … */
  Arch: string;
  /** The VPN address without prefix. */
  Address: string;
  Version: string;
}

/** Go's `types.Service` and `types.File` fields, in Go's order. */
export const NAMED_FIELDS = ["PeerID", "Name"] as const;

/**
 * A `services` value: the peer exposing a TCP service under a name (Go `types.Service`).
 *
 * @example
 * ```ts
 * const s: Service = { PeerID: "12D3KooW…", Name: "web" };
 * ```
 */
export interface Service {
  PeerID: string;
  Name: string;
}

/**
 * A `files` value: the peer sharing a file under a name (Go `types.File`).
 *
 * @example
 * ```ts
 * const f: SharedFile = { PeerID: "12D3KooW…", Name: "notes.txt" };
 * ```
 */
export interface SharedFile {
  PeerID: string;
  Name: string;
}

/** Go's `types.User` fields, in Go's order. */
export const USER_FIELDS = ["PeerID", "Timestamp"] as const;

/**
 * A `users` value: a peer that uses services and files (Go `types.User`). `Timestamp` is Go's
 * `time.Now().String()`, which nobody parses.
 *
 * @example
 * ```ts
 * const u: User = { PeerID: "12D3KooW…", Timestamp: "2026-01-01 00:00:00 +0000 UTC" };
 * ```
 */
export interface User {
  PeerID: string;
  Timestamp: string;
}

/**
 * A `dns` value: record data text by DNS type number (Go `types.DNS`, a map keyed by
 * `dns.Type`), e.g. `1 → "10.1.0.5"`.
 *
 * @example
 * ```ts
 * const records: DnsRecords = new Map([[1, "10.1.0.5"], [28, "fd00::5"]]);
 * ```
 */
export type DnsRecords = Map<number, string>;

/** What Go's egress nodes announce in the `egress` bucket. */
export const EGRESS_OK = "ok";

/**
 * The `machines` codec.
 *
 * @example
 * ```ts
 * machineCodec.parse("not json").PeerID; // ""
 * ```
 */
export const machineCodec: ValueCodec<Machine> = structCodec(BUCKETS.machines, MACHINE_FIELDS);

/**
 * The `services` codec.
 *
 * @example
 * ```ts
 * serviceCodec.encode({ Name: "web", PeerID: "12D3KooWA" }); // '{"PeerID":"12D3KooWA","Name":"web"}'
 * ```
 */
export const serviceCodec: ValueCodec<Service> = structCodec(BUCKETS.services, NAMED_FIELDS);

/**
 * The `files` codec.
 *
 * @example
 * ```ts
 * fileCodec.parse('{"PeerID":"12D3KooWA","Name":7}'); // { PeerID: "12D3KooWA", Name: "" }
 * ```
 */
export const fileCodec: ValueCodec<SharedFile> = structCodec(BUCKETS.files, NAMED_FIELDS);

/**
 * The `users` codec.
 *
 * @example
 * ```ts
 * userCodec.parse('{"PeerID":"12D3KooWA"}').Timestamp; // ""
 * ```
 */
export const userCodec: ValueCodec<User> = structCodec(BUCKETS.users, USER_FIELDS);

/**
 * The `dns` codec. Member names are read as Go reads `dns.Type` map keys (`strconv.ParseUint`
 * base 10, at most 65535: `"01"` is 1); other members are skipped; data that is not a string
 * reads as "" (no valid record). Encoding sorts the keys as Go sorts map keys: as text.
 *
 * @example
 * ```ts
 * dnsCodec.parse('{"1":"10.1.0.5","28":"fd::5","x":"y"}'); // Map { 1 => "10.1.0.5", 28 => "fd::5" }
 * dnsCodec.encode(new Map([[28, "fd::5"], [1, "10.1.0.5"]])); // '{"1":"10.1.0.5","28":"fd::5"}'
 * ```
 */
export const dnsCodec: ValueCodec<DnsRecords> = {
  bucket: BUCKETS.dns,
  parse(text) {
    const out: DnsRecords = new Map();
    const json = parseValue(text);
    if (!(json instanceof JsonObject)) return out;
    for (const [key, value] of json.entries) {
      const type = dnsTypeKey(key);
      if (type !== undefined) out.set(type, typeof value === "string" ? value : "");
    }
    return out;
  },
  value(records) {
    return new Map([...records].map(([type, data]) => [String(type), data]));
  },
  encode(records) {
    return goMarshal(this.value(records));
  },
};

/**
 * The `egress` codec: the value is a JSON string, `"ok"` as Go writes it (only keys are read).
 *
 * @example
 * ```ts
 * egressCodec.encode(EGRESS_OK); // '"ok"'
 * ```
 */
export const egressCodec: ValueCodec<string> = stringCodec(BUCKETS.egress);

/**
 * The `dhcp` codec: the `leader` key holds the peer ID of the node handing out addresses, as a
 * JSON string.
 *
 * @example
 * ```ts
 * dhcpCodec.parse('"12D3KooWA"'); // "12D3KooWA"
 * ```
 */
export const dhcpCodec: ValueCodec<string> = stringCodec(BUCKETS.dhcp);

/**
 * The `healthcheck` codec: a heartbeat is a JSON string holding RFC 3339 time in whole seconds
 * (Go `time.Now().UTC().Format(time.RFC3339)`), read as epoch nanoseconds; undefined when the
 * value is no such string (it encodes as the Unix epoch, a heartbeat long expired).
 *
 * @example
 * ```ts
 * healthcheckCodec.parse('"2026-01-01T00:00:00Z"'); // 1767225600000000000n
 * healthcheckCodec.encode(1767225600_500_000_000n); // '"2026-01-01T00:00:00Z"'
 * ```
 */
export const healthcheckCodec: ValueCodec<bigint | undefined> = {
  bucket: BUCKETS.healthcheck,
  parse(text) {
    const json = parseValue(text);
    return typeof json === "string" ? parseRfc3339(json) : undefined;
  },
  value(epochNs) {
    return formatRfc3339Seconds(Number((epochNs ?? 0n) / 1_000_000n));
  },
  encode(epochNs) {
    return goMarshal(this.value(epochNs));
  },
};

/**
 * The codec of every bucket whose values EdgeVPN defines, by bucket name.
 *
 * @example
 * ```ts
 * BUCKET_CODECS.machines.parse(text).PeerID;
 * ```
 */
export const BUCKET_CODECS = {
  machines: machineCodec,
  services: serviceCodec,
  files: fileCodec,
  users: userCodec,
  dns: dnsCodec,
  egress: egressCodec,
  healthcheck: healthcheckCodec,
  dhcp: dhcpCodec,
} as const;

/**
 * Epoch nanoseconds of a heartbeat value, or undefined ({@link healthcheckCodec}'s `parse`).
 *
 * @example
 * ```ts
 * heartbeatTime('"2026-01-01T00:00:00Z"'); // 1767225600000000000n
 * ```
 */
export function heartbeatTime(value: string): bigint | undefined {
  return healthcheckCodec.parse(value);
}

/**
 * The `PeerID` of a `machines`, `services` or `files` value as Go reads it; "" when it has none.
 *
 * @example
 * ```ts
 * peerIdOf('{"PeerID":"peerX","Address":"10.1.0.1"}'); // "peerX"
 * peerIdOf("[]"); // ""
 * ```
 */
export function peerIdOf(value: string): string {
  return readGoStrings(value, PEER_ID_FIELD).PeerID;
}

const PEER_ID_FIELD = ["PeerID"] as const;

// A struct of strings, read as Go reads `json.Unmarshal` into it with the error ignored:
// members matched by name case-insensitively, the last duplicate winning, members of another
// type (or null) leaving the field as it was.
function readGoStrings<F extends string>(text: string, fields: readonly F[]): Record<F, string> {
  const out = Object.fromEntries(fields.map((f) => [f, ""])) as Record<F, string>;
  const json = parseValue(text);
  if (!(json instanceof JsonObject)) return out;
  for (const [key, value] of json.entries) {
    const field = goFieldName(key, fields) as F | undefined;
    if (field !== undefined && typeof value === "string") out[field] = value;
  }
  return out;
}

function structCodec<T extends Record<F, string>, F extends string>(
  bucket: string,
  fields: readonly F[],
): ValueCodec<T> {
  return {
    bucket,
    parse: (text) => readGoStrings(text, fields) as T,
    // A fresh object in Go's field order: the ledger marshals objects in insertion order.
    value: (v) => Object.fromEntries(fields.map((f) => [f, v[f] ?? ""])),
    encode(v) {
      return goMarshal(this.value(v));
    },
  };
}

function stringCodec(bucket: string): ValueCodec<string> {
  return {
    bucket,
    parse(text) {
      const json = parseValue(text);
      return typeof json === "string" ? json : "";
    },
    value: (v) => v,
    encode: (v) => goMarshal(v),
  };
}

function parseValue(text: string): JsonValue | undefined {
  if (text.length > MAX_VALUE_TEXT) return undefined;
  try {
    return parseJson(text);
  } catch {
    return undefined;
  }
}

// Go's `strconv.ParseUint(key, 10, 16)`: decimal digits only (leading zeros allowed).
function dnsTypeKey(key: string): number | undefined {
  if (!/^[0-9]+$/.test(key)) return undefined;
  const digits = key.replace(/^0+(?=.)/, "");
  if (digits.length > 5) return undefined;
  const n = Number(digits);
  return n <= 0xffff ? n : undefined;
}
