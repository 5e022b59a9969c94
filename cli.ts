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
import { OPTION_GROUPS, optionGroup } from "./lib/config/groups.ts";
import {
  checkConflicts,
  compatWarnings,
  resolveToken,
  type TokenSources,
  unusedWarnings,
} from "./lib/config/preflight.ts";
import { nearest } from "./lib/util/suggest.ts";
import type { CommandRunner } from "./lib/commands/context.ts";
import { EdgeVpnError, errorMessage, UsageError } from "./lib/util/errors.ts";
import { createLogger, formatLogRecord } from "./lib/util/logger.ts";
import { installProcessGuard } from "./lib/util/process_guard.ts";
import { TunError } from "./ffi/errors.ts";

const encoder = new TextEncoder();
/** Signals this close to the first are copies of it (see runCommand). */
const SIGNAL_ECHO_MS = 500;

interface CommandDef {
  name: string;
  aliases?: string[];
  summary: string;
  scopes: OptionScope[];
  arguments?: string;
  /** A command line shown under `--help`. */
  example?: string;
  load: () => Promise<CommandRunner>;
  /** Subcommands (`edgevpn dns add`); the command itself still runs `load` without one. */
  subcommands?: CommandDef[];
}

const COMMANDS: CommandDef[] = [
  {
    name: "join",
    summary:
      "join the network with the VPN (as the root command); with no token, create a network and print its token",
    scopes: ["common", "vpn", "dns", "services"],
    example: "sudo edgevpn join --dhcp --token-file /etc/edgevpn/token\n\n" +
      "As a service (no root: CAP_NET_ADMIN only): contrib/systemd/edgevpn.service and\n" +
      "edgevpn.env; the install steps are in the unit's header and docs/getting-started.md.",
    load: async () => (await import("./lib/commands/join.ts")).runJoin,
  },
  {
    name: "start",
    summary: "run a node (discovery, gossip, ledger) without the VPN until SIGINT/SIGTERM",
    scopes: ["common"],
    example: "edgevpn start --token-file ~/.edgevpn/token --ledger-state ~/.edgevpn/ledger",
    load: async () => (await import("./lib/commands/start.ts")).runStart,
  },
  {
    name: "dashboard",
    summary:
      "print a new one-time login link for the dashboard of a running node (reads the API token of --state-dir)",
    scopes: ["common", "client"],
    example: "edgevpn dashboard --api-url http://127.0.0.1:8080",
    load: async () => (await import("./lib/commands/dashboard.ts")).runDashboard,
  },
  {
    name: "api",
    summary: "run a node and serve the HTTP API (ledger, peers, DNS) until SIGINT/SIGTERM",
    scopes: ["common", "api"],
    example: "edgevpn api --token-file ~/.edgevpn/token --listen 127.0.0.1:8080",
    load: async () => (await import("./lib/commands/api.ts")).runApi,
  },
  {
    name: "dns",
    summary:
      "run a node serving DNS (records of the network, machine names, forwarding) on --listen; add, rm, ls manage records",
    scopes: ["common", "dns", "dnsServer"],
    example: "sudo edgevpn dns --token-file /etc/edgevpn/token --listen 127.0.0.1:53",
    load: async () => (await import("./lib/commands/dns.ts")).runDns,
    subcommands: [
      {
        name: "add",
        summary:
          "add a record through the running node's API: dns add <name> <type> <data...>; a plain name (db.mesh) means exactly that name, anything else is an RE2 expression as Go's keys",
        scopes: ["common", "client"],
        arguments: "<name> <type> <data...>",
        example: "edgevpn dns add db.mesh A 10.1.0.9",
        load: async () => (await import("./lib/commands/dns.ts")).runDnsAdd,
      },
      {
        name: "rm",
        summary:
          "remove a name's records (or only those of one type) through the running node's API",
        scopes: ["common", "client"],
        arguments: "<name> [type]",
        example: "edgevpn dns rm db.mesh A",
        load: async () => (await import("./lib/commands/dns.ts")).runDnsRm,
      },
      {
        name: "ls",
        summary:
          "list the network's DNS records and machine names as the running node's API sees them",
        scopes: ["common", "client"],
        example: "edgevpn dns ls --api-url http://127.0.0.1:8080",
        load: async () => (await import("./lib/commands/dns.ts")).runDnsLs,
      },
    ],
  },
  {
    name: "service-add",
    aliases: ["sa"],
    summary:
      "expose a TCP service to the network without the VPN: service-add NAME HOST:PORT (more with --expose)",
    scopes: ["common", "named", "service", "services"],
    arguments: "[name] [address]",
    example: "edgevpn service-add --token-file token ssh 127.0.0.1:22 --expose web=127.0.0.1:8080",
    load: async () => (await import("./lib/commands/services.ts")).runServiceAdd,
  },
  {
    name: "service-connect",
    aliases: ["sc"],
    summary:
      "reach a service of the network on a local port without the VPN: service-connect NAME [IP]:PORT (more with --connect)",
    scopes: ["common", "named", "service", "services"],
    arguments: "[name] [address]",
    example:
      "edgevpn service-connect --token-file token ssh 127.0.0.1:2222   # then: ssh -p 2222 127.0.0.1",
    load: async () => (await import("./lib/commands/services.ts")).runServiceConnect,
  },
  {
    name: "file-send",
    aliases: ["fs"],
    summary:
      "share a file with the network: file-send NAME PATH (receivers verify its SHA-256 and can resume)",
    scopes: ["common", "named", "file"],
    arguments: "[name] [path]",
    example: "edgevpn file-send --token-file token backup ./backup.tar",
    load: async () => (await import("./lib/commands/files.ts")).runFileSend,
  },
  {
    name: "file-receive",
    aliases: ["fr"],
    summary:
      "download a file shared in the network: file-receive NAME PATH; exits 0 once it is saved",
    scopes: ["common", "named", "file", "fileReceive"],
    arguments: "[name] [path]",
    example: "edgevpn file-receive --token-file token backup ./backup.tar --timeout 60",
    load: async () => (await import("./lib/commands/files.ts")).runFileReceive,
  },
  {
    name: "peergater",
    summary: "trust-zone key utilities: ecdsa-genkey",
    scopes: [],
    example: "edgevpn peergater ecdsa-genkey",
    load: async () => (await import("./lib/commands/peergater.ts")).runPeergater,
    subcommands: [
      {
        name: "ecdsa-genkey",
        summary:
          "print a new trust-zone key pair (public key for the ledger's trustzoneAuth, private key for --peergate-auth)",
        scopes: ["peergater"],
        example: "edgevpn peergater ecdsa-genkey > trustzone-key.txt",
        load: async () => (await import("./lib/commands/peergater.ts")).runEcdsaGenkey,
      },
    ],
  },
  {
    name: "proxy",
    summary:
      "run a node serving an HTTP, HTTPS (CONNECT) and SOCKS5 proxy on --listen that leaves through the network's egress nodes",
    scopes: ["common", "proxy"],
    example: "edgevpn proxy --token-file ~/.edgevpn/token --listen 127.0.0.1:8080",
    load: async () => (await import("./lib/commands/proxy.ts")).runProxy,
  },
];

function addOptions(cmd: Command, scopes: OptionScope[]): void {
  const entries = (Object.entries(OPTIONS) as [OptionName, OptionSpec][])
    .filter(([, spec]) => scopes.includes(spec.scope))
    .sort(([a, x], [b, y]) =>
      OPTION_GROUPS.indexOf(optionGroup(a, x)) - OPTION_GROUPS.indexOf(optionGroup(b, y))
    );
  for (const [name, spec] of entries) {
    const dash = spec.flag.length === 1 ? "-" : "--";
    const def = Array.isArray(spec.default) ? spec.default.join(",") : String(spec.default);
    const notes = [def !== "" && `default ${def}`, spec.env && `env ${spec.env}`].filter(Boolean);
    const help = notes.length ? `${spec.help} (${notes.join("; ")})` : spec.help;
    const short = spec.short ? `-${spec.short}, ` : "";
    let option: Option;
    if (spec.kind === "bool") {
      option = new Option(`${short}${dash}${spec.flag}${dash === "--" ? " [bool]" : ""}`, help);
    } else if (spec.kind === "list" || spec.kind === "multiaddrs") {
      option = new Option(`${short}${dash}${spec.flag} <value>`, help).argParser(
        (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
      );
    } else {
      option = new Option(`${short}${dash}${spec.flag} <value>`, help);
    }
    option.helpGroup(`${optionGroup(name, spec)}:`);
    cmd.addOption(option);
    if (spec.kind === "bool" && dash === "--") {
      cmd.addOption(new Option(`--no-${spec.flag}`).hideHelp());
    }
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
  const settings = resolveSettings(values, env, def.scopes);
  const explicit = new Set(Object.keys(values) as OptionName[]);
  for (const [name, spec] of Object.entries(OPTIONS) as [OptionName, OptionSpec][]) {
    if (spec.env && env[spec.env]) explicit.add(name);
  }
  const inScope = new Set([...explicit].filter((n) => def.scopes.includes(OPTIONS[n].scope)));
  const warnings = compatWarnings(values, env, def.scopes);
  if (def.scopes.includes("common")) {
    warnings.push(...await resolveToken(settings, values, env, TOKEN_SOURCES));
  }
  checkConflicts(settings, inScope);
  await (await import("./lib/commands/checks.ts")).checkValues(settings, def.scopes);
  warnings.push(...unusedWarnings(settings, inScope));
  const format = settings.logFormat;
  const controller = new AbortController();
  let firstSignalAt = 0;
  const onSignal = () => {
    // A second signal while stopping: leave at once, without cleaning up. Ctrl-C under
    // `deno task` arrives twice within milliseconds (the terminal signals the whole process
    // group and the task runner forwards its own copy): one signal, not two.
    if (controller.signal.aborted) {
      if (performance.now() - firstSignalAt < SIGNAL_ECHO_MS) return;
      printError("second signal: exiting without cleanup");
      Deno.exit(1);
    }
    firstSignalAt = performance.now();
    controller.abort();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const log = createLogger({
    level: settings.logLevel,
    sink: (record) => Deno.stderr.writeSync(encoder.encode(formatLogRecord(record, format))),
  });
  for (const warning of warnings) log.warn(warning);
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
    .usage("[options] | <command> [options]")
    .option("-v, --version", "print the version and the commit it was built from")
    .on("option:version", () => {
      throw new VersionRequested();
    })
    .exitOverride()
    .configureOutput({ writeErr: () => {}, outputError: () => {} })
    .showSuggestionAfterError(true)
    .allowExcessArguments(true)
    .enablePositionalOptions()
    .addHelpText(
      "after",
      "\nExamples:\n  sudo edgevpn join                       create a network, print its token\n" +
        "  sudo edgevpn join --dhcp --token-file F  join it from the next machine\n" +
        "  edgevpn -g -b > token                   a new network token\n" +
        "\nDocs: docs/README.md (configuration reference: docs/configuration.md)",
    );
  const rootScopes: OptionScope[] = ["generate", "common", "vpn", "dns", "services"];
  addOptions(program, rootScopes);
  program.action(async () => {
    refuseStrayArguments(program);
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
    else sub.allowExcessArguments(true);
    if (def.example) sub.addHelpText("after", `\nExample:\n  ${def.example}`);
    addOptions(sub, def.scopes);
    sub.action(async () => {
      if (!def.arguments) refuseStrayArguments(sub);
      await runCommand(def, sub);
    });
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
    if (e instanceof VersionRequested) {
      const { buildInfo } = await import("./lib/build_info.ts");
      const info = await buildInfo();
      Deno.stdout.writeSync(encoder.encode(`edgevpn ${info.version} (commit ${info.commit})\n`));
      return 0;
    }
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return 0;
      if (e.code === "commander.help") return 0;
      const message = e.message.replace(/^error: /, "").replace(/\s*\n\s*/g, " ");
      printError(`${message} (see edgevpn --help)`);
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

/** Thrown by `--version`, so that the commit is looked up only when asked for. */
class VersionRequested extends Error {}

/** Where `--token-file` reads from. */
const TOKEN_SOURCES: TokenSources = {
  readFile: (path) => Deno.readFile(path),
  readStdin: readTokenLine,
  fileMode: async (path) => (await Deno.stat(path).catch(() => undefined))?.mode ?? undefined,
};

/**
 * The first line of standard input (`--token-file -`), asking for it on a terminal. Reading stops
 * at the first newline, so a pasted token needs no Ctrl-D.
 */
async function readTokenLine(): Promise<Uint8Array> {
  if (Deno.stdin.isTerminal()) Deno.stderr.writeSync(encoder.encode("Network token: "));
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = Deno.stdin.readable.getReader();
  try {
    while (size <= 256 * 1024) {
      const { value, done } = await reader.read();
      if (done) break;
      const newline = value.indexOf(10);
      chunks.push(newline >= 0 ? value.subarray(0, newline) : value);
      size += value.length;
      if (newline >= 0) break;
    }
  } finally {
    reader.releaseLock();
  }
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) out.set(c, (at += c.length) - c.length);
  return out;
}

/** A command that takes no arguments was given some: most likely a mistyped subcommand. */
function refuseStrayArguments(cmd: Command): void {
  if (cmd.args.length === 0) return;
  const word = cmd.args[0];
  const names = cmd.commands.flatMap((c) => [c.name(), ...c.aliases()]);
  const guess = nearest(word, names);
  const where = cmd.parent ? `${cmd.name()} ` : "";
  const hint = guess
    ? ` (did you mean ${where}${guess}?)`
    : names.length
    ? ` (commands: ${names.join(", ")})`
    : "";
  throw new UsageError(
    "UNKNOWN_COMMAND",
    `unknown command ${JSON.stringify(`${where}${word}`)}${hint}; see edgevpn ${where}--help`,
  );
}

function printError(message: string): void {
  Deno.stderr.writeSync(encoder.encode(`edgevpn: ${message}\n`));
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
