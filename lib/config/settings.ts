/** Turns flag text, environment variables and defaults into typed {@link Settings}. */
import { UsageError } from "../util/errors.ts";
import {
  type OptionName,
  OPTIONS,
  type OptionScope,
  type OptionSpec,
  type Settings,
} from "./options.ts";

/** Raw values from the command line: flag text, `true` for a bare boolean flag, lists. */
export type CliValues = Partial<Record<OptionName, string | boolean | string[]>>;

/**
 * Resolves every option: the command line wins over the environment, which wins over the
 * default of {@link OPTIONS}. Values are checked and typed by their kind. With `scopes` (the
 * scopes of the command being run), an environment variable of an option the command does not
 * take is used when it parses and ignored when it does not: a stray variable never stops a
 * command that has no use for it.
 *
 * @throws {UsageError} code `BAD_FLAG` naming the flag or variable and what was expected.
 * @example
 * ```ts
 * const s = resolveSettings({ mtu: "1400" }, { EDGEVPNDHT: "false" });
 * s.mtu; // 1400
 * s.dht; // false
 * s.discoveryInterval; // 720000 (milliseconds)
 * ```
 */
export function resolveSettings(
  cli: CliValues,
  env: Record<string, string | undefined>,
  scopes?: readonly OptionScope[],
): Settings {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(OPTIONS) as [OptionName, OptionSpec][]) {
    const raw = cli[name];
    const envText = spec.env ? env[spec.env] : undefined;
    if (raw !== undefined) {
      out[name] = fromCli(spec, raw);
    } else if (envText !== undefined && envText !== "") {
      try {
        out[name] = parseOptionText(spec, envText, spec.env!);
      } catch (e) {
        if (scopes === undefined || scopes.includes(spec.scope)) throw e;
        out[name] = fromDefault(spec);
      }
    } else {
      out[name] = fromDefault(spec);
    }
  }
  return out as Settings;
}

/**
 * Parses one option's text as its kind requires. `source` names the flag or variable in errors.
 *
 * @example
 * ```ts
 * import { OPTIONS } from "./options.ts";
 * parseOptionText(OPTIONS.timeout, "1m30s", "--timeout"); // 90000
 * ```
 */
export function parseOptionText(
  spec: OptionSpec,
  text: string,
  source = `--${spec.flag}`,
): boolean | number | string | string[] {
  const bad = (expected: string) =>
    new UsageError("BAD_FLAG", `${source}: expected ${expected}, got ${JSON.stringify(text)}`);
  const inRange = (n: number, expected: string, scale = 1): number => {
    const { min, max } = spec;
    if ((min !== undefined && n < min) || (max !== undefined && n > max)) {
      const range = min === undefined
        ? `at most ${max! / scale}`
        : max === undefined
        ? `${min / scale} or more`
        : `${min / scale} to ${max / scale}`;
      throw bad(`${expected} ${range}`);
    }
    return n;
  };
  switch (spec.kind) {
    case "bool": {
      const b = parseGoBool(text);
      if (b === undefined) throw bad("true or false");
      return b;
    }
    case "int": {
      const n = parseGoInt(text);
      if (n === undefined) throw bad("an integer");
      return inRange(n, "an integer");
    }
    case "seconds": {
      const n = parseGoInt(text);
      if (n === undefined || n < 0) throw bad("a number of seconds");
      return inRange(n * 1000, "a number of seconds", 1000);
    }
    case "duration": {
      const ms = parseGoDuration(text);
      if (ms === undefined) throw bad("a duration such as 15s, 2m or 1h30m");
      return inRange(ms, "a duration in milliseconds");
    }
    case "enum": {
      const value = enumValue(spec, text);
      if (value === undefined) throw bad(alternatives(spec.values ?? []));
      return value;
    }
    case "mode": {
      const mode = parseFileMode(text);
      if (mode === undefined) throw bad("an octal file mode such as 0660");
      return mode;
    }
    case "multiaddrs": {
      const list = splitList(text);
      const wrong = list.find((m) => !/^\/[^\s]+$/.test(m));
      if (wrong !== undefined) {
        throw new UsageError(
          "BAD_FLAG",
          `${source}: expected multiaddresses such as /ip4/192.0.2.1/tcp/4001/p2p/12D3KooW…, got ${
            JSON.stringify(wrong)
          }`,
        );
      }
      return list;
    }
    case "list":
      return splitList(text);
    case "string":
      return text;
  }
}

/**
 * The value of an `enum` option `text` stands for (itself or an alias), or undefined.
 *
 * @example
 * ```ts
 * import { OPTIONS } from "./options.ts";
 * enumValue(OPTIONS.ownership, " Log-Only "); // "observe"
 * enumValue(OPTIONS.vpnProtocol, "fastest"); // undefined
 * ```
 */
export function enumValue(spec: OptionSpec, text: string): string | undefined {
  const key = spec.fold ? text.trim().toLowerCase() : text;
  if (spec.values?.includes(key)) return key;
  return Object.hasOwn(spec.aliases ?? {}, key) ? spec.aliases![key] : undefined;
}

/**
 * Parses an octal file mode as Go does for `APILISTENUNIXMODE`: octal with an optional `0` or
 * `0o` prefix, permission bits only; undefined when it is not octal.
 *
 * @example
 * ```ts
 * parseFileMode("0600"); // 0o600
 * parseFileMode("rw"); // undefined
 * ```
 */
export function parseFileMode(text: string): number | undefined {
  const digits = text.trim().replace(/^0[oO]/, "");
  if (!/^[0-7]{1,11}$/.test(digits)) return undefined;
  return parseInt(digits, 8) & 0o777;
}

// "a or b", "a, b or c".
function alternatives(values: readonly string[]): string {
  return values.length <= 1
    ? values.join("")
    : `${values.slice(0, -1).join(", ")} or ${values[values.length - 1]}`;
}

/**
 * Go's `strconv.ParseBool`: 1, t, T, TRUE, true, True and their false forms.
 *
 * @example
 * ```ts
 * parseGoBool("F"); // false
 * parseGoBool("yes"); // undefined
 * ```
 */
export function parseGoBool(text: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(text)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(text)) return false;
  return undefined;
}

/**
 * Go's `strconv.ParseInt(s, 0, 64)` limited to safe integers: decimal, 0x, 0o, 0b, leading-0
 * octal, underscores between digits.
 *
 * @example
 * ```ts
 * parseGoInt("0x10"); // 16
 * parseGoInt("1_000"); // 1000
 * ```
 */
export function parseGoInt(text: string): number | undefined {
  const m = text.match(
    /^([+-]?)(0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|0(?:_?[0-7])*|[1-9](?:_?[0-9])*)$/,
  );
  if (!m) return undefined;
  const digits = m[2].replace(/_/g, "");
  const prefix = digits.slice(0, 2).toLowerCase();
  const value = prefix === "0x"
    ? parseInt(digits.slice(2), 16)
    : prefix === "0o"
    ? parseInt(digits.slice(2), 8)
    : prefix === "0b"
    ? parseInt(digits.slice(2), 2)
    : digits.length > 1 && digits[0] === "0"
    ? parseInt(digits.slice(1), 8)
    : parseInt(digits, 10);
  if (!Number.isSafeInteger(value)) return undefined;
  return m[1] === "-" ? -value : value;
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Go's `time.ParseDuration`, in milliseconds; a bare number is read as seconds, as
 * urfave/cli users often write.
 *
 * @example
 * ```ts
 * parseGoDuration("1h0m0s"); // 3600000
 * parseGoDuration("300ms"); // 300
 * ```
 */
export function parseGoDuration(text: string): number | undefined {
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (text === "0") return 0;
  const m = text.match(/^([+-]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/);
  if (!m) return undefined;
  let total = 0;
  for (const part of m[2].matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    total += Number(part[1]) * DURATION_UNITS[part[2]];
  }
  return m[1] === "-" ? -total : total;
}

/**
 * Splits a list option: commas separate items (urfave/cli's StringSlice), blanks are dropped.
 *
 * @example
 * ```ts
 * splitList("a, b,,c"); // ["a", "b", "c"]
 * ```
 */
export function splitList(text: string): string[] {
  return text.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

/**
 * Replaces a leading `~` with the home directory.
 *
 * @example
 * ```ts
 * expandHome("~/.edgevpn", "/root"); // "/root/.edgevpn"
 * ```
 */
export function expandHome(path: string, home: string | undefined): string {
  if (path === "~" || path.startsWith("~/")) {
    if (!home) {
      throw new UsageError(
        "NO_HOME",
        `Cannot expand ${path}: HOME is not set; pass an absolute path`,
      );
    }
    return home + path.slice(1);
  }
  return path;
}

function fromCli(spec: OptionSpec, raw: string | boolean | string[]): unknown {
  if (typeof raw === "boolean") {
    if (spec.kind !== "bool") {
      throw new UsageError("BAD_FLAG", `--${spec.flag}: expected a value`);
    }
    return raw;
  }
  if (Array.isArray(raw)) {
    if (spec.kind === "list") return raw.flatMap(splitList);
    if (spec.kind === "multiaddrs") {
      return raw.flatMap((text) => parseOptionText(spec, text) as string[]);
    }
    return parseOptionText(spec, raw[raw.length - 1]);
  }
  return parseOptionText(spec, raw);
}

function fromDefault(spec: OptionSpec): unknown {
  const d = spec.default;
  if (Array.isArray(d)) return [...d];
  if (typeof d === "string" && ["duration", "seconds", "mode"].includes(spec.kind)) {
    return parseOptionText(spec, d);
  }
  if (typeof d === "number" && spec.kind === "seconds") return d * 1000;
  return d;
}
