/** Reaches a service of the network through a local TCP listener (Go's `service-connect`). */
import type { Job } from "../ledger/ledger.ts";
import { BUCKETS } from "../ledger/buckets.ts";
import type { NodeStream } from "../node/stream.ts";
import { EdgeVpnError, errorMessage, listenErrorReason } from "../util/errors.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { clampTimerMs } from "../util/timer.ts";
import { formatTcpAddress, parseTcpAddress, type TcpAddress } from "./address.ts";
import type { ServiceComponents } from "./components.ts";
import { BULK_READ_BYTES, pipeStream } from "./pipe.ts";
import {
  encodeServiceRequest,
  GO_SERVICE_PROTOCOL,
  parseServiceStatus,
  SERVICE_PROTOCOL,
  ServiceStatus,
} from "./protocol.ts";
import { announceUser, providerOf } from "./users.ts";

/** Options of {@link createServiceConnector}. */
export interface ServiceConnectorOptions {
  /** The service's name in the network. */
  name: string;
  /** Where to listen locally: `[ip]:port` (Go's `--address` of `service-connect`). */
  listen: string;
  /** Go `--ledger-announce-interval`: how often our `users` entry is checked and re-added. */
  announceIntervalMs: number;
  /**
   * How long one local connection may wait for the service to be known, reachable and
   * accepting (Go's `--timeout`, default 15 s); the connection is closed after that.
   */
  timeoutMs?: number;
}

/**
 * Counters of a connector.
 *
 * @example
 * ```ts ignore
 * connector.counters().served; // connections piped to the service so far
 * ```
 */
export interface ServiceConnectorCounters {
  /** Local connections accepted. */
  accepted: number;
  /** Connections piped to the service. */
  served: number;
  /** Connections open right now. */
  active: number;
  /** Connections closed because the service stayed unknown or unreachable. */
  failed: number;
  /** Bytes from local clients to the service, and back. */
  bytesToService: number;
  bytesFromService: number;
}

const DEFAULT_TIMEOUT_MS = 15_000;
/** First wait before opening a refused stream again; doubles up to {@link MAX_RETRY_MS}. */
const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 2_000;

/**
 * Listens on a local TCP address and forwards each connection to the node exposing `name`:
 * over our named protocol when the node is one of ours, Go's `/edgevpn/service/0.1`
 * otherwise. Announces our `users` entry, without which exposers reset our streams; a stream
 * refused while that entry spreads is opened again until the timeout.
 *
 * @example
 * ```ts ignore
 * const connector = createServiceConnector(serviceComponentsOf(mesh), {
 *   name: "ssh",
 *   listen: "127.0.0.1:2222",
 *   announceIntervalMs: 10_000,
 * });
 * await connector.start();
 * await connector.stop();
 * ```
 */
export class ServiceConnector {
  readonly #c: ServiceComponents;
  readonly #log: Logger;
  readonly #name: string;
  readonly #listen: TcpAddress;
  readonly #announceMs: number;
  readonly #timeoutMs: number;
  readonly #active = new Set<AbortController>();
  readonly #counters: ServiceConnectorCounters = {
    accepted: 0,
    served: 0,
    active: 0,
    failed: 0,
    bytesToService: 0,
    bytesFromService: 0,
  };
  #listener: Deno.TcpListener | undefined;
  #accepting: Promise<void> | undefined;
  #job: Job | undefined;

  /** Use {@link createServiceConnector}. */
  constructor(components: ServiceComponents, options: ServiceConnectorOptions) {
    this.#c = components;
    this.#log = (components.logger ?? silentLogger).child("services");
    encodeServiceRequest(options.name);
    this.#name = options.name;
    this.#listen = parseTcpAddress(options.listen, `service ${options.name}`, { listen: true });
    this.#announceMs = options.announceIntervalMs;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** The service's name. */
  get name(): string {
    return this.#name;
  }

  /** The address the listener is bound to (with the port chosen when 0 was asked). */
  get address(): TcpAddress {
    if (!this.#listener) return this.#listen;
    const a = this.#listener.addr;
    return { hostname: a.hostname, port: a.port };
  }

  /** The peer exposing the service according to the ledger, or undefined. */
  provider(): string | undefined {
    return providerOf(this.#c.ledger, BUCKETS.services, this.#name);
  }

  /**
   * Listens and starts announcing our `users` entry.
   *
   * @throws {EdgeVpnError} `SERVICE_LISTEN_FAILED` when the address cannot be bound.
   */
  start(): Promise<void> {
    if (this.#listener) return Promise.resolve();
    try {
      this.#listener = Deno.listen({ ...this.#listen, transport: "tcp" });
    } catch (e) {
      const why = listenErrorReason(e);
      throw new EdgeVpnError(
        "SERVICE_LISTEN_FAILED",
        `Cannot listen on ${formatTcpAddress(this.#listen)} for service ${
          JSON.stringify(this.#name)
        }: ${why}`,
      );
    }
    this.#job = announceUser(this.#c.ledger, this.#c.node.peerId, this.#announceMs, this.#now);
    this.#accepting = this.#acceptLoop(this.#listener);
    this.#log.info(
      `Service '${this.#name}' reachable on ${formatTcpAddress(this.address)}`,
    );
    return Promise.resolve();
  }

  /** Closes the listener and every open connection; stops announcing. */
  async stop(): Promise<void> {
    const listener = this.#listener;
    if (!listener) return;
    this.#listener = undefined;
    this.#job?.stop();
    this.#job = undefined;
    try {
      listener.close();
    } catch { /* closed */ }
    for (const a of this.#active) a.abort();
    await this.#accepting;
  }

  /** A snapshot of the counters. */
  counters(): ServiceConnectorCounters {
    return { ...this.#counters, active: this.#active.size };
  }

  /**
   * Resolves with the provider's peer ID once the service is in the ledger, or with
   * undefined when `signal` aborts first.
   */
  waitForProvider(signal: AbortSignal): Promise<string | undefined> {
    const found = this.provider();
    if (found !== undefined || signal.aborted) return Promise.resolve(found);
    return new Promise((resolve) => {
      const done = () => {
        this.#c.ledger.removeEventListener("change", check);
        signal.removeEventListener("abort", done);
        resolve(this.provider());
      };
      const check = () => {
        if (this.provider() !== undefined) done();
      };
      this.#c.ledger.addEventListener("change", check);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  #now = (): number => this.#c.clock?.now() ?? Date.now();

  async #acceptLoop(listener: Deno.TcpListener): Promise<void> {
    const handling = new Set<Promise<void>>();
    try {
      for await (const conn of listener) {
        this.#counters.accepted++;
        const p = this.#handle(conn).catch((e) =>
          this.#log.debug("service connection failed", { error: errorMessage(e) })
        );
        handling.add(p);
        p.finally(() => handling.delete(p));
      }
    } catch (e) {
      if (this.#listener === listener) {
        this.#log.warn(`service ${this.#name}: listener failed`, { error: errorMessage(e) });
      }
    }
    await Promise.allSettled(handling);
  }

  async #handle(conn: Deno.TcpConn): Promise<void> {
    const abort = new AbortController();
    this.#active.add(abort);
    const timer = setTimeout(() => abort.abort(), clampTimerMs(this.#timeoutMs));
    const onAbort = () => {
      try {
        conn.close();
      } catch { /* closed */ }
    };
    abort.signal.addEventListener("abort", onAbort, { once: true });
    let opened: Opened | undefined;
    try {
      opened = await this.#open(abort.signal);
    } finally {
      clearTimeout(timer);
      abort.signal.removeEventListener("abort", onAbort);
    }
    try {
      if (opened === undefined || abort.signal.aborted) {
        this.#counters.failed++;
        opened?.stream.reset();
        try {
          conn.close();
        } catch { /* closed by the abort */ }
        return;
      }
      this.#counters.served++;
      const r = await pipeStream(opened.stream, conn, {
        ...opened,
        readBytes: BULK_READ_BYTES,
        signal: abort.signal,
      });
      this.#counters.bytesToService += r.toStream;
      this.#counters.bytesFromService += r.toConn;
    } finally {
      this.#active.delete(abort);
    }
  }

  // Opens a stream to the provider that accepted the request, retrying refusals until the
  // signal aborts; undefined when the service stays unknown or unreachable.
  async #open(signal: AbortSignal): Promise<Opened | undefined> {
    let wait = FIRST_RETRY_MS;
    let lastError = "";
    while (!signal.aborted) {
      const peer = await this.waitForProvider(signal);
      if (peer === undefined) {
        this.#log.warn(`service '${this.#name}' is not in the ledger: closing the connection`);
        return undefined;
      }
      if (peer === this.#c.node.peerId) {
        this.#log.warn(`service '${this.#name}' is exposed by this node: closing the connection`);
        return undefined;
      }
      try {
        const opened = await this.#request(peer, signal);
        if (opened === "refused") return undefined;
        return opened;
      } catch (e) {
        lastError = errorMessage(e);
        this.#log.debug(`service '${this.#name}': stream to ${peer} failed, retrying`, {
          error: lastError,
        });
      }
      await sleep(wait, signal);
      wait = Math.min(wait * 2, MAX_RETRY_MS);
    }
    this.#log.warn(
      `service '${this.#name}' unreachable in time: closing the connection${
        lastError ? ` (${lastError})` : ""
      }`,
    );
    return undefined;
  }

  async #request(peer: string, signal: AbortSignal): Promise<Opened | "refused"> {
    const stream = await this.#c.node.dialProtocol(peer, [SERVICE_PROTOCOL, GO_SERVICE_PROTOCOL], {
      signal,
    });
    if (stream.protocol === GO_SERVICE_PROTOCOL) return { stream };
    const onAbort = () => stream.reset();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await stream.write(encodeServiceRequest(this.#name));
      const reader = stream[Symbol.asyncIterator]();
      const first = await reader.next();
      if (first.done || first.value.length === 0) {
        stream.reset();
        throw new Error("the provider ended the stream without an answer");
      }
      const status = parseServiceStatus(first.value[0]);
      if (status !== ServiceStatus.ok) {
        stream.reset();
        this.#log.warn(
          `service '${this.#name}': ${peer} answered ${
            status === ServiceStatus.unknownService
              ? "that it does not expose it"
              : "that its backend is unreachable"
          }: closing the connection`,
        );
        return "refused";
      }
      return { stream, reader, toConnFirst: first.value.subarray(1) };
    } catch (e) {
      stream.reset();
      throw e;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }
}

interface Opened {
  stream: NodeStream;
  reader?: AsyncIterator<Uint8Array>;
  toConnFirst?: Uint8Array;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, clampTimerMs(ms));
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Creates a {@link ServiceConnector} (not started).
 *
 * @throws {InputError} `SERVICE_NAME_INVALID`; {@link UsageError} `BAD_ADDRESS`.
 * @example
 * ```ts ignore
 * const connector = createServiceConnector(components, {
 *   name: "web",
 *   listen: "127.0.0.1:0",
 *   announceIntervalMs: 10_000,
 * });
 * ```
 */
export function createServiceConnector(
  components: ServiceComponents,
  options: ServiceConnectorOptions,
): ServiceConnector {
  return new ServiceConnector(components, options);
}
