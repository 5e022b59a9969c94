/** Receives a shared file to disk: verified, resumable, never half-written at its target. */
import { basename, dirname, join } from "node:path";
import { BUCKETS } from "../ledger/buckets.ts";
import type { NodeStream } from "../node/stream.ts";
import type { ServiceComponents } from "../services/components.ts";
import { readHeader } from "../services/header.ts";
import { announceUser, providerOf } from "../services/users.ts";
import { syncDirectory, writeFileAtomic } from "../util/atomic_file.ts";
import { errorMessage } from "../util/errors.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { clampTimerMs } from "../util/timer.ts";
import { hashFileInto, Sha256, toHex } from "./hash.ts";
import {
  encodeFileRequest,
  FILE_ANSWER_BYTES,
  FILE_PROTOCOL,
  FileStatus,
  GO_FILE_PROTOCOL,
  parseFileAnswer,
} from "./protocol.ts";
import { FileError } from "./share.ts";

/** Options of {@link receiveFile}. */
export interface ReceiveFileOptions {
  /** The file's name in the network. */
  name: string;
  /** Where to save it. */
  path: string;
  /** Replace an existing file at `path` (default false: refuse). */
  overwrite?: boolean;
  /** Go `--ledger-announce-interval`: how often our `users` entry is checked and re-added. */
  announceIntervalMs: number;
  /** Longest wait to open a stream to the sender (default 15 s, Go's `--timeout`). */
  timeoutMs?: number;
  /** A transfer that receives nothing for this long is reset and resumed (default 60 s). */
  stallTimeoutMs?: number;
  /** Wait between attempts after a failure (default 1 s). */
  retryMs?: number;
  /** Give up after the name stayed unknown this long (default: wait forever, as Go). */
  giveUpAfterMs?: number;
  /** Told every 5 s while the name is not in the ledger, with how long it has waited. */
  onWaiting?: (waitedMs: number) => void;
  /** Told as bytes arrive. */
  onProgress?: (progress: FileProgress) => void;
  /** Aborting stops the transfer (a partial file stays for a later resume). */
  signal?: AbortSignal;
}

/** Where a transfer stands. */
export interface FileProgress {
  /** Bytes on disk, resumed ones included. */
  received: number;
  /** The file's size when the sender told it (our protocol), else undefined. */
  total: number | undefined;
  /** Bytes that were already on disk when this attempt started. */
  resumedFrom: number;
}

/** A completed transfer. */
export interface ReceivedFile {
  path: string;
  size: number;
  /** SHA-256 of the content, hex. */
  sha256: string;
  /** True when the sender announced the hash and the content matched it (our protocol). */
  verified: boolean;
  /** Bytes reused from an earlier, interrupted transfer. */
  resumedFrom: number;
  /** The peer that sent it. */
  from: string;
  /** Milliseconds the successful attempt took, from opening its stream to the rename. */
  elapsedMs: number;
}

const DEFAULT_TIMEOUT_MS = 15_000;
const DEFAULT_STALL_TIMEOUT_MS = 60_000;
const DEFAULT_RETRY_MS = 1_000;
const WAITING_MESSAGE_MS = 5_000;
/** Times the sender's file may change under a transfer before the receiver gives up. */
const MAX_RESTARTS = 3;
/** Codes after which trying again cannot help. */
const FINAL = new Set([
  "HASH_MISMATCH",
  "TARGET_EXISTS",
  "PATH_IS_DIRECTORY",
  "TARGET_DIRECTORY_MISSING",
  "PATH_UNWRITABLE",
  "FILE_KEEPS_CHANGING",
  "FILE_UNKNOWN",
]);

/** What the receiver keeps beside a partial file to resume it. */
interface PartMeta {
  name: string;
  size: number;
  sha256: string;
}

/**
 * Temporary paths of a transfer to `path`: the partial content and its description, hidden
 * beside the target.
 *
 * @example
 * ```ts
 * partPaths("/srv/a.iso"); // { part: "/srv/.a.iso.edgevpn-part", meta: "/srv/.a.iso.edgevpn-part.json" }
 * ```
 */
export function partPaths(path: string): { part: string; meta: string } {
  const part = join(dirname(path), `.${basename(path)}.edgevpn-part`);
  return { part, meta: `${part}.json` };
}

/**
 * Waits for `name` in the `files` bucket, downloads it from its sender and moves it to
 * `path` once complete. From our senders the size and SHA-256 come first: the content is
 * verified, and a transfer cut short resumes where it stopped (also in a later run, from the
 * partial file kept beside the target); a mismatch removes the partial file and fails. From
 * Go senders (`/edgevpn/file/0.1`) the content is taken as it comes. Interrupted transfers
 * are retried until `signal` aborts.
 *
 * @throws {FileError} `TARGET_EXISTS`, `PATH_IS_DIRECTORY`, `TARGET_DIRECTORY_MISSING`,
 * `PATH_UNWRITABLE` before anything is received; `HASH_MISMATCH`, `FILE_KEEPS_CHANGING`;
 * `FILE_UNKNOWN` after `giveUpAfterMs`; `ABORTED` when `signal` aborts.
 * @example
 * ```ts ignore
 * const got = await receiveFile(serviceComponentsOf(mesh), {
 *   name: "backup",
 *   path: "/srv/backup.tar",
 *   announceIntervalMs: 10_000,
 * });
 * console.log(got.sha256);
 * ```
 */
export async function receiveFile(
  components: ServiceComponents,
  options: ReceiveFileOptions,
): Promise<ReceivedFile> {
  await checkTarget(options.path, options.overwrite ?? false);
  const receiver = new Receiver(components, options);
  const job = announceUser(
    components.ledger,
    components.node.peerId,
    options.announceIntervalMs,
    () => components.clock?.now() ?? Date.now(),
  );
  try {
    return await receiver.run();
  } finally {
    job.stop();
  }
}

/**
 * Checks that a file can be received at `path`.
 *
 * @throws {FileError} `TARGET_EXISTS` (unless `overwrite`), `PATH_IS_DIRECTORY`,
 * `TARGET_DIRECTORY_MISSING`, `PATH_UNWRITABLE`.
 * @example
 * ```ts ignore
 * await checkTarget("/tmp/new-file", false);
 * ```
 */
export async function checkTarget(path: string, overwrite: boolean): Promise<void> {
  const existing = await Deno.stat(path).catch(() => undefined);
  if (existing?.isDirectory) {
    throw new FileError("PATH_IS_DIRECTORY", `Cannot write ${path}: it is a directory`);
  }
  if (existing && !overwrite) {
    throw new FileError(
      "TARGET_EXISTS",
      `Cannot write ${path}: the file exists (--overwrite replaces it)`,
    );
  }
  const dir = dirname(path);
  const parent = await Deno.stat(dir).catch(() => undefined);
  if (!parent?.isDirectory) {
    throw new FileError(
      "TARGET_DIRECTORY_MISSING",
      `Cannot write ${path}: no directory ${dir}`,
    );
  }
  const { part } = partPaths(path);
  const kept = await Deno.stat(part).then(() => true, () => false);
  try {
    (await Deno.open(part, { write: true, create: true })).close();
  } catch (e) {
    throw new FileError("PATH_UNWRITABLE", `Cannot write in ${dir}: ${errorMessage(e)}`);
  }
  if (!kept) await Deno.remove(part).catch(() => {});
}

class Receiver {
  readonly #c: ServiceComponents;
  readonly #o: ReceiveFileOptions;
  readonly #log: Logger;
  readonly #part: string;
  readonly #meta: string;
  readonly #signal: AbortSignal;

  constructor(components: ServiceComponents, options: ReceiveFileOptions) {
    this.#c = components;
    this.#o = options;
    this.#log = (components.logger ?? silentLogger).child("files");
    ({ part: this.#part, meta: this.#meta } = partPaths(options.path));
    this.#signal = options.signal ?? new AbortController().signal;
  }

  async run(): Promise<ReceivedFile> {
    let restarts = 0;
    while (true) {
      this.#assertRunning();
      const peer = await this.#provider();
      let stream: NodeStream;
      const attempt = Date.now();
      try {
        stream = await this.#c.node.dialProtocol(peer, [FILE_PROTOCOL, GO_FILE_PROTOCOL], {
          signal: this.#signal,
          timeoutMs: this.#o.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        });
      } catch (e) {
        this.#assertRunning();
        this.#log.info(
          `file '${this.#o.name}': cannot reach ${peer}: ${errorMessage(e)}; retrying`,
        );
        await this.#pause();
        continue;
      }
      const onAbort = () => stream.reset();
      this.#signal.addEventListener("abort", onAbort, { once: true });
      try {
        const result = stream.protocol === GO_FILE_PROTOCOL
          ? await this.#receiveGo(stream)
          : await this.#receiveOurs(stream);
        if (result !== "restart") return { ...result, elapsedMs: Date.now() - attempt };
        if (++restarts > MAX_RESTARTS) {
          throw new FileError(
            "FILE_KEEPS_CHANGING",
            `File ${
              JSON.stringify(this.#o.name)
            } changed on the sender ${restarts} times during the transfer`,
          );
        }
      } catch (e) {
        stream.reset();
        this.#assertRunning();
        if (e instanceof FileError && FINAL.has(e.code)) throw e;
        this.#log.info(
          `file '${this.#o.name}': transfer from ${peer} stopped (${
            errorMessage(e)
          }); trying again`,
        );
        await this.#pause();
      } finally {
        this.#signal.removeEventListener("abort", onAbort);
      }
    }
  }

  #assertRunning(): void {
    if (this.#signal.aborted) {
      throw new FileError("ABORTED", `Receiving ${JSON.stringify(this.#o.name)} was stopped`);
    }
  }

  // The sender according to the ledger, once there; says so every 5 s while waiting.
  async #provider(): Promise<string> {
    const started = Date.now();
    let told = started;
    const lookup = () => providerOf(this.#c.ledger, BUCKETS.files, this.#o.name);
    while (true) {
      const peer = lookup();
      if (peer !== undefined && peer !== this.#c.node.peerId) return peer;
      this.#assertRunning();
      const waited = Date.now() - started;
      const giveUp = this.#o.giveUpAfterMs;
      if (giveUp !== undefined && waited >= giveUp) {
        throw new FileError(
          "FILE_UNKNOWN",
          `File ${JSON.stringify(this.#o.name)} not found in the network within ${
            Math.round(waited / 1000)
          }s (--timeout)`,
        );
      }
      const step = Math.min(WAITING_MESSAGE_MS, giveUp === undefined ? Infinity : giveUp - waited);
      await this.#until(step, () => {
        const p = lookup();
        return p !== undefined && p !== this.#c.node.peerId;
      });
      if (lookup() === undefined && Date.now() - told >= WAITING_MESSAGE_MS - 10) {
        told = Date.now();
        this.#o.onWaiting?.(told - started);
      }
    }
  }

  // Waits up to `ms`, or until the ledger changes so that `done()` holds, or the signal.
  #until(ms: number, done: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.#c.ledger.removeEventListener("change", check);
        this.#signal.removeEventListener("abort", finish);
        resolve();
      };
      const check = () => {
        if (done()) finish();
      };
      const timer = setTimeout(finish, clampTimerMs(ms));
      this.#c.ledger.addEventListener("change", check);
      this.#signal.addEventListener("abort", finish, { once: true });
    });
  }

  #pause(): Promise<void> {
    return this.#until(this.#o.retryMs ?? DEFAULT_RETRY_MS, () => false);
  }

  async #readMeta(): Promise<PartMeta | undefined> {
    try {
      const text = await Deno.readTextFile(this.#meta);
      if (text.length > 4096) return undefined;
      const v = JSON.parse(text);
      if (
        typeof v?.name === "string" && Number.isSafeInteger(v.size) && v.size >= 0 &&
        typeof v.sha256 === "string" && /^[0-9a-f]{64}$/.test(v.sha256)
      ) return { name: v.name, size: v.size, sha256: v.sha256 };
    } catch { /* missing or unreadable: start over */ }
    return undefined;
  }

  async #discardPart(): Promise<void> {
    await Deno.remove(this.#meta).catch(() => {});
    await Deno.remove(this.#part).catch(() => {});
  }

  async #receiveOurs(stream: NodeStream): Promise<Omit<ReceivedFile, "elapsedMs"> | "restart"> {
    const hash = await Sha256.create();
    let meta = await this.#readMeta();
    let offset = 0;
    if (meta?.name === this.#o.name) {
      const size = (await Deno.stat(this.#part).catch(() => undefined))?.size ?? 0;
      if (size <= meta.size) offset = await hashFileInto(hash, this.#part, size, this.#signal);
    } else {
      meta = undefined;
    }
    await stream.write(encodeFileRequest({ name: this.#o.name, offset }));
    await stream.close();
    const reader = stream[Symbol.asyncIterator]();
    const { value: { answer }, rest } = await readHeader(
      stream,
      reader,
      parseFileAnswer,
      this.#o.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      FILE_ANSWER_BYTES,
    );
    if (answer.status === FileStatus.badOffset) {
      this.#log.info(`file '${this.#o.name}': the sender's file is shorter now: starting over`);
      await this.#discardPart();
      return "restart";
    }
    if (answer.status !== FileStatus.ok) {
      throw new FileError(
        "FILE_REFUSED",
        `${stream.remotePeer} ${
          answer.status === FileStatus.unknownFile
            ? "does not share it (yet)"
            : "cannot read its file"
        }`,
      );
    }
    const sha256 = toHex(answer.sha256);
    if (meta !== undefined && (meta.size !== answer.size || meta.sha256 !== sha256)) {
      if (offset > 0) {
        this.#log.info(`file '${this.#o.name}': it changed on the sender: starting over`);
        await this.#discardPart();
        return "restart";
      }
      meta = undefined;
    }
    if (meta === undefined) {
      const text = JSON.stringify({ name: this.#o.name, size: answer.size, sha256 });
      await writeFileAtomic(this.#meta, new TextEncoder().encode(text), { mode: 0o600 });
    }
    if (offset > 0) {
      this.#log.info(`file '${this.#o.name}': resuming at byte ${offset} of ${answer.size}`);
    }
    const total = await this.#write(stream, reader, rest, offset, answer.size, hash);
    if (total !== answer.size) {
      throw new Error(`the stream ended after ${total} of ${answer.size} bytes`);
    }
    const got = toHex(hash.digest());
    if (got !== sha256) {
      await this.#discardPart();
      throw new FileError(
        "HASH_MISMATCH",
        `File ${
          JSON.stringify(this.#o.name)
        } arrived with SHA-256 ${got}, the sender announced ${sha256} (it changed while being sent?): nothing saved`,
      );
    }
    await this.#finish();
    return {
      path: this.#o.path,
      size: total,
      sha256,
      verified: true,
      resumedFrom: offset,
      from: stream.remotePeer,
    };
  }

  async #receiveGo(stream: NodeStream): Promise<Omit<ReceivedFile, "elapsedMs">> {
    await Deno.remove(this.#meta).catch(() => {});
    const hash = await Sha256.create();
    const reader = stream[Symbol.asyncIterator]();
    const total = await this.#write(stream, reader, new Uint8Array(0), 0, undefined, hash);
    await this.#finish();
    return {
      path: this.#o.path,
      size: total,
      sha256: toHex(hash.digest()),
      verified: false,
      resumedFrom: 0,
      from: stream.remotePeer,
    };
  }

  // Appends the stream's bytes to the partial file from `offset`; returns its final size.
  // Each chunk is hashed and written as it arrives (push mode, synchronous writes to the page
  // cache): nothing queues in memory, and the peer's window opens only as the disk takes the
  // bytes.
  async #write(
    stream: NodeStream,
    reader: AsyncIterator<Uint8Array>,
    head: Uint8Array,
    offset: number,
    size: number | undefined,
    hash: Sha256,
  ): Promise<number> {
    const stallMs = this.#o.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    let last = Date.now();
    let stalled = false;
    const watchdog = setInterval(() => {
      if (Date.now() - last < stallMs) return;
      stalled = true;
      stream.reset();
    }, clampTimerMs(Math.min(1_000, stallMs / 4)));
    using file = await Deno.open(this.#part, { write: true, create: true });
    await file.truncate(offset);
    await file.seek(offset, Deno.SeekMode.Start);
    let received = offset;
    const put = (bytes: Uint8Array) => {
      last = Date.now();
      if (size !== undefined && received + bytes.length > size) {
        throw new Error(`the sender sent more than the ${size} bytes it announced`);
      }
      let at = 0;
      while (at < bytes.length) at += file.writeSync(bytes.subarray(at));
      hash.update(bytes);
      received += bytes.length;
      this.#o.onProgress?.({ received, total: size, resumedFrom: offset });
    };
    try {
      // The header was read by iterating; chunks that came with it go first in push mode.
      await reader.return?.();
      this.#o.onProgress?.({ received, total: size, resumedFrom: offset });
      if (head.length > 0) put(head);
      await stream.consume(put);
    } catch (e) {
      if (!stalled) throw e;
    } finally {
      clearInterval(watchdog);
    }
    // The watchdog's reset ends the stream as a local reset does: without an error.
    if (stalled) throw new Error(`nothing arrived for ${Math.round(stallMs / 1000)}s`);
    await file.sync();
    return received;
  }

  // Moves the complete partial file to the target (without replacing one unless allowed).
  async #finish(): Promise<void> {
    const path = this.#o.path;
    if (this.#o.overwrite) {
      await Deno.rename(this.#part, path);
    } else {
      try {
        await Deno.link(this.#part, path);
      } catch (e) {
        if (e instanceof Deno.errors.AlreadyExists) {
          throw new FileError(
            "TARGET_EXISTS",
            `Cannot write ${path}: a file appeared there meanwhile (the download is kept in ${this.#part})`,
          );
        }
        throw e;
      }
      await Deno.remove(this.#part);
    }
    await Deno.remove(this.#meta).catch(() => {});
    await syncDirectory(dirname(path));
  }
}
