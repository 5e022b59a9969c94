/**
 * Checks of a command line before any command runs: options that do nothing here (warned),
 * options given empty, `--token-file`, and options that contradict each other (refused).
 */
import { UsageError } from "../util/errors.ts";
import { unsupportedWarning } from "./groups.ts";
import {
  type OptionName,
  OPTIONS,
  type OptionScope,
  type OptionSpec,
  type Settings,
} from "./options.ts";
import type { CliValues } from "./settings.ts";

/** The largest token file read; a token is the base64 of a config of at most 64 KiB. */
const MAX_TOKEN_FILE_BYTES = 128 * 1024;

/**
 * One warning per compatibility option given on the command line or through its environment
 * variable: it is accepted, as Go EdgeVPN's scripts pass it, but has no effect here. Only options
 * of `scopes` (those the command takes) count.
 *
 * @example
 * ```ts
 * compatWarnings({ limitEnable: true }, {}, ["common"]); // ["--limit-enable is not supported …"]
 * ```
 */
export function compatWarnings(
  cli: CliValues,
  env: Record<string, string | undefined>,
  scopes: readonly OptionScope[],
): string[] {
  const out: string[] = [];
  for (const [name, spec] of Object.entries(OPTIONS) as [OptionName, OptionSpec][]) {
    if (!spec.compat || !scopes.includes(spec.scope)) continue;
    if (cli[name] !== undefined) out.push(unsupportedWarning(spec, "flag"));
    else if (spec.env && env[spec.env] !== undefined && env[spec.env] !== "") {
      out.push(unsupportedWarning(spec, "env"));
    }
  }
  return out;
}

/** Where the network token comes from besides `--token`. */
export interface TokenSources {
  /** Reads a file's bytes (Deno.readFile). */
  readFile: (path: string) => Promise<Uint8Array>;
  /** Reads standard input to its end, for `--token-file -`. */
  readStdin: () => Promise<Uint8Array>;
  /** The file's permission bits, or undefined when unknown. */
  fileMode: (path: string) => Promise<number | undefined>;
}

/**
 * Resolves the network token: refuses `--token`, `--config`, `--token-file` (or their
 * environment variables) given empty, which would otherwise silently mean "no network"; reads
 * `--token-file` (`-` for standard input) into `settings.token`. Returns warnings to print.
 *
 * @throws {UsageError} `BAD_FLAG` for an empty value, both `--token` and `--token-file`, or an
 * unreadable, empty or oversized token file.
 * @example
 * ```ts ignore
 * const warnings = await resolveToken(settings, cli, Deno.env.toObject(), sources);
 * ```
 */
export async function resolveToken(
  settings: Settings,
  cli: CliValues,
  env: Record<string, string | undefined>,
  sources: TokenSources,
): Promise<string[]> {
  for (const name of ["token", "config", "tokenFile"] as const) {
    const spec: OptionSpec = OPTIONS[name];
    if (typeof cli[name] === "string" && (cli[name] as string).trim() === "") {
      throw new UsageError(
        "BAD_FLAG",
        `--${spec.flag}: expected ${expectedOf(name)}, got an empty value (leave it out instead)`,
      );
    }
    if (cli[name] === undefined && spec.env && env[spec.env] !== undefined) {
      if (env[spec.env]!.trim() === "") {
        throw new UsageError(
          "BAD_FLAG",
          `${spec.env}: expected ${expectedOf(name)}, got an empty value (unset it instead)`,
        );
      }
    }
  }
  if (settings.tokenFile === "") return [];
  // A flag wins over a variable; two flags, or two variables, contradict each other.
  const fileByFlag = cli.tokenFile !== undefined;
  const tokenByFlag = cli.token !== undefined;
  if (tokenByFlag && !fileByFlag) return [];
  if (tokenByFlag || (!fileByFlag && env.EDGEVPNTOKEN !== undefined)) {
    throw new UsageError(
      "BAD_FLAG",
      fileByFlag
        ? "--token and --token-file: expected one of them, got both"
        : "EDGEVPNTOKEN and EDGEVPNTOKENFILE: expected one of them, got both",
    );
  }
  const path = settings.tokenFile;
  const label = path === "-" ? "standard input" : path;
  let bytes: Uint8Array;
  const warnings: string[] = [];
  try {
    bytes = path === "-" ? await sources.readStdin() : await sources.readFile(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "no such file"
      : e instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : e instanceof Deno.errors.IsADirectory
      ? "a directory"
      : (e as Error).message;
    throw new UsageError("BAD_FLAG", `--token-file: cannot read ${label}: ${why}`);
  }
  if (bytes.length > MAX_TOKEN_FILE_BYTES) {
    throw new UsageError(
      "BAD_FLAG",
      `--token-file: expected at most ${MAX_TOKEN_FILE_BYTES} bytes in ${label}, got ${bytes.length}`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes).trim();
  } catch {
    throw new UsageError(
      "BAD_FLAG",
      `--token-file: expected a base64 token in ${label}, got binary`,
    );
  }
  if (text === "") {
    throw new UsageError(
      "BAD_FLAG",
      `--token-file: expected a base64 token in ${label}, got nothing`,
    );
  }
  if (path !== "-") {
    const mode = await sources.fileMode(path);
    if (mode !== undefined && (mode & 0o077) !== 0) {
      warnings.push(
        `token file ${path} can be read by other users (mode ${
          (mode & 0o777).toString(8).padStart(4, "0")
        }): chmod 600 ${path}`,
      );
    }
  }
  settings.token = text;
  return warnings;
}

function expectedOf(name: "token" | "config" | "tokenFile"): string {
  return name === "token"
    ? "a base64 network token"
    : name === "config"
    ? "the path of a YAML network configuration"
    : "the path of a file holding the token, or - for standard input";
}

/**
 * Refuses options that contradict each other, in one line naming both and what was expected.
 * `explicit` holds the options the user gave (flag or environment variable).
 *
 * @throws {UsageError} `FLAG_CONFLICT`.
 * @example
 * ```ts ignore
 * checkConflicts(settings, new Set(["dhcp", "address"]));
 * ```
 */
export function checkConflicts(settings: Settings, explicit: ReadonlySet<OptionName>): void {
  const conflict = (message: string) => new UsageError("FLAG_CONFLICT", message);
  if (settings.dhcp && explicit.has("address")) {
    const m = settings.address.trim().match(/^(\d{1,3}(?:\.\d{1,3}){3})\/(\d+)$/);
    if (!m || m[2] !== "24") {
      throw conflict(
        `--dhcp leases an address of --address's /24: expected an IPv4 /24 such as 10.1.0.1/24, got ${
          JSON.stringify(settings.address)
        }`,
      );
    }
  }
  if (settings.base64 && !settings.generate) {
    throw conflict("-b only makes sense with -g: expected -g -b, got -b alone");
  }
  if (settings.generate && (explicit.has("token") || explicit.has("config"))) {
    throw conflict(
      "-g prints a new network and exits: expected -g without --token or --config, got both",
    );
  }
}

/**
 * One-line notes for options given that the command will not use because another option is
 * off (`--api-listen` without `--api`).
 *
 * @example
 * ```ts ignore
 * unusedWarnings(settings, new Set(["apiListen"])); // ["--api-listen has no effect without --api"]
 * ```
 */
export function unusedWarnings(settings: Settings, explicit: ReadonlySet<OptionName>): string[] {
  const out: string[] = [];
  if (explicit.has("apiListen") && !settings.api) {
    out.push("--api-listen has no effect without --api");
  }
  if (explicit.has("leaseDir") && !settings.dhcp) {
    out.push("--lease-dir has no effect without --dhcp");
  }
  return out;
}
