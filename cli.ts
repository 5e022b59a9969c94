#!/usr/bin/env -S deno run -A
/** Command line of EdgeVPN for Deno: parses arguments, calls the library, maps errors to exit codes. */
import { Command, CommanderError, Option } from "commander";
import {
  type OptionName,
  OPTIONS,
  type OptionScope,
  type OptionSpec,
} from "./lib/config/options.ts";
import { type CliValues, resolveSettings } from "./lib/config/settings.ts";
import type { CommandRunner } from "./lib/commands/context.ts";
import { EdgeVpnError, errorMessage, UsageError } from "./lib/util/errors.ts";
import { createLogger, formatLogRecord, parseLogFormat, parseLogLevel } from "./lib/util/logger.ts";
import { installProcessGuard } from "./lib/util/process_guard.ts";
import { VERSION } from "./lib/version.ts";
import { TunError } from "./ffi/errors.ts";

const encoder = new TextEncoder();

interface CommandDef {
  name: string;
  aliases?: string[];
  summary: string;
  scopes: OptionScope[];
  arguments?: string;
  load: () => Promise<CommandRunner>;
  /** Subcommands (`edgevpn dns add`); the command itself still runs `load` without one. */
  subcommands?: CommandDef[];
}

const COMMANDS: CommandDef[] = [
  {
    name: "join",
    summary:
      "join the network with the VPN (as the root command); with no token, create a network and print its token",
    scopes: ["common", "vpn", "dns"],
    load: async () => (await import("./lib/commands/join.ts")).runJoin,
  },
  {
    name: "start",
    summary: "run a node (discovery, gossip, ledger) without the VPN until SIGINT/SIGTERM",
    scopes: ["common"],
    load: async () => (await import("./lib/commands/start.ts")).runStart,
  },
  {
    name: "dashboard",
    summary:
      "print a new one-time login link for the dashboard of a running node (reads the API token of --state-dir)",
    scopes: ["common", "client"],
    load: async () => (await import("./lib/commands/dashboard.ts")).runDashboard,
  },
  {
    name: "api",
    summary: "run a node and serve the HTTP API (ledger, peers, DNS) until SIGINT/SIGTERM",
    scopes: ["common", "api"],
    load: async () => (await import("./lib/commands/api.ts")).runApi,
  },
  {
    name: "dns",
    summary:
      "run a node serving DNS (records of the network, machine names, forwarding) on --listen; add, rm, ls manage records",
    scopes: ["common", "dns", "dnsServer"],
    load: async () => (await import("./lib/commands/dns.ts")).runDns,
    subcommands: [
      {
        name: "add",
        summary:
          "add a record through the running node's API: dns add <name> <type> <data...>; a plain name (db.mesh) means exactly that name, anything else is an RE2 expression as Go's keys",
        scopes: ["common", "client"],
        arguments: "<name> <type> <data...>",
        load: async () => (await import("./lib/commands/dns.ts")).runDnsAdd,
      },
      {
        name: "rm",
        summary:
          "remove a name's records (or only those of one type) through the running node's API",
        scopes: ["common", "client"],
        arguments: "<name> [type]",
        load: async () => (await import("./lib/commands/dns.ts")).runDnsRm,
      },
      {
        name: "ls",
        summary:
          "list the network's DNS records and machine names as the running node's API sees them",
        scopes: ["common", "client"],
        load: async () => (await import("./lib/commands/dns.ts")).runDnsLs,
      },
    ],
  },
  {
    name: "peergater",
    summary: "trust-zone key utilities: ecdsa-genkey",
    scopes: [],
    load: async () => (await import("./lib/commands/peergater.ts")).runPeergater,
    subcommands: [
      {
        name: "ecdsa-genkey",
        summary:
          "print a new trust-zone key pair (public key for the ledger's trustzoneAuth, private key for --peergate-auth)",
        scopes: ["peergater"],
        load: async () => (await import("./lib/commands/peergater.ts")).runEcdsaGenkey,
      },
    ],
  },
  {
    name: "proxy",
    summary:
      "run a node serving an HTTP, HTTPS (CONNECT) and SOCKS5 proxy on --listen that leaves through the network's egress nodes",
    scopes: ["common", "proxy"],
    load: async () => (await import("./lib/commands/proxy.ts")).runProxy,
  },
];

function addOptions(cmd: Command, scopes: OptionScope[]): void {
  for (const [name, spec] of Object.entries(OPTIONS) as [OptionName, OptionSpec][]) {
    if (!scopes.includes(spec.scope)) continue;
    const dash = spec.flag.length === 1 ? "-" : "--";
    const def = Array.isArray(spec.default) ? spec.default.join(",") : String(spec.default);
    const notes = [def !== "" && `default ${def}`, spec.env && `env ${spec.env}`].filter(Boolean);
    const help = notes.length ? `${spec.help} (${notes.join("; ")})` : spec.help;
    const short = spec.short ? `-${spec.short}, ` : "";
    let option: Option;
    if (spec.kind === "bool") {
      option = new Option(`${short}${dash}${spec.flag}${dash === "--" ? " [bool]" : ""}`, help);
    } else if (spec.kind === "list") {
      option = new Option(`${short}${dash}${spec.flag} <value>`, help).argParser(
        (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
      );
    } else {
      option = new Option(`${short}${dash}${spec.flag} <value>`, help);
    }
    if (spec.compat) option.hideHelp();
    cmd.addOption(option);
    if (spec.kind === "bool" && dash === "--") {
      cmd.addOption(new Option(`--no-${spec.flag}`).hideHelp());
    }
    void name;
  }
}

function cliValues(cmd: Command, scopes: OptionScope[]): CliValues {
  const opts = cmd.opts();
  const values: CliValues = {};
  for (const [name, spec] of Object.entries(OPTIONS) as [OptionName, OptionSpec][]) {
    if (!scopes.includes(spec.scope)) continue;
    const key = spec.flag.length === 1
      ? spec.flag
      : spec.flag.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    if (opts[key] !== undefined) values[name] = opts[key];
  }
  return values;
}

async function runCommand(
  def: Pick<CommandDef, "scopes" | "load">,
  cmd: Command,
): Promise<void> {
  const env = Deno.env.toObject();
  const values = cliValues(cmd, def.scopes);
  const settings = resolveSettings(values, env);
  const explicit = new Set(Object.keys(values) as OptionName[]);
  for (const [name, spec] of Object.entries(OPTIONS) as [OptionName, OptionSpec][]) {
    if (spec.env && env[spec.env]) explicit.add(name);
  }
  const level = parseLogLevel(settings.logLevel);
  if (!level) {
    throw new UsageError(
      "BAD_FLAG",
      `--log-level: expected debug, info, warn, error, dpanic, panic or fatal, got ${
        JSON.stringify(settings.logLevel)
      }`,
    );
  }
  const format = parseLogFormat(settings.logFormat);
  if (!format) {
    throw new UsageError(
      "BAD_FLAG",
      `--log-format: expected text or json, got ${JSON.stringify(settings.logFormat)}`,
    );
  }
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const log = createLogger({
    level,
    sink: (record) => Deno.stderr.writeSync(encoder.encode(formatLogRecord(record, format))),
  });
  // Errors nothing caught are counted and logged; the node keeps running (see the guard).
  const uninstallGuard = installProcessGuard(log);
  try {
    const run = await def.load();
    await run({
      settings,
      args: cmd.args,
      out: (text) => Deno.stdout.writeSync(encoder.encode(text)),
      log,
      signal: controller.signal,
      home: env.HOME,
      explicit,
    });
  } finally {
    uninstallGuard();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

function buildProgram(): Command {
  const program = new Command("edgevpn")
    .description("EdgeVPN for Deno: a serverless peer-to-peer VPN and service mesh on libp2p")
    .version(VERSION, "-v, --version")
    .usage("[options] | <command> [options]")
    .exitOverride()
    .configureOutput({ writeErr: () => {}, outputError: () => {} })
    .showSuggestionAfterError(false)
    .enablePositionalOptions();
  const rootScopes: OptionScope[] = ["generate", "common", "vpn", "dns"];
  addOptions(program, rootScopes);
  program.action(async () => {
    await runCommand({
      scopes: rootScopes,
      load: async () => (await import("./lib/commands/root.ts")).runRoot,
    }, program);
  });
  const addCommand = (parent: Command, def: CommandDef) => {
    const sub = parent.command(def.name).description(def.summary).exitOverride()
      .configureOutput({ writeErr: () => {}, outputError: () => {} });
    for (const alias of def.aliases ?? []) sub.alias(alias);
    if (def.arguments) sub.arguments(def.arguments);
    addOptions(sub, def.scopes);
    sub.action(async () => await runCommand(def, sub));
    // Options after a subcommand's name are the subcommand's (`dns add --api-url …`).
    if (def.subcommands) sub.enablePositionalOptions();
    for (const child of def.subcommands ?? []) addCommand(sub, child);
  };
  for (const def of COMMANDS) addCommand(program, def);
  return program;
}

/**
 * Runs the command line and returns the process exit code: 0 success, 1 failure, 2 bad input.
 *
 * @example
 * ```ts
 * const code = await main(["-g"]);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(args, { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return 0;
      if (e.code === "commander.help") return 0;
      printError(`${e.message.replace(/^error: /, "")} (see edgevpn --help)`);
      return 2;
    }
    if (e instanceof UsageError) {
      printError(e.message);
      return 2;
    }
    const known = e instanceof EdgeVpnError || e instanceof TunError;
    printError(known ? e.message : `unexpected failure: ${errorMessage(e)}`);
    return 1;
  }
}

function printError(message: string): void {
  Deno.stderr.writeSync(encoder.encode(`edgevpn: ${message}\n`));
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
