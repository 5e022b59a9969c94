/** Strict, lossless JSON reading and Go `encoding/json`-identical writing for ledger bytes. */

import { InputError } from "../util/errors.ts";
import type { Slicer } from "../util/slicer.ts";

/** A JSON number kept as its source text, so uint64 values never pass through a float. */
export class JsonNumber {
  constructor(readonly text: string) {}
}

/** A JSON object with its members in source order (duplicates kept; readers pick the last). */
export class JsonObject {
  constructor(readonly entries: ReadonlyArray<readonly [string, JsonValue]>) {}
}

/** Any parsed JSON value. */
export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;

/** Limits applied while parsing untrusted JSON text. */
export interface JsonParseLimits {
  /** Deepest nesting of arrays/objects; default 64. */
  maxDepth?: number;
}

/**
 * Parses JSON text strictly (RFC 8259 grammar, as Go's scanner): numbers are kept as text,
 * lone UTF-16 surrogate escapes become U+FFFD as Go decodes them.
 *
 * @throws {InputError} `JSON_INVALID` with the offset of the first error.
 * @example
 * ```ts
 * const v = parseJson('{"Version":1767225600000000000}');
 * (v as JsonObject).entries[0][1]; // JsonNumber { text: "1767225600000000000" }
 * ```
 */
export function parseJson(text: string, limits: JsonParseLimits = {}): JsonValue {
  const parser = new Parser(text, limits.maxDepth ?? 64);
  parser.skipWs();
  const value = parser.value(0);
  parser.skipWs();
  if (parser.pos !== text.length) parser.fail("unexpected data after the top-level value");
  return value;
}

/**
 * {@link parseJson} for large untrusted text: the same grammar, result and errors, but built
 * without recursion and pausing whenever `slicer` says its slice is spent, so that megabytes
 * of JSON never hold the event loop for long.
 *
 * @throws {InputError} `JSON_INVALID`, as {@link parseJson}.
 * @example
 * ```ts ignore
 * const v = await parseJsonSliced('{"a":[1,2]}', new Slicer());
 * ```
 */
export async function parseJsonSliced(
  text: string,
  slicer: Slicer,
  limits: JsonParseLimits = {},
): Promise<JsonValue> {
  const maxDepth = limits.maxDepth ?? 64;
  const p = new Parser(text, maxDepth);
  type Frame =
    | { object: true; entries: Array<readonly [string, JsonValue]>; key: string }
    | { object: false; items: JsonValue[] };
  const stack: Frame[] = [];
  const memberName = (): string => {
    p.skipWs();
    if (text[p.pos] !== '"') p.fail("expected a member name");
    const key = p.string();
    p.skipWs();
    if (text[p.pos] !== ":") p.fail("expected ':'");
    p.pos++;
    p.skipWs();
    return key;
  };
  p.skipWs();
  for (;;) {
    if (slicer.due()) await slicer.pause();
    // A value starts at p.pos: open a container, or read a scalar.
    let value: JsonValue;
    const c = text[p.pos];
    if (c === "{" || c === "[") {
      if (stack.length + 1 > maxDepth) p.fail(`nesting deeper than ${maxDepth}`);
      p.pos++;
      p.skipWs();
      if (c === "{") {
        if (text[p.pos] === "}") {
          p.pos++;
          value = new JsonObject([]);
        } else {
          stack.push({ object: true, entries: [], key: memberName() });
          continue;
        }
      } else if (text[p.pos] === "]") {
        p.pos++;
        value = [];
      } else {
        stack.push({ object: false, items: [] });
        continue;
      }
    } else {
      value = p.value(stack.length);
    }
    // Hand the value to its container, closing those that end here.
    for (;;) {
      const top = stack.at(-1);
      if (top === undefined) {
        p.skipWs();
        if (p.pos !== text.length) p.fail("unexpected data after the top-level value");
        return value;
      }
      if (top.object) top.entries.push([top.key, value]);
      else top.items.push(value);
      p.skipWs();
      const next = text[p.pos++];
      if (next === ",") {
        if (top.object) top.key = memberName();
        else p.skipWs();
        break;
      }
      if (next === (top.object ? "}" : "]")) {
        stack.pop();
        value = top.object ? new JsonObject(top.entries) : top.items;
        continue;
      }
      p.pos--;
      p.fail(top.object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
  }
}

class Parser {
  pos = 0;
  constructor(readonly text: string, readonly maxDepth: number) {}

  fail(what: string): never {
    throw new InputError("JSON_INVALID", `Cannot parse JSON: ${what} at offset ${this.pos}`);
  }

  skipWs(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      this.pos++;
    }
  }

  value(depth: number): JsonValue {
    const t = this.text;
    const c = t[this.pos];
    switch (c) {
      case "{":
        return this.object(depth + 1);
      case "[":
        return this.array(depth + 1);
      case '"':
        return this.string();
      case "t":
        return this.literal("true", true);
      case "f":
        return this.literal("false", false);
      case "n":
        return this.literal("null", null);
      default:
        if (c === "-" || (c >= "0" && c <= "9")) return this.number();
        return this.fail(
          c === undefined ? "unexpected end of input" : `unexpected ${JSON.stringify(c)}`,
        );
    }
  }

  literal<T>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) this.fail(`expected ${word}`);
    this.pos += word.length;
    return value;
  }

  number(): JsonNumber {
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(this.text);
    if (!m) return this.fail("malformed number");
    this.pos += m[0].length;
    return new JsonNumber(m[0]);
  }

  object(depth: number): JsonObject {
    if (depth > this.maxDepth) this.fail(`nesting deeper than ${this.maxDepth}`);
    this.pos++;
    const entries: Array<readonly [string, JsonValue]> = [];
    this.skipWs();
    if (this.text[this.pos] === "}") {
      this.pos++;
      return new JsonObject(entries);
    }
    for (;;) {
      this.skipWs();
      if (this.text[this.pos] !== '"') this.fail("expected a member name");
      const key = this.string();
      this.skipWs();
      if (this.text[this.pos] !== ":") this.fail("expected ':'");
      this.pos++;
      this.skipWs();
      entries.push([key, this.value(depth)]);
      this.skipWs();
      const c = this.text[this.pos++];
      if (c === "}") return new JsonObject(entries);
      if (c !== ",") {
        this.pos--;
        this.fail("expected ',' or '}'");
      }
    }
  }

  array(depth: number): JsonValue[] {
    if (depth > this.maxDepth) this.fail(`nesting deeper than ${this.maxDepth}`);
    this.pos++;
    const items: JsonValue[] = [];
    this.skipWs();
    if (this.text[this.pos] === "]") {
      this.pos++;
      return items;
    }
    for (;;) {
      this.skipWs();
      items.push(this.value(depth));
      this.skipWs();
      const c = this.text[this.pos++];
      if (c === "]") return items;
      if (c !== ",") {
        this.pos--;
        this.fail("expected ',' or ']'");
      }
    }
  }

  string(): string {
    const t = this.text;
    this.pos++;
    let out = "";
    let start = this.pos;
    for (;;) {
      if (this.pos >= t.length) this.fail("unterminated string");
      const c = t.charCodeAt(this.pos);
      if (c === 0x22) {
        out += t.slice(start, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail("control character in string");
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += t.slice(start, this.pos);
      const e = t[this.pos + 1];
      this.pos += 2;
      switch (e) {
        case '"':
        case "\\":
        case "/":
          out += e;
          break;
        case "b":
          out += "\b";
          break;
        case "f":
          out += "\f";
          break;
        case "n":
          out += "\n";
          break;
        case "r":
          out += "\r";
          break;
        case "t":
          out += "\t";
          break;
        case "u": {
          const unit = this.hex4(this.pos);
          this.pos += 4;
          if (unit >= 0xd800 && unit <= 0xdbff && t.startsWith("\\u", this.pos)) {
            const low = this.hex4(this.pos + 2);
            if (low >= 0xdc00 && low <= 0xdfff) {
              out += String.fromCharCode(unit, low);
              this.pos += 6;
              break;
            }
          }
          // Go's decoder turns an unpaired surrogate into U+FFFD.
          out += unit >= 0xd800 && unit <= 0xdfff ? "\ufffd" : String.fromCharCode(unit);
          break;
        }
        default:
          this.pos -= 2;
          this.fail("invalid escape");
      }
      start = this.pos;
    }
  }

  hex4(at: number): number {
    const h = this.text.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) {
      this.pos = at;
      this.fail("invalid \\u escape");
    }
    return parseInt(h, 16);
  }
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/**
 * The struct field a JSON member name lands in, the way Go's decoder matches it: exact name
 * first, else case-insensitively (with Go's extra folds U+212A → k and U+017F → s).
 *
 * @example
 * ```ts
 * goFieldName("index", ["Index", "Hash"]); // "Index"
 * ```
 */
export function goFieldName(key: string, names: readonly string[]): string | undefined {
  for (const name of names) if (key === name) return name;
  const folded = goFold(key);
  for (const name of names) if (goFold(name) === folded) return name;
  return undefined;
}

function goFold(s: string): string {
  return s.replace(/\u212a/g, "k").replace(/\u017f/g, "s").replace(
    /[A-Z]/g,
    (c) => c.toLowerCase(),
  );
}

// Go's encodeState escapes these (HTML-safe mode, the json.Marshal default).
// deno-lint-ignore no-control-regex -- control characters are exactly what must be escaped
const NEEDS_ESCAPE = /[\u0000-\u001f"\\<>&\u2028\u2029]/;
const HEX = "0123456789abcdef";

/**
 * Quotes a string exactly as Go's `json.Marshal`: `<`, `>`, `&` as `\u003c` etc., U+2028/2029
 * escaped, `\b \f \n \r \t` short forms, other control characters as `\u00XX`.
 *
 * @example
 * ```ts
 * goQuote("a<b"); // "\"a\\u003cb\""
 * ```
 */
export function goQuote(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let rep: string | undefined;
    if (c < 0x20) {
      switch (c) {
        case 0x08:
          rep = "\\b";
          break;
        case 0x0c:
          rep = "\\f";
          break;
        case 0x0a:
          rep = "\\n";
          break;
        case 0x0d:
          rep = "\\r";
          break;
        case 0x09:
          rep = "\\t";
          break;
        default:
          rep = `\\u00${HEX[c >> 4]}${HEX[c & 0xf]}`;
      }
    } else if (c === 0x22 || c === 0x5c) {
      rep = `\\${s[i]}`;
    } else if (c === 0x3c || c === 0x3e || c === 0x26) {
      rep = `\\u00${HEX[c >> 4]}${HEX[c & 0xf]}`;
    } else if (c === 0x2028 || c === 0x2029) {
      rep = `\\u202${HEX[c & 0xf]}`;
    }
    if (rep !== undefined) {
      out += s.slice(start, i) + rep;
      start = i + 1;
    }
  }
  return out + s.slice(start) + '"';
}

/**
 * Go's `json.Marshal` of a JavaScript value: plain objects keep insertion order (like Go
 * structs), `Map`s are sorted by key (like Go maps), bigints are exact integers, `Uint8Array`
 * is standard base64 (like `[]byte`), strings are escaped as {@link goQuote}.
 *
 * @throws {InputError} `VALUE_UNSUPPORTED` for undefined, functions, symbols, NaN/Infinity.
 * @example
 * ```ts
 * goMarshal({ PeerID: "x", Port: 1 }); // '{"PeerID":"x","Port":1}'
 * goMarshal(new Map([["28", "fd::1"], ["1", "10.1.0.1"]])); // '{"1":"10.1.0.1","28":"fd::1"}'
 * ```
 */
export function goMarshal(value: unknown): string {
  switch (typeof value) {
    case "string":
      return goQuote(value.toWellFormed());
    case "boolean":
      return value ? "true" : "false";
    case "bigint":
      return value.toString();
    case "number":
      if (!Number.isFinite(value)) {
        throw new InputError("VALUE_UNSUPPORTED", `Cannot encode ${value} as JSON`);
      }
      return Object.is(value, -0) ? "-0" : String(value);
    case "object": {
      if (value === null) return "null";
      if (Array.isArray(value)) return `[${value.map(goMarshal).join(",")}]`;
      if (value instanceof Uint8Array) return `"${bytesToBase64(value)}"`;
      if (value instanceof Map) {
        const keys = [...value.keys()].map((k) => {
          if (typeof k !== "string") {
            throw new InputError("VALUE_UNSUPPORTED", `Map keys must be strings, got ${typeof k}`);
          }
          return k.toWellFormed();
        }).sort(compareGoStrings);
        return `{${keys.map((k) => `${goQuote(k)}:${goMarshal(value.get(k))}`).join(",")}}`;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new InputError(
          "VALUE_UNSUPPORTED",
          `Cannot encode a ${proto?.constructor?.name} as JSON`,
        );
      }
      const parts: string[] = [];
      for (const [k, v] of Object.entries(value)) {
        if (v === undefined) continue;
        parts.push(`${goQuote(k.toWellFormed())}:${goMarshal(v)}`);
      }
      return `{${parts.join(",")}}`;
    }
    default:
      throw new InputError("VALUE_UNSUPPORTED", `Cannot encode a ${typeof value} as JSON`);
  }
}

/**
 * Orders strings as Go compares them (bytewise over UTF-8), which is code point order, not the
 * UTF-16 order of JavaScript's `<`.
 *
 * @example
 * ```ts
 * ["\u{1F600}", "\uFFFD"].sort(compareGoStrings); // ["\uFFFD", "\u{1F600}"]
 * ```
 */
export function compareGoStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (0xD800–0xDFFF) encode code points above every BMP character.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs === ys) return x < y ? -1 : 1;
    return xs ? 1 : -1;
  }
  return a.length - b.length < 0 ? -1 : a.length === b.length ? 0 : 1;
}

/**
 * Compares byte strings bytewise (Go's `string(a) > string(b)`).
 *
 * @example
 * ```ts
 * compareBytes(new Uint8Array([1]), new Uint8Array([1, 0])); // -1
 * ```
 */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/**
 * Standard padded base64 (Go's `base64.StdEncoding`).
 *
 * @example
 * ```ts
 * bytesToBase64(new Uint8Array([1, 2, 3])); // "AQID"
 * ```
 */
export function bytesToBase64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

/**
 * Decodes base64 as Go's `base64.StdEncoding` does for `[]byte` JSON fields: padding required,
 * CR/LF ignored; returns undefined when Go would fail.
 *
 * @example
 * ```ts
 * base64ToBytes("AQID"); // Uint8Array [1, 2, 3]
 * ```
 */
export function base64ToBytes(text: string): Uint8Array | undefined {
  const clean = text.replace(/[\r\n]/g, "");
  if (
    clean.length % 4 !== 0 ||
    !/^[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(clean)
  ) {
    return undefined;
  }
  const bin = atob(clean);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
