/** Exposes local TCP services to the network: announces them and serves both service protocols. */
import type { Job } from "../ledger/ledger.ts";
import { BUCKETS, serviceCodec } from "../ledger/buckets.ts";
import type { NodeStream } from "../node/stream.ts";
import { EdgeVpnError, errorMessage, InputError } from "../util/errors.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { clampTimerMs } from "../util/timer.ts";
import { formatTcpAddress, parseTcpAddress, type TcpAddress } from "./address.ts";
import type { ServiceComponents } from "./components.ts";
import { readHeader } from "./header.ts";
import { BULK_READ_BYTES, pipeStream } from "./pipe.ts";
import {
  GO_SERVICE_PROTOCOL,
  MAX_SERVICE_NAME_BYTES,
  parseServiceRequest,
  SERVICE_PROTOCOL,
  ServiceStatus,
} from "./protocol.ts";
import { providerOf, untilUser, USER_GRACE_MS } from "./users.ts";

/** One exposed service: its name in the network and the backend it forwards to. */
export interface ExposedService {
  name: string;
  /** `host:port` of the backend (Go's `--address` of `service-add`). */
  address: string;
}

/** Options of {@link createServiceExposer}. */
export interface ServiceExposerOptions {
  /** The services; the first is also served to Go peers on `/edgevpn/service/0.1`. */
  services: readonly ExposedService[];
  /** Go `--ledger-announce-interval`: how often `services` entries are checked and re-added. */
  announceIntervalMs: number;
  /** Longest wait for the backend to accept a connection (default 15 s, Go's `--timeout`). */
  connectTimeoutMs?: number;
  /** Longest wait for a dialer's request header (default 10 s). */
  requestTimeoutMs?: number;
  /** How long a stream waits for its peer's `users` entry to arrive (default 5 s). */
  userGraceMs?: number;
}

/**
 * Counters of an exposer.
 *
 * @example
 * ```ts ignore
 * exposer.counters().served; // connections piped to a backend so far
 * ```
 */
export interface ServiceExposerCounters {
  /** Streams piped to a backend. */
  served: number;
  /** Streams open right now. */
  active: number;
  /** Streams reset because the peer has no `users` entry. */
  refused: number;
  /** Requests for a name this node does not expose. */
  unknownService: number;
  /** Backends that refused or did not answer in time. */
  backendFailed: number;
  /** Request headers that did not parse or did not arrive in time. */
  badRequest: number;
  /** Bytes from peers to backends, and back. */
  bytesToBackend: number;
  bytesFromBackend: number;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/**
 * Serves local TCP services to the members of the network, as Go's `service-add` does and
 * beyond: any number of services per node on our named protocol, the first one also on Go's
 * `/edgevpn/service/0.1`. Only peers with a `users` entry get through (Go's rule).
 *
 * @example
 * ```ts ignore
 * const exposer = createServiceExposer(serviceComponentsOf(mesh), {
 *   services: [{ name: "ssh", address: "127.0.0.1:22" }],
 *   announceIntervalMs: 10_000,
 * });
 * await exposer.start();
 * await exposer.stop();
 * ```
 */
export class ServiceExposer {
  readonly #c: ServiceComponents;
  readonly #log: Logger;
  readonly #services = new Map<string, TcpAddress>();
  readonly #first: string;
  readonly #announceMs: number;
  readonly #connectTimeoutMs: number;
  readonly #requestTimeoutMs: number;
  readonly #userGraceMs: number;
  readonly #active = new Set<AbortController>();
  readonly #counters: ServiceExposerCounters = {
    served: 0,
    active: 0,
    refused: 0,
    unknownService: 0,
    backendFailed: 0,
    badRequest: 0,
    bytesToBackend: 0,
    bytesFromBackend: 0,
  };
  #job: Job | undefined;
  #started = false;

  /** Use {@link createServiceExposer}. */
  constructor(components: ServiceComponents, options: ServiceExposerOptions) {
    this.#c = components;
    this.#log = (components.logger ?? silentLogger).child("services");
    if (options.services.length === 0) {
      throw new EdgeVpnError("SERVICE_NONE", "Cannot expose services: none given");
    }
    for (const s of options.services) {
      const size = new TextEncoder().encode(s.name).length;
      if (size === 0 || size > MAX_SERVICE_NAME_BYTES) {
        throw new InputError(
          "SERVICE_NAME_INVALID",
          `Service name must be 1 to ${MAX_SERVICE_NAME_BYTES} bytes of UTF-8, got ${
            JSON.stringify(s.name)
          }`,
        );
      }
      if (this.#services.has(s.name)) {
        throw new InputError("SERVICE_NAME_TWICE", `Service ${JSON.stringify(s.name)} given twice`);
      }
      this.#services.set(s.name, parseTcpAddress(s.address, `service ${s.name}`));
    }
    this.#first = options.services[0].name;
    this.#announceMs = options.announceIntervalMs;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#userGraceMs = options.userGraceMs ?? USER_GRACE_MS;
  }

  /** Names and backends of the exposed services. */
  get services(): ExposedService[] {
    return [...this.#services].map(([name, a]) => ({ name, address: formatTcpAddress(a) }));
  }

  /** Serves both protocols and starts announcing the `services` entries. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const admitted = (serve: (s: NodeStream) => Promise<void>) => async (s: NodeStream) => {
      if (await untilUser(this.#c.ledger, this.#c.isUser, s.remotePeer, this.#userGraceMs)) {
        return await serve(s);
      }
      this.#counters.refused++;
      this.#log.debug("reset service stream: the peer has no users entry", {
        peer: s.remotePeer,
      });
      s.reset();
    };
    // Admission is Go's users rule (below the connection gater, which takes only members).
    await this.#c.node.handle(SERVICE_PROTOCOL, admitted((s) => this.#serveNamed(s)), {
      membersOnly: false,
    });
    await this.#c.node.handle(GO_SERVICE_PROTOCOL, admitted((s) => this.#serveGo(s)), {
      membersOnly: false,
    });
    const self = this.#c.node.peerId;
    this.#job = this.#c.ledger.announce(this.#announceMs, async () => {
      const missing: Record<string, unknown> = {};
      for (const name of this.#services.keys()) {
        if (providerOf(this.#c.ledger, BUCKETS.services, name) !== self) {
          missing[name] = serviceCodec.value({ PeerID: self, Name: name });
        }
      }
      if (Object.keys(missing).length > 0) await this.#c.ledger.add(BUCKETS.services, missing);
    });
    for (const [name, address] of this.#services) {
      this.#log.info(`Exposing service '${name}' (${formatTcpAddress(address)})`);
    }
  }

  /** Stops serving: open connections are reset, announcing stops. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    this.#job?.stop();
    this.#job = undefined;
    for (const a of this.#active) a.abort();
    await Promise.allSettled([
      this.#c.node.unhandle(SERVICE_PROTOCOL),
      this.#c.node.unhandle(GO_SERVICE_PROTOCOL),
    ]);
  }

  /** A snapshot of the counters. */
  counters(): ServiceExposerCounters {
    return { ...this.#counters, active: this.#active.size };
  }

  async #serveNamed(stream: NodeStream): Promise<void> {
    const reader = stream[Symbol.asyncIterator]();
    let request;
    try {
      const { value, rest } = await readHeader(
        stream,
        reader,
        parseServiceRequest,
        this.#requestTimeoutMs,
        2 + MAX_SERVICE_NAME_BYTES,
      );
      request = { name: value.name, rest };
    } catch (e) {
      this.#counters.badRequest++;
      this.#log.debug("bad service request", { peer: stream.remotePeer, error: errorMessage(e) });
      stream.reset();
      return;
    }
    const address = this.#services.get(request.name);
    if (address === undefined) {
      this.#counters.unknownService++;
      this.#log.info(`(service ${request.name}) unknown here, asked by ${stream.remotePeer}`);
      await this.#answer(stream, ServiceStatus.unknownService);
      return;
    }
    const conn = await this.#connect(request.name, address, stream.remotePeer);
    if (conn === undefined) {
      await this.#answer(stream, ServiceStatus.backendUnreachable);
      return;
    }
    try {
      await stream.write(Uint8Array.of(ServiceStatus.ok));
    } catch {
      conn.close();
      stream.reset();
      return;
    }
    await this.#pipe(request.name, stream, conn, reader, request.rest);
  }

  async #serveGo(stream: NodeStream): Promise<void> {
    const name = this.#first;
    const conn = await this.#connect(name, this.#services.get(name)!, stream.remotePeer);
    if (conn === undefined) {
      stream.reset();
      return;
    }
    await this.#pipe(name, stream, conn);
  }

  async #pipe(
    name: string,
    stream: NodeStream,
    conn: Deno.TcpConn,
    reader?: AsyncIterator<Uint8Array>,
    head?: Uint8Array,
  ): Promise<void> {
    const abort = new AbortController();
    this.#active.add(abort);
    this.#counters.served++;
    this.#log.info(`(service ${name}) Received connection from ${stream.remotePeer}`);
    try {
      const r = await pipeStream(stream, conn, {
        reader,
        toConnFirst: head,
        readBytes: BULK_READ_BYTES,
        signal: abort.signal,
      });
      this.#counters.bytesToBackend += r.toConn;
      this.#counters.bytesFromBackend += r.toStream;
      this.#log.debug(`(service ${name}) done with ${stream.remotePeer}`, { ...r });
    } finally {
      this.#active.delete(abort);
    }
  }

  // Ends the stream after a status byte that refuses the request.
  async #answer(stream: NodeStream, status: number): Promise<void> {
    try {
      await stream.write(Uint8Array.of(status));
      await stream.close();
    } catch {
      stream.reset();
    }
  }

  async #connect(name: string, address: TcpAddress, peer: string) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), clampTimerMs(this.#connectTimeoutMs));
    try {
      return await Deno.connect({ ...address, transport: "tcp", signal: controller.signal });
    } catch (e) {
      this.#counters.backendFailed++;
      this.#log.warn(
        `(service ${name}) cannot connect to ${formatTcpAddress(address)} for ${peer}: ${
          controller.signal.aborted ? "timed out" : errorMessage(e)
        }`,
      );
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Creates a {@link ServiceExposer} (not started).
 *
 * @throws {InputError} `SERVICE_NAME_INVALID`, `SERVICE_NAME_TWICE`; {@link UsageError}
 * `BAD_ADDRESS` for a backend address that does not parse.
 * @example
 * ```ts ignore
 * const exposer = createServiceExposer(components, {
 *   services: [{ name: "web", address: "127.0.0.1:8080" }],
 *   announceIntervalMs: 10_000,
 * });
 * ```
 */
export function createServiceExposer(
  components: ServiceComponents,
  options: ServiceExposerOptions,
): ServiceExposer {
  return new ServiceExposer(components, options);
}
