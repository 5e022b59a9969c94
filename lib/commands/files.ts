/** `edgevpn file-send` (`fs`) and `file-receive` (`fr`). */
import type { CommandContext } from "./context.ts";
import {
  checkReadableFile,
  checkTarget,
  createFileSharer,
  FileError,
  receiveFile,
} from "../files/mod.ts";
import { tuneMalloc } from "../../ffi/malloc.ts";
import { serviceComponentsOf } from "../services/mod.ts";
import { UsageError } from "../util/errors.ts";
import { untilAborted, withMesh } from "./common.ts";
import { createProgressReporter, formatBytes } from "./progress.ts";
import { nameAndValue, timingOf } from "./services.ts";

/** Codes of {@link FileError} that are the user's input, exit 2. */
const USAGE_CODES = new Set([
  "PATH_NOT_FOUND",
  "PATH_IS_DIRECTORY",
  "PATH_UNREADABLE",
  "PATH_UNWRITABLE",
  "TARGET_EXISTS",
  "TARGET_DIRECTORY_MISSING",
  "FILE_NAME_INVALID",
]);

function asUsage(e: unknown): unknown {
  return e instanceof FileError && USAGE_CODES.has(e.code) ? new UsageError(e.code, e.message) : e;
}

/**
 * `edgevpn file-send NAME PATH`: shares a file with the network until SIGINT/SIGTERM.
 *
 * @example
 * ```ts
 * // edgevpn file-send backup ./backup.tar --token $TOKEN
 * ```
 */
export async function runFileSend(ctx: CommandContext): Promise<void> {
  const s = ctx.settings;
  const [name, path] = nameAndValue(ctx, s.path, "file-send NAME PATH, or --name and --path");
  try {
    await checkReadableFile(path);
  } catch (e) {
    throw asUsage(e);
  }
  await withMesh(ctx, true, async (mesh) => {
    const sharer = createFileSharer(serviceComponentsOf(mesh, { logger: ctx.log }), {
      files: [{ name, path }],
      announceIntervalMs: s.ledgerAnnounceInterval,
      requestTimeoutMs: s.timeout,
    });
    try {
      await sharer.start();
    } catch (e) {
      throw asUsage(e);
    }
    try {
      await untilAborted(ctx.signal);
    } finally {
      await sharer.stop();
    }
  });
}

/**
 * `edgevpn file-receive NAME PATH`: waits for the file in the network, downloads it to PATH
 * and exits 0. A partial download stays beside PATH and a later run resumes it.
 *
 * @example
 * ```ts
 * // edgevpn file-receive backup ./backup.tar --token $TOKEN
 * ```
 */
export async function runFileReceive(ctx: CommandContext): Promise<void> {
  const s = ctx.settings;
  const [name, path] = nameAndValue(ctx, s.path, "file-receive NAME PATH, or --name and --path");
  try {
    await checkTarget(path, s.overwrite);
  } catch (e) {
    throw asUsage(e);
  }
  // Transfer buffers come and go by the thousand: freed ones go back to the system.
  tuneMalloc();
  await withMesh(ctx, true, async (mesh) => {
    const progress = createProgressReporter(name, { tty: Deno.stderr.isTerminal(), log: ctx.log });
    try {
      const got = await receiveFile(serviceComponentsOf(mesh, { logger: ctx.log }), {
        name,
        path,
        overwrite: s.overwrite,
        ...timingOf(ctx),
        signal: ctx.signal,
        onWaiting: (ms) =>
          ctx.log.info(
            `Waiting for file '${name}' to appear in the network (${
              Math.round(ms / 1000)
            }s so far)`,
          ),
        onProgress: (p) => progress.update(p),
      });
      progress.stop();
      ctx.out(
        `Received '${name}' to ${got.path}: ${got.size} bytes (${formatBytes(got.size)}) in ${
          (got.elapsedMs / 1000).toFixed(2)
        } s, SHA-256 ${got.sha256} ${
          got.verified ? "(verified)" : "(not verified: the sender announced no hash)"
        }\n`,
      );
    } catch (e) {
      progress.stop();
      if (e instanceof FileError && e.code === "ABORTED") {
        ctx.log.info("stopped; a partial download is kept beside the target for the next run");
        return;
      }
      throw asUsage(e);
    }
  });
}
