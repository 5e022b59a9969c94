/** Network tokens: generation, YAML and base64 codecs, validation (Go EdgeVPN compatible). */
import YAML from "yaml";
import { UsageError } from "../util/errors.ts";
import { MAX_OTP_LENGTH } from "../crypto/otp.ts";
import type { NetworkConfig, OtpSettings } from "./network.ts";

/** Length of every random string of a generated config (Go's `defaultKeyLength`). */
export const GENERATED_KEY_LENGTH = 43;
/** `max_message_size` of a generated config: 20 MiB. */
export const DEFAULT_MAX_MESSAGE_SIZE = 20 << 20;
/** Refuse tokens and config files larger than this before decoding them. */
export const MAX_TOKEN_BYTES = 64 * 1024;
const ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ1234567890";

/**
 * A random string of `[a-zA-Z0-9]`, uniformly drawn with the Web Crypto RNG.
 *
 * @example
 * ```ts
 * randomKey(10).length; // 10
 * ```
 */
export function randomKey(length = GENERATED_KEY_LENGTH): string {
  let out = "";
  // Rejection sampling keeps the choice uniform over the 62 characters.
  while (out.length < length) {
    for (const b of crypto.getRandomValues(new Uint8Array(length * 2))) {
      if (b < 248 && out.length < length) out += ALPHABET[b % 62];
    }
  }
  return out;
}

/**
 * A new network configuration as `edgevpn -g` makes it: 43-character random secrets, both OTP
 * intervals set to `intervalSeconds`, lengths 43, `max_message_size` 20 MiB.
 *
 * @example
 * ```ts
 * const config = generateNetworkConfig(360);
 * config.otp.crypto.interval; // 360
 * ```
 */
export function generateNetworkConfig(intervalSeconds = 360): NetworkConfig {
  if (!Number.isInteger(intervalSeconds) || intervalSeconds <= 0) {
    throw new UsageError(
      "BAD_FLAG",
      `--key-otp-interval: expected a positive number of seconds, got ${intervalSeconds}`,
    );
  }
  const otp = (): OtpSettings => ({
    interval: intervalSeconds,
    key: randomKey(),
    length: GENERATED_KEY_LENGTH,
  });
  return {
    otp: { dht: otp(), crypto: otp() },
    room: randomKey(),
    rendezvous: randomKey(),
    mdns: randomKey(),
    maxMessageSize: DEFAULT_MAX_MESSAGE_SIZE,
  };
}

/**
 * The YAML text of a configuration, with Go's field names and order.
 *
 * @example
 * ```ts
 * networkConfigToYaml(generateNetworkConfig()).startsWith("otp:\n  dht:\n"); // true
 * ```
 */
export function networkConfigToYaml(config: NetworkConfig): string {
  return YAML.stringify({
    otp: {
      dht: { ...config.otp.dht },
      crypto: { ...config.otp.crypto },
    },
    room: config.room,
    rendezvous: config.rendezvous,
    mdns: config.mdns,
    max_message_size: config.maxMessageSize,
  }, { version: "1.1", lineWidth: 0 });
}

/**
 * The token of a configuration: standard padded base64 of its YAML.
 *
 * @example
 * ```ts
 * const token = encodeToken(generateNetworkConfig());
 * decodeToken(token).room.length; // 43
 * ```
 */
export function encodeToken(config: NetworkConfig): string {
  const bytes = new TextEncoder().encode(networkConfigToYaml(config));
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/**
 * Decodes and validates a base64 token (Go's `FromBase64`: padded standard base64 whose line
 * breaks are ignored).
 *
 * @throws {UsageError} code `TOKEN_INVALID` with a one-line reason and how to fix it.
 * @example
 * ```ts
 * decodeToken(encodeToken(generateNetworkConfig())).otp.dht.length; // 43
 * ```
 */
export function decodeToken(token: string): NetworkConfig {
  if (token.length > MAX_TOKEN_BYTES * 2) {
    throw tokenError(`expected at most ${MAX_TOKEN_BYTES} bytes, got ${token.length} characters`);
  }
  const text = token.replace(/[\r\n]/g, "");
  if (text.trim() === "") throw tokenError("the token is empty");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw tokenError(`expected padded standard base64, got ${describeText(text)}`);
  }
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  let yaml: string;
  try {
    yaml = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw tokenError(`expected base64 of YAML text, got ${bytes.length} bytes of binary`);
  }
  return parseNetworkYaml(yaml, "token");
}

/**
 * Parses and validates the YAML of a network configuration (token payload or `--config` file).
 * Follows gopkg.in/yaml.v2: unknown keys are ignored and any scalar fills a string field with
 * its text. Stricter than Go where Go would crash or silently fail: OTP secrets must be present,
 * intervals positive, lengths at most 44.
 *
 * @throws {UsageError} code `TOKEN_INVALID` (or `CONFIG_INVALID` when `source` is a file).
 * @example
 * ```ts
 * const config = parseNetworkYaml(networkConfigToYaml(generateNetworkConfig()));
 * ```
 */
export function parseNetworkYaml(text: string, source = "token"): NetworkConfig {
  const fail = (why: string) =>
    source === "token" ? tokenError(why) : new UsageError("CONFIG_INVALID", `${source}: ${why}`);
  if (text.length > MAX_TOKEN_BYTES) {
    throw fail(`expected at most ${MAX_TOKEN_BYTES} bytes of YAML, got ${text.length}`);
  }
  if (text.includes("\0")) throw fail("expected YAML text, got binary data");
  const shape = yamlShapeProblem(text);
  if (shape) throw fail(shape);
  const doc = YAML.parseDocument(text, { version: "1.1", uniqueKeys: false });
  if (doc.errors.length > 0) {
    throw fail(`not valid YAML: ${doc.errors[0].message.split("\n")[0]}`);
  }
  if (!YAML.isMap(doc.contents)) {
    throw fail(
      `expected a YAML mapping with otp, room, rendezvous and mdns, got ${
        doc.contents === null ? "an empty document" : describeNode(doc.contents)
      }`,
    );
  }
  const str = (path: string[]): string => {
    const node = doc.getIn(path, true);
    if (node === undefined || node === null) return "";
    if (!YAML.isScalar(node)) {
      throw fail(`${path.join(".")}: expected a string, got ${describeNode(node)}`);
    }
    if (node.value === null) return "";
    return node.source ?? String(node.value);
  };
  const int = (path: string[]): number => {
    const node = doc.getIn(path, true);
    if (node === undefined || node === null) return 0;
    if (!YAML.isScalar(node)) {
      throw fail(`${path.join(".")}: expected an integer, got ${describeNode(node)}`);
    }
    if (node.value === null) return 0;
    const v = node.value;
    if (typeof v === "number" && Number.isSafeInteger(v)) return v;
    if (typeof v === "bigint") {
      throw fail(`${path.join(".")}: integer ${v} is out of range`);
    }
    throw fail(`${path.join(".")}: expected an integer, got ${JSON.stringify(node.source ?? v)}`);
  };
  for (const path of [["otp"], ["otp", "dht"], ["otp", "crypto"]]) {
    const node = doc.getIn(path, true);
    if (node !== undefined && node !== null && !YAML.isMap(node)) {
      throw fail(`${path.join(".")}: expected a mapping, got ${describeNode(node)}`);
    }
  }
  const otp = (name: "dht" | "crypto"): OtpSettings => ({
    interval: int(["otp", name, "interval"]),
    key: str(["otp", name, "key"]),
    length: int(["otp", name, "length"]),
  });
  const config: NetworkConfig = {
    otp: { dht: otp("dht"), crypto: otp("crypto") },
    room: str(["room"]),
    rendezvous: str(["rendezvous"]),
    mdns: str(["mdns"]),
    maxMessageSize: int(["max_message_size"]),
  };
  validate(config, fail);
  return config;
}

/** Deepest `[`/`{` nesting taken: a network config has none; the parser recurses on each. */
const MAX_FLOW_DEPTH = 32;
/** Most aliases taken (the yaml library's own default limit when it expands them). */
const MAX_ALIASES = 100;

// The yaml parser recurses once per flow level (a few thousand `[` exhaust the stack, which it
// reports only after ~100 ms) and resolves every alias: its lexer, which does neither, looks
// first and stops at the first excess.
function yamlShapeProblem(text: string): string | undefined {
  let depth = 0;
  let aliases = 0;
  for (const token of new YAML.Lexer().lex(text)) {
    if (token === "[" || token === "{") {
      if (++depth > MAX_FLOW_DEPTH) return `expected at most ${MAX_FLOW_DEPTH} nested [ or {`;
    } else if (token === "]" || token === "}") {
      depth = Math.max(0, depth - 1);
    } else if (token[0] === "*" && ++aliases > MAX_ALIASES) {
      return `expected at most ${MAX_ALIASES} aliases (*name)`;
    }
  }
  return undefined;
}

function validate(config: NetworkConfig, fail: (why: string) => UsageError): void {
  const { dht, crypto } = config.otp;
  if (crypto.key === "") {
    throw fail("otp.crypto.key is missing: it is the secret that seals every message");
  }
  if (config.room === "") throw fail("room is missing: it is the secret of the gossip topic");
  if (dht.key === "" && config.rendezvous === "") {
    throw fail("otp.dht.key and rendezvous are both missing: one is needed for DHT discovery");
  }
  if (crypto.interval <= 0) {
    throw fail(
      `otp.crypto.interval: expected a positive number of seconds, got ${crypto.interval}`,
    );
  }
  if (dht.key !== "" && dht.interval <= 0) {
    throw fail(`otp.dht.interval: expected a positive number of seconds, got ${dht.interval}`);
  }
  for (
    const [name, length] of [["otp.dht.length", dht.length], ["otp.crypto.length", crypto.length]]
  ) {
    if ((length as number) > MAX_OTP_LENGTH) {
      throw fail(`${name}: expected at most ${MAX_OTP_LENGTH}, got ${length}`);
    }
  }
  if (config.maxMessageSize < 0) {
    throw fail(
      `max_message_size: expected a positive number of bytes, got ${config.maxMessageSize}`,
    );
  }
  // Go passes 0 to gossipsub, which then carries nothing; a missing size means the default.
  if (config.maxMessageSize === 0) config.maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE;
}

function tokenError(why: string): UsageError {
  return new UsageError(
    "TOKEN_INVALID",
    `Cannot read network token: ${why} (create one with: edgevpn -g -b)`,
  );
}

function describeNode(node: unknown): string {
  if (YAML.isSeq(node)) return "a list";
  if (YAML.isMap(node)) return "a mapping";
  if (YAML.isScalar(node)) return `the scalar ${JSON.stringify(String(node.source ?? node.value))}`;
  return "something else";
}

function describeText(text: string): string {
  const bad = text.match(/[^A-Za-z0-9+/=]/);
  if (bad) return `the character ${JSON.stringify(bad[0])} at offset ${bad.index}`;
  return `${text.length} characters (not a multiple of 4)`;
}
