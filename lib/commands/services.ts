/** `edgevpn service-add` (`sa`) and `service-connect` (`sc`), and `--expose`/`--connect` of every command running services. */
import type { CommandContext } from "./context.ts";
import type { Settings } from "../config/options.ts";
import type { Mesh } from "../mesh/mesh.ts";
import {
  createServiceConnector,
  createServiceExposer,
  type ExposedService,
  MAX_SERVICE_NAME_BYTES,
  parseTcpAddress,
  serviceComponentsOf,
  type ServiceConnector,
  type ServiceExposer,
} from "../services/mod.ts";
import { EdgeVpnError, UsageError } from "../util/errors.ts";
import type { Logger } from "../util/logger.ts";
import { untilAborted, withMesh } from "./common.ts";

/** Go's message when a name or its address/path is missing (kept for scripts grepping it). */
export const GO_MISSING_NAME =
  "Either a file UUID as first argument or with --name needs to be provided";

/** How often a connector still waiting for its service says so. */
const WAITING_MESSAGE_MS = 5_000;

/** What a command asks for: services to expose and services to reach. */
export interface ServicePlan {
  expose: ExposedService[];
  connect: { name: string; listen: string }[];
}

/**
 * `NAME=HOST:PORT` entries of `--expose` or `--connect`, checked.
 *
 * @throws {UsageError} `BAD_FLAG` naming the flag and the entry.
 * @example
 * ```ts
 * parseServiceList(["db=127.0.0.1:5432"], "--expose", false); // [{ name: "db", address: "127.0.0.1:5432" }]
 * ```
 */
export function parseServiceList(
  entries: readonly string[],
  flag: string,
  listen: boolean,
): { name: string; address: string }[] {
  return entries.map((entry) => {
    const i = entry.indexOf("=");
    if (i <= 0) {
      throw new UsageError(
        "BAD_FLAG",
        `${flag}: expected NAME=${listen ? "[IP]:PORT" : "HOST:PORT"}, got ${
          JSON.stringify(entry)
        }`,
      );
    }
    const name = entry.slice(0, i);
    const address = entry.slice(i + 1);
    checkName(name, flag);
    parseTcpAddress(address, `${flag} ${name}`, { listen });
    return { name, address };
  });
}

/**
 * The plan of a command from `--expose`/`--connect`, plus an entry from `service-add` or
 * `service-connect` arguments. Names must be unique per side; listen addresses too.
 *
 * @throws {UsageError} `BAD_FLAG`.
 */
export function servicePlanOf(
  settings: Pick<Settings, "expose" | "connect">,
  extra: { expose?: ExposedService; connect?: { name: string; listen: string } } = {},
): ServicePlan {
  const expose = [
    ...(extra.expose ? [extra.expose] : []),
    ...parseServiceList(settings.expose, "--expose", false),
  ];
  const connect = [
    ...(extra.connect ? [extra.connect] : []),
    ...parseServiceList(settings.connect, "--connect", true).map((e) => ({
      name: e.name,
      listen: e.address,
    })),
  ];
  const twice = (names: string[]) => names.find((n, i) => names.indexOf(n) !== i);
  const exposedTwice = twice(expose.map((e) => e.name));
  if (exposedTwice !== undefined) {
    throw new UsageError(
      "BAD_FLAG",
      `--expose: service ${JSON.stringify(exposedTwice)} given twice`,
    );
  }
  const listenTwice = twice(
    connect.map((c) => parseTcpAddress(c.listen, "--connect", { listen: true }))
      .filter((a) => a.port !== 0).map((a) => `${a.hostname}:${a.port}`),
  );
  if (listenTwice !== undefined) {
    throw new UsageError("BAD_FLAG", `--connect: ${listenTwice} given twice`);
  }
  return { expose, connect };
}

function checkName(name: string, source: string): void {
  const size = new TextEncoder().encode(name).length;
  if (size === 0 || size > MAX_SERVICE_NAME_BYTES) {
    throw new UsageError(
      "BAD_FLAG",
      `${source}: expected a name of 1 to ${MAX_SERVICE_NAME_BYTES} bytes, got ${
        JSON.stringify(name)
      }`,
    );
  }
}

/**
 * The name and the second value (address or path) of `service-*`/`file-*`: `--name` and
 * the flag win over the positional arguments, as in Go.
 *
 * @throws {UsageError} `MISSING_NAME` with Go's message and the usage.
 */
export function nameAndValue(
  ctx: Pick<CommandContext, "args" | "settings">,
  value: string,
  usage: string,
): [string, string] {
  const name = ctx.settings.name;
  const n = name !== "" ? name : ctx.args[0] ?? "";
  const v = value !== "" ? value : ctx.args[1] ?? "";
  if (n === "" || v === "") throw new UsageError("MISSING_NAME", `${GO_MISSING_NAME} (${usage})`);
  return [n, v];
}

/** Services started by {@link startServices}. */
export interface RunningServices {
  exposer?: ServiceExposer;
  connectors: ServiceConnector[];
  /**
   * Settles with an error when a connector's service stayed unknown for `giveUpAfterMs`; never
   * settles otherwise.
   */
  failure: Promise<Error>;
  stop(): Promise<void>;
}

/**
 * Starts the exposer and connectors of `plan` on `mesh`. Connectors whose service is not in
 * the ledger yet say so every 5 s; with `giveUpAfterMs`, `failure` settles once one has
 * waited that long.
 *
 * @throws {EdgeVpnError} `SERVICE_LISTEN_FAILED` (everything started is stopped first).
 * @example
 * ```ts ignore
 * const running = await startServices(mesh, plan, { announceIntervalMs: 10_000, timeoutMs: 15_000, logger });
 * await running.stop();
 * ```
 */
export async function startServices(
  mesh: Mesh,
  plan: ServicePlan,
  options: {
    announceIntervalMs: number;
    timeoutMs: number;
    giveUpAfterMs?: number;
    logger: Logger;
  },
): Promise<RunningServices> {
  const components = serviceComponentsOf(mesh, { logger: options.logger });
  const connectors = plan.connect.map((c) =>
    createServiceConnector(components, {
      name: c.name,
      listen: c.listen,
      announceIntervalMs: options.announceIntervalMs,
      timeoutMs: options.timeoutMs,
    })
  );
  const exposer = plan.expose.length > 0
    ? createServiceExposer(components, {
      services: plan.expose,
      announceIntervalMs: options.announceIntervalMs,
      connectTimeoutMs: options.timeoutMs,
    })
    : undefined;
  const watching = new AbortController();
  const stop = async () => {
    watching.abort();
    for (const c of connectors) await c.stop();
    await exposer?.stop();
  };
  try {
    for (const c of connectors) await c.start();
    await exposer?.start();
  } catch (e) {
    await stop();
    throw e;
  }
  const failure = new Promise<Error>((resolve) => {
    for (const c of connectors) {
      watchProvider(c, options, watching.signal).then((e) => e && resolve(e));
    }
  });
  return { exposer, connectors, failure, stop };
}

// Logs while the connector's service is unknown; resolves with an error when it gives up.
async function watchProvider(
  connector: ServiceConnector,
  options: { giveUpAfterMs?: number; logger: Logger },
  signal: AbortSignal,
): Promise<Error | undefined> {
  const started = Date.now();
  while (!signal.aborted) {
    const waited = Date.now() - started;
    const left = options.giveUpAfterMs === undefined
      ? WAITING_MESSAGE_MS
      : Math.min(WAITING_MESSAGE_MS, options.giveUpAfterMs - waited);
    if (left <= 0) {
      return new EdgeVpnError(
        "SERVICE_UNKNOWN",
        `Service ${JSON.stringify(connector.name)} not found in the network within ${
          Math.round(waited / 1000)
        }s (--timeout)`,
      );
    }
    const wait = new AbortController();
    const timer = setTimeout(() => wait.abort(), left);
    const onAbort = () => wait.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    const peer = await connector.waitForProvider(wait.signal);
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
    if (peer !== undefined) {
      options.logger.info(`Service '${connector.name}' is provided by ${peer}`);
      return undefined;
    }
    if (signal.aborted) return undefined;
    options.logger.info(
      `Waiting for service '${connector.name}' to appear in the network (${
        Math.round((Date.now() - started) / 1000)
      }s so far)`,
    );
  }
  return undefined;
}

/** Runs a node with the services of `plan` until SIGINT/SIGTERM (or until `--timeout` gives up). */
function runNodeWithServices(ctx: CommandContext, plan: ServicePlan): Promise<void> {
  return withMesh(ctx, true, async (mesh) => {
    const running = await startServices(mesh, plan, servicesOptionsOf(ctx));
    try {
      const failure = await Promise.race([untilAborted(ctx.signal), running.failure]);
      if (failure) throw failure;
    } finally {
      await running.stop();
    }
  });
}

/**
 * Timing options of service and file commands from the settings: `--ledger-announce-interval`,
 * `--timeout` per connection and, when `--timeout` was given, as the limit of waiting for an
 * unknown service or file.
 */
export function timingOf(
  ctx: Pick<CommandContext, "settings" | "explicit">,
): { announceIntervalMs: number; timeoutMs: number; giveUpAfterMs?: number } {
  const s = ctx.settings;
  return {
    announceIntervalMs: s.ledgerAnnounceInterval,
    timeoutMs: s.timeout,
    giveUpAfterMs: ctx.explicit.has("timeout") ? s.timeout : undefined,
  };
}

/** Options of {@link startServices} from the settings: {@link timingOf} and the logger. */
export function servicesOptionsOf(
  ctx: Pick<CommandContext, "settings" | "explicit" | "log">,
): { announceIntervalMs: number; timeoutMs: number; giveUpAfterMs?: number; logger: Logger } {
  return { ...timingOf(ctx), logger: ctx.log };
}

/**
 * `edgevpn service-add NAME HOST:PORT`: exposes a TCP service (and any `--expose`) until
 * SIGINT/SIGTERM.
 *
 * @example
 * ```ts
 * // edgevpn service-add ssh 127.0.0.1:22 --token $TOKEN
 * ```
 */
export async function runServiceAdd(ctx: CommandContext): Promise<void> {
  const [name, address] = nameAndValue(
    ctx,
    ctx.settings.serviceAddress,
    "service-add NAME HOST:PORT, or --name and --address",
  );
  checkName(name, "--name");
  parseTcpAddress(address, "--address");
  await runNodeWithServices(ctx, servicePlanOf(ctx.settings, { expose: { name, address } }));
}

/**
 * `edgevpn service-connect NAME [IP]:PORT`: a local listener reaching the network's service
 * (and any `--connect`) until SIGINT/SIGTERM.
 *
 * @example
 * ```ts
 * // edgevpn service-connect ssh 127.0.0.1:2222 --token $TOKEN
 * ```
 */
export async function runServiceConnect(ctx: CommandContext): Promise<void> {
  const [name, listen] = nameAndValue(
    ctx,
    ctx.settings.serviceAddress,
    "service-connect NAME [IP]:PORT, or --name and --address",
  );
  checkName(name, "--name");
  parseTcpAddress(listen, "--address", { listen: true });
  await runNodeWithServices(ctx, servicePlanOf(ctx.settings, { connect: { name, listen } }));
}
