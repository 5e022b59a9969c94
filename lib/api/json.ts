/** Go `encoding/json` behaviours the API needs beyond the ledger codec: indentation and lenient struct reads. */

import { goFieldName, JsonObject, parseJson } from "../ledger/json.ts";

/**
 * Re-indents compact JSON as Go's `json.Indent(dst, src, "", indent)` does (what echo's
 * `?pretty` produces): one member or element per line, `": "` after keys, empty `{}`/`[]`
 * kept on one line.
 *
 * @example
 * ```ts
 * goIndent('{"a":[1,2],"b":{}}', "  "); // '{\n  "a": [\n    1,\n    2\n  ],\n  "b": {}\n}'
 * ```
 */
export function goIndent(compact: string, indent: string): string {
  let out = "";
  let depth = 0;
  let open = false;
  let inString = false;
  let escaped = false;
  const newline = () => "\n" + indent.repeat(depth);
  for (const ch of compact) {
    if (inString) {
      out += ch;
      if (escaped) escaped = false;
      else if (ch === "\\") escaped = true;
      else if (ch === '"') inString = false;
      continue;
    }
    if (open && ch !== "]" && ch !== "}") {
      open = false;
      out += newline();
    }
    switch (ch) {
      case '"':
        inString = true;
        out += ch;
        break;
      case "{":
      case "[":
        depth++;
        open = true;
        out += ch;
        break;
      case ",":
        out += "," + newline();
        break;
      case ":":
        out += ": ";
        break;
      case "}":
      case "]":
        depth--;
        if (open) open = false;
        else out += newline();
        out += ch;
        break;
      default:
        out += ch;
    }
  }
  return out;
}

/**
 * Reads the string fields of a JSON object the way Go's `json.Unmarshal` into a struct of
 * strings would with its error ignored (as EdgeVPN's API does): members matched by name
 * case-insensitively, last duplicate wins, mismatched types and unparsable text leave "".
 *
 * @example
 * ```ts
 * readGoStrings('{"peerid":"a","Name":7}', ["PeerID", "Name"]); // { PeerID: "a", Name: "" }
 * ```
 */
export function readGoStrings<F extends string>(
  text: string,
  fields: readonly F[],
): Record<F, string> {
  const out = Object.fromEntries(fields.map((f) => [f, ""])) as Record<F, string>;
  let json;
  try {
    json = parseJson(text);
  } catch {
    return out;
  }
  if (!(json instanceof JsonObject)) return out;
  for (const [key, value] of json.entries) {
    const field = goFieldName(key, fields) as F | undefined;
    if (field !== undefined && typeof value === "string") out[field] = value;
  }
  return out;
}
