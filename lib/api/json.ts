/** Go `encoding/json` behaviour the API needs beyond the ledger codec: indentation. */

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
