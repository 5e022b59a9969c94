/** Go EdgeVPN's hub message envelope: `{"Message":…,"SenderID":…,"Annotations":…}` as JSON. */
import { InputError } from "../util/errors.ts";

/**
 * A decoded envelope. `message` is the sealed hex text; `senderId` is what the wire carried
 * (Go sends `""` and overwrites it on receipt with the forwarding peer).
 *
 * @example
 * ```ts
 * const e: Envelope = { message: "00ff", senderId: "", annotations: null };
 * ```
 */
export interface Envelope {
  message: string;
  senderId: string;
  annotations: Record<string, unknown> | null;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Encodes an envelope as Go's `json.Marshal` of `hub.Message` does (field order and names).
 *
 * @example
 * ```ts
 * new TextDecoder().decode(encodeEnvelope({ message: "ab", senderId: "", annotations: null }));
 * // '{"Message":"ab","SenderID":"","Annotations":null}'
 * ```
 */
export function encodeEnvelope(envelope: Envelope): Uint8Array {
  return encoder.encode(
    `{"Message":${JSON.stringify(envelope.message)},"SenderID":${
      JSON.stringify(envelope.senderId)
    },"Annotations":${JSON.stringify(envelope.annotations)}}`,
  );
}

/**
 * Decodes an envelope the way Go's `encoding/json` reads `hub.Message`: field names match
 * case-insensitively (the last match wins), unknown fields are ignored, missing or `null`
 * fields are empty. Throws {@link InputError} `ENVELOPE_INVALID` for anything else: bytes that
 * are not JSON, JSON that is not an object, wrong field types.
 *
 * @example
 * ```ts
 * decodeEnvelope(new TextEncoder().encode('{"message":"ab"}')).message; // "ab"
 * ```
 */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    throw invalid(`expected JSON, got ${bytes.length} bytes that do not parse`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid(`expected a JSON object, got ${describe(value)}`);
  }
  const out: Envelope = { message: "", senderId: "", annotations: null };
  for (const [key, field] of Object.entries(value)) {
    switch (key.toLowerCase()) {
      case "message":
        out.message = stringField("Message", field);
        break;
      case "senderid":
        out.senderId = stringField("SenderID", field);
        break;
      case "annotations":
        if (field === null) {
          out.annotations = null;
        } else if (typeof field === "object" && !Array.isArray(field)) {
          out.annotations = field as Record<string, unknown>;
        } else {
          throw invalid(`expected Annotations to be an object or null, got ${describe(field)}`);
        }
        break;
    }
  }
  return out;
}

function stringField(name: string, field: unknown): string {
  if (field === null) return "";
  if (typeof field !== "string") {
    throw invalid(`expected ${name} to be a string, got ${describe(field)}`);
  }
  return field;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return `a ${typeof value}`;
}

function invalid(detail: string): InputError {
  return new InputError("ENVELOPE_INVALID", `Cannot decode hub message: ${detail}`);
}
