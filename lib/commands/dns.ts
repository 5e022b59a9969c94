/** `edgevpn dns` (a node serving DNS, as Go's), `--dns` of join, and `edgevpn dns add|rm|ls` through a running node's API. */
import { RE2JS } from "re2js";
import type { CommandContext } from "./context.ts";
import type { Settings } from "../config/options.ts";
import {
  createDnsServer,
  DnsRecordError,
  type DnsServer,
  type DnsServerOptions,
  dnsTypeName,
  dnsTypeNumber,
  domainName,
  formatHostPort,
  parseHostPort,
  parseRecordData,
  parseZone,
} from "../dns/mod.ts";
import { systemClock } from "../util/clock.ts";
import type { Mesh } from "../mesh/mesh.ts";
import { EdgeVpnError, errorMessage, listenErrorReason, UsageError } from "../util/errors.ts";
import type { Logger } from "../util/logger.ts";
import { apiClientOf } from "./api_client.ts";
import { untilAborted, withMesh } from "./common.ts";

/**
 * The DNS server's options from the settings, checked before anything starts. `listen` is
 * the address text and `source` the flag it came from (for errors).
 *
 * @throws {UsageError} `BAD_FLAG` naming the flag.
 * @example
 * ```ts ignore
 * const options = dnsOptionsOf(settings, "127.0.0.1:5353", "--dns");
 * ```
 */
export function dnsOptionsOf(settings: Settings, listen: string, source: string): DnsServerOptions {
  let zone: string | undefined;
  try {
    zone = parseZone(settings.dnsZone);
  } catch (e) {
    throw new UsageError("BAD_FLAG", `--dns-zone: ${errorMessage(e)}`);
  }
  const servers = settings.dnsForwardServer.map((s) =>
    parseHostPort(s, 53, "--dns-forward-server")
  );
  if (settings.dnsForwarder && servers.length === 0) {
    throw new UsageError(
      "BAD_FLAG",
      "--dns-forward-server: expected at least one server while --dns-forwarder is on",
    );
  }
  return {
    listen: parseHostPort(listen, 53, source),
    zone,
    forward: settings.dnsForwarder ? { servers, cacheSize: settings.dnsCacheSize } : undefined,
  };
}

/**
 * Starts a DNS server over `mesh`'s ledger.
 *
 * @throws {EdgeVpnError} `DNS_LISTEN_FAILED` with the reason in one line.
 * @example
 * ```ts ignore
 * const dns = await startDnsServer(mesh, dnsOptionsOf(settings, ":53", "--listen"), logger);
 * ```
 */
export async function startDnsServer(
  mesh: Mesh,
  options: DnsServerOptions,
  logger: Logger,
): Promise<DnsServer> {
  const server = createDnsServer({ ledger: mesh.ledger, logger, clock: systemClock }, options);
  try {
    await server.start();
  } catch (e) {
    await server.stop();
    const where = formatHostPort(options.listen);
    throw new EdgeVpnError(
      "DNS_LISTEN_FAILED",
      `Cannot serve DNS on ${where}: ${listenErrorReason(e)}`,
    );
  }
  return server;
}

/**
 * `edgevpn dns`: a node (no VPN, no heartbeats, as Go's) serving DNS on `--listen` until
 * SIGINT/SIGTERM.
 *
 * @example
 * ```ts
 * // edgevpn dns --token $TOKEN --listen 127.0.0.1:5353
 * ```
 */
export async function runDns(ctx: CommandContext): Promise<void> {
  const s = ctx.settings;
  if (ctx.args.length > 0) {
    throw new UsageError(
      "BAD_ARGUMENT",
      `dns: expected add, rm, ls or no argument, got ${JSON.stringify(ctx.args[0])}`,
    );
  }
  const options = dnsOptionsOf(s, s.dnsListen === "" ? ":53" : s.dnsListen, "--listen");
  await withMesh(ctx, false, async (mesh) => {
    const dns = await startDnsServer(mesh, options, ctx.log);
    try {
      await untilAborted(ctx.signal);
    } finally {
      await dns.stop();
    }
  });
}

/** Go's `GET /api/dns` entries. */
interface ApiDnsEntry {
  Regex: string;
  Records: Record<string, string>;
}

async function listRecords(api: Awaited<ReturnType<typeof apiClientOf>>): Promise<ApiDnsEntry[]> {
  const { json } = await api.request("GET", "/api/dns");
  if (!Array.isArray(json)) {
    throw new EdgeVpnError("API_REFUSED", `The API at ${api.origin} sent no DNS record list`);
  }
  return json as ApiDnsEntry[];
}

/** A plain domain name: letters, digits, `-` and `_` in dot-separated labels. */
const PLAIN_NAME = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?$/;

/**
 * The ledger key of a name argument: a plain domain name (`db.mesh`) becomes the expression
 * matching exactly it (`^db\.mesh\.$`); anything else is an RE2 expression used as the key
 * itself, as Go EdgeVPN's keys (matched unanchored against the name with its trailing dot).
 *
 * @throws {UsageError} `BAD_ARGUMENT` for a name too long or an expression that does not
 * compile.
 * @example
 * ```ts
 * recordKey("db.mesh"); // "^db\\.mesh\\.$"
 * recordKey(".*\\.mesh\\."); // ".*\\.mesh\\."
 * ```
 */
export function recordKey(name: string): string {
  if (PLAIN_NAME.test(name)) {
    const absolute = domainName(name);
    if (absolute === undefined) {
      throw new UsageError(
        "BAD_ARGUMENT",
        `expected a domain name of at most 63 bytes per label and 255 in all, got ${
          JSON.stringify(name)
        }`,
      );
    }
    return `^${absolute.replaceAll(".", "\\.")}$`;
  }
  try {
    RE2JS.compile(name);
  } catch (e) {
    throw new UsageError(
      "BAD_ARGUMENT",
      `expected a domain name or a regular expression (RE2 syntax), got ${JSON.stringify(name)}: ${
        errorMessage(e)
      }`,
    );
  }
  return name;
}

/** The entry of `name`: its key as {@link recordKey} makes it, else `name` as it is. */
function findEntry(entries: ApiDnsEntry[], name: string): ApiDnsEntry | undefined {
  const key = recordKey(name);
  return entries.find((e) => e.Regex === key) ?? entries.find((e) => e.Regex === name);
}

function typeArgument(text: string): string {
  const type = dnsTypeNumber(text);
  if (type === undefined) {
    throw new UsageError(
      "BAD_ARGUMENT",
      `expected a record type such as A, AAAA, CNAME, TXT, MX, SRV or PTR, got ${
        JSON.stringify(text)
      }`,
    );
  }
  return dnsTypeName(type);
}

/**
 * `edgevpn dns add <name> <type> <data...>`: sets the record of that type for the name,
 * keeping its records of other types, through the API of the running node.
 *
 * @example
 * ```ts
 * // edgevpn dns add db.mesh A 10.1.0.9
 * ```
 */
export async function runDnsAdd(ctx: CommandContext): Promise<void> {
  const [name, typeText, ...dataParts] = ctx.args;
  const key = recordKey(name);
  const type = typeArgument(typeText);
  const data = dataParts.join(" ");
  try {
    parseRecordData(dnsTypeNumber(type)!, data);
  } catch (e) {
    if (e instanceof DnsRecordError) throw new UsageError("BAD_ARGUMENT", e.message);
    throw e;
  }
  const api = await apiClientOf(ctx.settings, ctx.home);
  const existing = (await listRecords(api)).find((e) => e.Regex === key);
  const records = { ...existing?.Records, [type]: data };
  await api.request("POST", "/api/dns", { Regex: key, Records: records });
  ctx.out(`added ${key} ${type} ${data}\n`);
}

/**
 * `edgevpn dns rm <name> [type]`: removes the name's records, or only the record of `type`.
 *
 * @throws {EdgeVpnError} `DNS_RECORD_NOT_FOUND`.
 * @example
 * ```ts
 * // edgevpn dns rm db.mesh A
 * ```
 */
export async function runDnsRm(ctx: CommandContext): Promise<void> {
  const [name, typeText] = ctx.args;
  recordKey(name);
  const type = typeText === undefined ? undefined : typeArgument(typeText);
  const api = await apiClientOf(ctx.settings, ctx.home);
  const existing = findEntry(await listRecords(api), name);
  if (!existing || (type !== undefined && !(type in existing.Records))) {
    throw new EdgeVpnError(
      "DNS_RECORD_NOT_FOUND",
      `No ${type ?? "DNS"} record for ${
        JSON.stringify(name)
      } at ${api.origin} (see edgevpn dns ls)`,
    );
  }
  const key = existing.Regex;
  const rest = Object.fromEntries(Object.entries(existing.Records).filter(([t]) => t !== type));
  if (type === undefined || Object.keys(rest).length === 0) {
    await api.request("DELETE", `/api/ledger/dns/${encodeURIComponent(key)}`);
  } else {
    await api.request("POST", "/api/dns", { Regex: key, Records: rest });
  }
  ctx.out(`removed ${key}${type ? ` ${type}` : ""}\n`);
}

/**
 * `edgevpn dns ls`: one line per record, `<name> <type> <data>`, names in Go's order.
 *
 * @example
 * ```ts
 * // edgevpn dns ls
 * ```
 */
export async function runDnsLs(ctx: CommandContext): Promise<void> {
  const api = await apiClientOf(ctx.settings, ctx.home);
  const rows: string[][] = [];
  for (const entry of await listRecords(api)) {
    for (const [type, data] of Object.entries(entry.Records ?? {})) {
      rows.push([entry.Regex, type, data]);
    }
  }
  if (rows.length === 0) {
    ctx.out("no DNS record\n");
    return;
  }
  const width = [0, 1].map((i) => Math.max(...rows.map((r) => r[i].length), i ? 4 : 4));
  const line = (r: string[]) => `${r[0].padEnd(width[0])}  ${r[1].padEnd(width[1])}  ${r[2]}\n`;
  ctx.out(line(["NAME", "TYPE", "DATA"]) + rows.map(line).join(""));
}
