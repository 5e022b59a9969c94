/** Shares files with the network: announces them and serves both file protocols from disk. */
import type { Job } from "../ledger/ledger.ts";
import { BUCKETS, fileCodec } from "../ledger/buckets.ts";
import type { NodeStream } from "../node/stream.ts";
import type { ServiceComponents } from "../services/components.ts";
import { readHeader } from "../services/header.ts";
import { providerOf, untilUser, USER_GRACE_MS } from "../services/users.ts";
import { EdgeVpnError, errorMessage } from "../util/errors.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { clampTimerMs } from "../util/timer.ts";
import { hashFileInto, Sha256, toHex } from "./hash.ts";
import {
  encodeFileAnswer,
  FILE_PROTOCOL,
  FileStatus,
  GO_FILE_PROTOCOL,
  MAX_FILE_NAME_BYTES,
  parseFileRequest,
} from "./protocol.ts";

/** One shared file: its name in the network and where it is on disk. */
export interface SharedFile {
  name: string;
  path: string;
}

/** Options of {@link createFileSharer}. */
export interface FileSharerOptions {
  /** The files; the first is also served to Go peers on `/edgevpn/file/0.1`. */
  files: readonly SharedFile[];
  /** Go `--ledger-announce-interval`: how often `files` entries are checked and re-added. */
  announceIntervalMs: number;
  /** Longest wait for a receiver's request header (default 10 s). */
  requestTimeoutMs?: number;
  /** A transfer whose receiver takes nothing for this long is reset (default 60 s). */
  stallTimeoutMs?: number;
  /** How long a stream waits for its peer's `users` entry to arrive (default 5 s). */
  userGraceMs?: number;
}

/**
 * Counters of a sharer.
 *
 * @example
 * ```ts ignore
 * sharer.counters().completed;
 * ```
 */
export interface FileSharerCounters {
  /** Transfers started, and those that sent the whole file. */
  started: number;
  completed: number;
  /** Transfers running now. */
  active: number;
  /** Streams reset because the peer has no `users` entry. */
  refused: number;
  /** Requests for a name this node does not share. */
  unknownFile: number;
  /** Requests that did not parse, arrived late, or asked for an offset past the end. */
  badRequest: number;
  /** Transfers reset: the receiver stalled or left, or the file changed while being sent. */
  failed: number;
  bytesSent: number;
}

/** A file's size, modification time and SHA-256, as last read. */
export interface FileDigest {
  size: number;
  mtimeMs: number;
  sha256: Uint8Array;
}

const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
const DEFAULT_STALL_TIMEOUT_MS = 60_000;
/** Bytes read from disk per stream write. */
const READ_BYTES = 256 * 1024;

/**
 * Error of the file features with a stable `code`: `PATH_NOT_FOUND`, `PATH_IS_DIRECTORY`,
 * `PATH_UNREADABLE`, `TARGET_EXISTS`, `TARGET_DIRECTORY_MISSING`, `HASH_MISMATCH`,
 * `FILE_KEEPS_CHANGING`, `FILE_UNKNOWN`, `FILE_REFUSED`.
 *
 * @example
 * ```ts ignore
 * throw new FileError("PATH_IS_DIRECTORY", "Cannot share /tmp: it is a directory");
 * ```
 */
export class FileError extends EdgeVpnError {}

/**
 * Checks that `path` is a regular file this process can read.
 *
 * @throws {FileError} `PATH_NOT_FOUND`, `PATH_IS_DIRECTORY`, `PATH_UNREADABLE`.
 * @example
 * ```ts ignore
 * await checkReadableFile("/etc/hostname");
 * ```
 */
export async function checkReadableFile(path: string): Promise<Deno.FileInfo> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new FileError("PATH_NOT_FOUND", `Cannot read ${path}: no such file`);
    }
    throw new FileError("PATH_UNREADABLE", `Cannot read ${path}: ${errorMessage(e)}`);
  }
  if (info.isDirectory) {
    throw new FileError("PATH_IS_DIRECTORY", `Cannot read ${path}: it is a directory`);
  }
  if (!info.isFile) {
    throw new FileError("PATH_UNREADABLE", `Cannot read ${path}: not a regular file`);
  }
  try {
    (await Deno.open(path, { read: true })).close();
  } catch (e) {
    throw new FileError("PATH_UNREADABLE", `Cannot read ${path}: ${errorMessage(e)}`);
  }
  return info;
}

/**
 * Serves files to the members of the network, as Go's `file-send` and beyond: any number
 * of files per node, content streamed from disk, our protocol carrying the size and SHA-256
 * and resuming at an offset; the first file is also served on Go's `/edgevpn/file/0.1`. Only
 * peers with a `users` entry get through (Go's rule).
 *
 * @example
 * ```ts ignore
 * const sharer = createFileSharer(serviceComponentsOf(mesh), {
 *   files: [{ name: "backup", path: "/srv/backup.tar" }],
 *   announceIntervalMs: 10_000,
 * });
 * await sharer.start();
 * await sharer.stop();
 * ```
 */
export class FileSharer {
  readonly #c: ServiceComponents;
  readonly #log: Logger;
  readonly #files = new Map<string, string>();
  readonly #first: string;
  readonly #announceMs: number;
  readonly #requestTimeoutMs: number;
  readonly #stallTimeoutMs: number;
  readonly #userGraceMs: number;
  readonly #digests = new Map<string, Promise<FileDigest>>();
  readonly #active = new Set<NodeStream>();
  readonly #counters: FileSharerCounters = {
    started: 0,
    completed: 0,
    active: 0,
    refused: 0,
    unknownFile: 0,
    badRequest: 0,
    failed: 0,
    bytesSent: 0,
  };
  #job: Job | undefined;
  #started = false;

  /** Use {@link createFileSharer}. */
  constructor(components: ServiceComponents, options: FileSharerOptions) {
    this.#c = components;
    this.#log = (components.logger ?? silentLogger).child("files");
    if (options.files.length === 0) {
      throw new FileError("FILE_NONE", "Cannot share files: none given");
    }
    for (const f of options.files) {
      const size = new TextEncoder().encode(f.name).length;
      if (size === 0 || size > MAX_FILE_NAME_BYTES) {
        throw new FileError(
          "FILE_NAME_INVALID",
          `File name must be 1 to ${MAX_FILE_NAME_BYTES} bytes of UTF-8, got ${
            JSON.stringify(f.name)
          }`,
        );
      }
      if (this.#files.has(f.name)) {
        throw new FileError("FILE_NAME_TWICE", `File ${JSON.stringify(f.name)} given twice`);
      }
      this.#files.set(f.name, f.path);
    }
    this.#first = options.files[0].name;
    this.#announceMs = options.announceIntervalMs;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#stallTimeoutMs = options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    this.#userGraceMs = options.userGraceMs ?? USER_GRACE_MS;
  }

  /**
   * Checks and hashes every file, serves both protocols and starts announcing the `files`
   * entries.
   *
   * @throws {FileError} `PATH_NOT_FOUND`, `PATH_IS_DIRECTORY`, `PATH_UNREADABLE`.
   */
  async start(): Promise<void> {
    if (this.#started) return;
    for (const [name, path] of this.#files) {
      const d = await this.digest(name);
      this.#log.info(
        `Serving '${path}' as '${name}' (${d.size} bytes, SHA-256 ${toHex(d.sha256)})`,
      );
    }
    this.#started = true;
    const admitted = (serve: (s: NodeStream) => Promise<void>) => async (s: NodeStream) => {
      if (await untilUser(this.#c.ledger, this.#c.isUser, s.remotePeer, this.#userGraceMs)) {
        return await serve(s);
      }
      this.#counters.refused++;
      this.#log.debug("reset file stream: the peer has no users entry", { peer: s.remotePeer });
      s.reset();
    };
    // Admission is Go's users rule (below the connection gater, which takes only members).
    await this.#c.node.handle(FILE_PROTOCOL, admitted((s) => this.#serveNamed(s)), {
      membersOnly: false,
    });
    await this.#c.node.handle(GO_FILE_PROTOCOL, admitted((s) => this.#serveGo(s)), {
      membersOnly: false,
    });
    const self = this.#c.node.peerId;
    this.#job = this.#c.ledger.announce(this.#announceMs, async () => {
      const missing: Record<string, unknown> = {};
      for (const name of this.#files.keys()) {
        if (providerOf(this.#c.ledger, BUCKETS.files, name) !== self) {
          missing[name] = fileCodec.value({ PeerID: self, Name: name });
        }
      }
      if (Object.keys(missing).length > 0) await this.#c.ledger.add(BUCKETS.files, missing);
    });
  }

  /** Stops serving: running transfers are reset, announcing stops. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    this.#job?.stop();
    this.#job = undefined;
    for (const s of this.#active) s.reset();
    await Promise.allSettled([
      this.#c.node.unhandle(FILE_PROTOCOL),
      this.#c.node.unhandle(GO_FILE_PROTOCOL),
    ]);
  }

  /** A snapshot of the counters. */
  counters(): FileSharerCounters {
    return { ...this.#counters, active: this.#active.size };
  }

  /**
   * The size and SHA-256 of the shared file `name`, hashed again only when its size or
   * modification time changed.
   *
   * @throws {FileError} as {@link checkReadableFile}; `FILE_UNKNOWN`.
   */
  async digest(name: string): Promise<FileDigest> {
    const path = this.#files.get(name);
    if (path === undefined) {
      throw new FileError("FILE_UNKNOWN", `No shared file named ${JSON.stringify(name)}`);
    }
    const info = await checkReadableFile(path);
    const mtimeMs = info.mtime?.getTime() ?? 0;
    const cached = this.#digests.get(name);
    if (cached) {
      const d = await cached.catch(() => undefined);
      if (d && d.size === info.size && d.mtimeMs === mtimeMs) return d;
    }
    const fresh = (async () => {
      const hash = await Sha256.create();
      const size = await hashFileInto(hash, path);
      return { size, mtimeMs, sha256: hash.digest() };
    })();
    this.#digests.set(name, fresh);
    return await fresh;
  }

  async #serveNamed(stream: NodeStream): Promise<void> {
    const reader = stream[Symbol.asyncIterator]();
    let request;
    try {
      request = (await readHeader(
        stream,
        reader,
        parseFileRequest,
        this.#requestTimeoutMs,
        2 + MAX_FILE_NAME_BYTES + 8,
      )).value;
    } catch (e) {
      this.#counters.badRequest++;
      this.#log.debug("bad file request", { peer: stream.remotePeer, error: errorMessage(e) });
      stream.reset();
      return;
    }
    const path = this.#files.get(request.name);
    if (path === undefined) {
      this.#counters.unknownFile++;
      this.#log.info(`(file ${request.name}) unknown here, asked by ${stream.remotePeer}`);
      return await this.#refuse(stream, FileStatus.unknownFile);
    }
    let digest: FileDigest;
    try {
      digest = await this.digest(request.name);
    } catch (e) {
      this.#counters.failed++;
      this.#log.warn(`(file ${request.name}) ${errorMessage(e)}`);
      return await this.#refuse(stream, FileStatus.unreadable);
    }
    if (request.offset > digest.size) {
      this.#counters.badRequest++;
      return await this.#refuse(stream, FileStatus.badOffset);
    }
    try {
      await stream.write(encodeFileAnswer({ status: 0, size: digest.size, sha256: digest.sha256 }));
    } catch {
      stream.reset();
      return;
    }
    await this.#send(request.name, path, stream, request.offset, digest);
  }

  async #serveGo(stream: NodeStream): Promise<void> {
    const name = this.#first;
    await this.#send(name, this.#files.get(name)!, stream, 0, undefined);
  }

  async #refuse(stream: NodeStream, status: number): Promise<void> {
    try {
      await stream.write(Uint8Array.of(status));
      await stream.close();
    } catch {
      stream.reset();
    }
  }

  // Streams the file from `offset`: up to the digest's size, or to its end for Go's
  // protocol. A file that changed meanwhile ends in a reset, never in a clean end.
  async #send(
    name: string,
    path: string,
    stream: NodeStream,
    offset: number,
    digest: FileDigest | undefined,
  ): Promise<void> {
    this.#counters.started++;
    this.#active.add(stream);
    this.#log.info(
      `(file ${name}) Received connection from ${stream.remotePeer}${
        offset > 0 ? `, resuming at byte ${offset}` : ""
      }`,
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        this.#log.warn(`(file ${name}) ${stream.remotePeer} stalled: resetting the transfer`);
        stream.reset();
      }, clampTimerMs(this.#stallTimeoutMs));
    };
    let file: Deno.FsFile | undefined;
    try {
      arm();
      file = await Deno.open(path, { read: true });
      if (offset > 0) await file.seek(offset, Deno.SeekMode.Start);
      let left = digest === undefined ? Number.MAX_SAFE_INTEGER : digest.size - offset;
      while (left > 0) {
        const buffer = new Uint8Array(Math.min(READ_BYTES, left));
        const n = await file.read(buffer);
        if (n === null) break;
        await stream.write(n === buffer.length ? buffer : buffer.subarray(0, n));
        arm();
        left -= n;
        this.#counters.bytesSent += n;
      }
      if (digest !== undefined) {
        const now = await Deno.stat(path);
        if (
          left > 0 || now.size !== digest.size || (now.mtime?.getTime() ?? 0) !== digest.mtimeMs
        ) {
          throw new FileError("FILE_CHANGED", `${path} changed while being sent`);
        }
      }
      await stream.close();
      this.#counters.completed++;
      this.#log.info(`(file ${name}) Done handling ${stream.remotePeer}`);
    } catch (e) {
      this.#counters.failed++;
      this.#log.info(`(file ${name}) transfer to ${stream.remotePeer} failed: ${errorMessage(e)}`);
      stream.reset();
    } finally {
      clearTimeout(timer);
      file?.close();
      this.#active.delete(stream);
    }
  }
}

/**
 * Creates a {@link FileSharer} (not started).
 *
 * @throws {FileError} `FILE_NAME_INVALID`, `FILE_NAME_TWICE`.
 * @example
 * ```ts ignore
 * const sharer = createFileSharer(components, {
 *   files: [{ name: "iso", path: "./debian.iso" }],
 *   announceIntervalMs: 10_000,
 * });
 * ```
 */
export function createFileSharer(
  components: ServiceComponents,
  options: FileSharerOptions,
): FileSharer {
  return new FileSharer(components, options);
}
