/** Go EdgeVPN's hub message envelope: `{"Message":…,"SenderID":…,"Annotations":…}` as JSON. */
import { writeHex } from "../crypto/seal.ts";
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
  return decodeFields(bytes).envelope;
}

/**
 * An envelope whose `Message` is kept as the bytes of its text (hex digits for a sealed
 * message): see {@link decodeEnvelopeHex}.
 */
export interface HexEnvelope {
  /** The bytes of the `Message` text (a view into the input on the fast path). */
  messageHex: Uint8Array;
  senderId: string;
  annotations: Record<string, unknown> | null;
}

const MESSAGE_FIRST = encoder.encode('{"Message":"');

/**
 * {@link decodeEnvelope} for sealed messages of any size, with the same result and errors:
 * the usual layout (`{"Message":"<hex>",…}`, as Go and we encode it) is read without turning
 * megabytes of hex into a JavaScript string (TextDecoder, JSON.parse and a hex string of a
 * 20 MiB envelope cost seconds on the event loop); any other layout takes the general path.
 *
 * @example
 * ```ts
 * decodeEnvelopeHex(encodeSealedEnvelope(new Uint8Array([255]), "", null)).messageHex;
 * // the bytes of "ff"
 * ```
 */
export function decodeEnvelopeHex(bytes: Uint8Array): HexEnvelope {
  if (startsWith(bytes, MESSAGE_FIRST)) {
    let end = MESSAGE_FIRST.length;
    // Hex digits, or any other printable ASCII but the quote and the backslash.
    while (end < bytes.length && bytes[end] >= 0x20 && bytes[end] < 0x7f) {
      if (bytes[end] === 0x22 || bytes[end] === 0x5c) break;
      end++;
    }
    if (bytes[end] === 0x22 && (bytes[end + 1] === 0x2c || bytes[end + 1] === 0x7d)) {
      // The rest, as an object of its own: `{` + what follows the comma (or `}`).
      const rest = new Uint8Array(bytes.length - end - 1);
      rest.set(bytes.subarray(end + 2), 1);
      rest[0] = 0x7b;
      const tail = rest.subarray(0, bytes[end + 1] === 0x7d ? 0 : rest.length);
      let parsed;
      try {
        // After the comma, another member must follow (`{"Message":"ab",}` is not JSON).
        parsed = bytes[end + 1] === 0x7d || firstNonSpace(tail, 1) !== 0x22
          ? undefined
          : decodeFields(tail);
      } catch {
        parsed = undefined;
      }
      const valid = bytes[end + 1] === 0x7d
        ? isWhitespace(bytes.subarray(end + 2))
        : parsed !== undefined;
      // A later "message" member wins (as in Go): then the general path decides.
      if (valid && !parsed?.hasMessage) {
        return {
          messageHex: bytes.subarray(MESSAGE_FIRST.length, end),
          senderId: parsed?.envelope.senderId ?? "",
          annotations: parsed?.envelope.annotations ?? null,
        };
      }
    }
  }
  const e = decodeEnvelope(bytes);
  return {
    messageHex: encoder.encode(e.message),
    senderId: e.senderId,
    annotations: e.annotations,
  };
}

/**
 * The envelope of a sealed message, written as bytes with the hex of `sealed` in place: the
 * same bytes as {@link encodeEnvelope} of `toHex(sealed)`, without the megabyte strings.
 *
 * @example
 * ```ts
 * new TextDecoder().decode(encodeSealedEnvelope(new Uint8Array([171]), "", null));
 * // '{"Message":"ab","SenderID":"","Annotations":null}'
 * ```
 */
export function encodeSealedEnvelope(
  sealed: Uint8Array,
  senderId: string,
  annotations: Record<string, unknown> | null,
): Uint8Array {
  const tail = encoder.encode(
    `","SenderID":${JSON.stringify(senderId)},"Annotations":${JSON.stringify(annotations)}}`,
  );
  const out = new Uint8Array(MESSAGE_FIRST.length + 2 * sealed.length + tail.length);
  out.set(MESSAGE_FIRST);
  writeHex(sealed, out, MESSAGE_FIRST.length);
  out.set(tail, MESSAGE_FIRST.length + 2 * sealed.length);
  return out;
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

function firstNonSpace(bytes: Uint8Array, from: number): number | undefined {
  for (let i = from; i < bytes.length; i++) {
    const b = bytes[i];
    if (b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return b;
  }
  return undefined;
}

function isWhitespace(bytes: Uint8Array): boolean {
  for (const b of bytes) if (b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return false;
  return true;
}

function decodeFields(bytes: Uint8Array): { envelope: Envelope; hasMessage: boolean } {
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
  let hasMessage = false;
  for (const [key, field] of Object.entries(value)) {
    switch (key.toLowerCase()) {
      case "message":
        out.message = stringField("Message", field);
        hasMessage = true;
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
  return { envelope: out, hasMessage };
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
