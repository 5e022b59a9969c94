/** `/api/dns`: DNS records in the ledger with type names instead of Go's type numbers. */

import type { Context } from "hono";
import { compareGoStrings, goFieldName, JsonObject, parseJson } from "../ledger/json.ts";
import type { JsonValue } from "../ledger/json.ts";
import { BUCKETS, dnsCodec, type DnsRecords } from "../ledger/buckets.ts";
import { errorMessage } from "../util/errors.ts";
import { DnsRecordError, parseRecordData } from "../dns/records.ts";
import { dnsTypeName, dnsTypeNumber } from "../dns/types.ts";
import { ApiRequestError } from "./errors.ts";
import {
  ANNOUNCING,
  type ApiRoute,
  type ApiRouteContext,
  checkName,
  quoteInput,
  readBodyText,
  sendJson,
} from "./route.ts";

/** A DNS entry as the API shows it (Go `api/types.DNS`). */
export interface ApiDnsRecord {
  Regex: string;
  /** Type name (`A`, `AAAA`, `CNAME`, …) → record data. */
  Records: Map<string, string>;
}

/**
 * Reads a `dns` ledger value (`{"1":"10.1.0.5"}`) with the bucket's codec, as Go's API does,
 * and names the types.
 *
 * @example
 * ```ts
 * dnsRecordsFromLedger('{"1":"10.1.0.5","28":"fd::5"}'); // Map { "A" => "10.1.0.5", "AAAA" => "fd::5" }
 * ```
 */
export function dnsRecordsFromLedger(valueText: string): Map<string, string> {
  return new Map([...dnsCodec.parse(valueText)].map(([type, data]) => [dnsTypeName(type), data]));
}

/**
 * Converts API records (type name → data) to the `dns` value (type number → data), which
 * {@link dnsCodec} encodes sorted as Go sorts map keys. Data must be valid for its type (the
 * DNS server would skip it).
 *
 * @throws {ApiRequestError} 400 `DNS_TYPE_UNKNOWN` for a name that is not a DNS type,
 * 400 `DNS_RECORD_INVALID` for data that is not valid for its type.
 * @example
 * ```ts
 * dnsRecordsToLedger(new Map([["A", "2.2.2.2"]])); // Map { 1 => "2.2.2.2" }
 * ```
 */
export function dnsRecordsToLedger(records: ReadonlyMap<string, string>): DnsRecords {
  const out: DnsRecords = new Map();
  for (const [name, data] of records) {
    const type = dnsTypeNumber(name);
    if (type === undefined) {
      throw new ApiRequestError(
        400,
        "DNS_TYPE_UNKNOWN",
        `Records: expected DNS type names such as "A" or "TYPE65280", got ${quoteInput(name)}`,
      );
    }
    try {
      parseRecordData(type, data);
    } catch (e) {
      if (!(e instanceof DnsRecordError)) throw e;
      throw new ApiRequestError(
        400,
        "DNS_RECORD_INVALID",
        `Records[${quoteInput(name)}]: ${e.message}`,
      );
    }
    out.set(type, data);
  }
  return out;
}

/**
 * Parses a `POST /api/dns` body as Go's decoder would match it (member names
 * case-insensitive, last duplicate wins, unknown members ignored), but strictly typed.
 *
 * @throws {ApiRequestError} 400 `BODY_INVALID` / `NAME_INVALID` / `DNS_TYPE_UNKNOWN`.
 * @example
 * ```ts
 * parseDnsBody('{"Regex":"foo\\\\.bar","Records":{"A":"2.2.2.2"}}', 1024).Regex; // "foo\\.bar"
 * ```
 */
export function parseDnsBody(text: string, maxNameBytes: number): ApiDnsRecord {
  let json: JsonValue;
  try {
    json = parseJson(text);
  } catch (e) {
    throw new ApiRequestError(400, "BODY_INVALID", `Cannot parse body: ${errorMessage(e)}`);
  }
  if (!(json instanceof JsonObject)) {
    throw new ApiRequestError(
      400,
      "BODY_INVALID",
      `Body: expected a JSON object {"Regex":…,"Records":{…}}, got ${kindOf(json)}`,
    );
  }
  let regex = "";
  let records = new Map<string, string>();
  for (const [key, value] of json.entries) {
    const field = goFieldName(key, ["Regex", "Records"]);
    if (field === "Regex") {
      if (value === null) continue;
      if (typeof value !== "string") {
        throw new ApiRequestError(
          400,
          "BODY_INVALID",
          `Regex: expected a string, got ${kindOf(value)}`,
        );
      }
      regex = value;
    } else if (field === "Records") {
      records = new Map();
      if (value === null) continue;
      if (!(value instanceof JsonObject)) {
        throw new ApiRequestError(
          400,
          "BODY_INVALID",
          `Records: expected an object, got ${kindOf(value)}`,
        );
      }
      for (const [name, data] of value.entries) {
        if (data === null) {
          records.set(name, "");
        } else if (typeof data === "string") {
          records.set(name, data);
        } else {
          throw new ApiRequestError(
            400,
            "BODY_INVALID",
            `Records[${quoteInput(name)}]: expected a string, got ${kindOf(data)}`,
          );
        }
      }
    }
  }
  return { Regex: checkName("Regex", regex, maxNameBytes), Records: records };
}

function kindOf(v: JsonValue): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (v instanceof JsonObject) return "an object";
  return typeof v === "string" ? "a string" : typeof v === "boolean" ? "a boolean" : "a number";
}

/**
 * JSON media types only, as echo binds: a missing or `text/plain` type is refused, which also
 * keeps browsers from posting records cross-site without a CORS preflight.
 */
function isJsonMediaType(contentType: string | undefined): boolean {
  const type = (contentType ?? "").split(";")[0].trim().toLowerCase();
  return type === "application/json" || /^application\/[^/]+\+json$/.test(type);
}

/**
 * `GET /api/dns` and `POST /api/dns`.
 *
 * @example
 * ```ts
 * const routes = dnsRoutes({ components, settings: DEFAULT_API_SETTINGS });
 * ```
 */
export function dnsRoutes(ctx: ApiRouteContext): ApiRoute[] {
  const { ledger } = ctx.components;
  const { announceIntervalMs, announceTimeoutMs, maxNameBytes, maxBodyBytes } = ctx.settings;
  return [
    {
      method: "GET",
      path: "/api/dns",
      handler: (c) => {
        const live = ledger.currentData().get(BUCKETS.dns) ?? new Map<string, string>();
        const list = [...live.keys()].sort(compareGoStrings).map((regex) => ({
          Regex: regex,
          Records: dnsRecordsFromLedger(live.get(regex)!),
        }));
        return sendJson(c, list);
      },
    },
    {
      method: "POST",
      path: "/api/dns",
      handler: async (c: Context) => {
        const contentType = c.req.header("content-type");
        if (!isJsonMediaType(contentType)) {
          throw new ApiRequestError(
            415,
            "MEDIA_TYPE_UNSUPPORTED",
            `Content-Type: expected application/json, got ${quoteInput(contentType ?? "")}`,
          );
        }
        const text = await readBodyText(c, maxBodyBytes);
        if (text.trim() === "") {
          throw new ApiRequestError(
            400,
            "BODY_INVALID",
            "Body: expected a JSON object, got nothing",
          );
        }
        const record = parseDnsBody(text, maxNameBytes);
        ledger.persist(
          announceIntervalMs,
          announceTimeoutMs,
          BUCKETS.dns,
          record.Regex,
          dnsCodec.value(dnsRecordsToLedger(record.Records)),
        );
        return sendJson(c, ANNOUNCING);
      },
    },
  ];
}
