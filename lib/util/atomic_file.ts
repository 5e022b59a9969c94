/** Crash-safe file writes: temporary file, fsync, rename (or link), directory fsync. */

/** Options of {@link writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** File mode of the new file (default 0o600). */
  mode?: number;
  /**
   * Fail with `Deno.errors.AlreadyExists` instead of replacing an existing file; two writers
   * racing for the same path then agree on the first one.
   */
  createNew?: boolean;
  /** Prefix of the temporary file's name in the same directory (default `<name>.tmp-`). */
  tempPrefix?: string;
}

let sequence = 0;

/**
 * Writes `data` to `path` so that, after a crash at any moment, the file holds either its old
 * content or the whole new content: write a temporary file in the same directory, fsync it,
 * rename it into place (link it, with `createNew`), then fsync the directory.
 *
 * @example
 * ```ts ignore
 * await writeFileAtomic("/tmp/example.json", new TextEncoder().encode("{}"));
 * ```
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
  const name = path.slice(slash + 1);
  const temp = `${dir}/${options.tempPrefix ?? `${name}.tmp-`}${Deno.pid}-${++sequence}`;
  const mode = options.mode ?? 0o600;
  const file = await Deno.open(temp, { write: true, createNew: true, mode });
  try {
    await Deno.chmod(temp, mode);
    let at = 0;
    while (at < data.length) at += await file.write(data.subarray(at));
    await file.sync();
  } catch (e) {
    file.close();
    await Deno.remove(temp).catch(() => {});
    throw e;
  }
  file.close();
  try {
    if (options.createNew) await Deno.link(temp, path);
    else await Deno.rename(temp, path);
  } catch (e) {
    await Deno.remove(temp).catch(() => {});
    throw e;
  }
  // A link leaves the temporary name behind; a rename consumed it.
  if (options.createNew) await Deno.remove(temp).catch(() => {});
  await syncDirectory(dir);
}

/**
 * Flushes a directory's entries to disk (best effort: some file systems refuse).
 *
 * @example
 * ```ts
 * await syncDirectory("/tmp");
 * ```
 */
export async function syncDirectory(dir: string): Promise<void> {
  let handle: Deno.FsFile | undefined;
  try {
    handle = await Deno.open(dir, { read: true });
    await handle.sync();
  } catch {
    // Best effort only.
  } finally {
    handle?.close();
  }
}
