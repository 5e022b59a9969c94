/** On-disk ledger store (`--ledger-state DIR`): one `ledger.json` holding the last block, replaced atomically. */

import { syncDirectory, writeFileAtomic } from "../util/atomic_file.ts";
import { errorMessage } from "../util/errors.ts";
import {
  type Block,
  decodeBlock,
  DEFAULT_BLOCK_LIMITS,
  encodeBlock,
  verifyBlockHash,
} from "./block.ts";
import { parseJson } from "./json.ts";
import type { LedgerStore, StoreLoad } from "./store.ts";

/** Name of the state file inside the state directory. */
export const STATE_FILE = "ledger.json";
const TEMP_PREFIX = `${STATE_FILE}.tmp-`;
const MAX_STATE_BYTES = 256 * 1024 * 1024;

/**
 * Stores the last block as Go-format JSON in `DIR/ledger.json`. Each save writes a temporary
 * file in the same directory, fsyncs it, renames it over the state file and fsyncs the
 * directory, so a crash leaves either the old or the new block, never a mix.
 *
 * @example
 * ```ts ignore
 * const store = await openDiskStore("/var/lib/edgevpn");
 * const { block, warning } = await store.load();
 * ```
 */
export class DiskStore implements LedgerStore {
  readonly dir: string;
  readonly path: string;

  constructor(dir: string) {
    this.dir = dir;
    this.path = `${dir}/${STATE_FILE}`;
  }

  /**
   * Reads `ledger.json`. Leftover temporary files are removed; an unreadable, truncated or
   * inconsistent state file is renamed `ledger.json.corrupt-<time>` and reported as a warning,
   * and the ledger starts empty (the network's copy will arrive).
   */
  async load(): Promise<StoreLoad> {
    await this.#removeTemporaries();
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(this.path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return {};
      throw e;
    }
    try {
      if (bytes.length > MAX_STATE_BYTES) throw new Error(`larger than ${MAX_STATE_BYTES} bytes`);
      const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
      const block = decodeBlock(parseJson(text), {
        ...DEFAULT_BLOCK_LIMITS,
        maxEntries: Number.MAX_SAFE_INTEGER,
        maxBuckets: Number.MAX_SAFE_INTEGER,
      });
      await verifyBlockHash(block);
      return { block };
    } catch (e) {
      const aside = `${this.path}.corrupt-${new Date().toISOString().replace(/[:.]/g, "-")}`;
      await Deno.rename(this.path, aside);
      await syncDirectory(this.dir);
      return {
        warning:
          `ledger state ${this.path} is unreadable (${errorMessage(e)}); moved to ${aside}, ` +
          `starting from an empty ledger`,
      };
    }
  }

  async save(block: Block): Promise<void> {
    await writeFileAtomic(this.path, new TextEncoder().encode(encodeBlock(block)), {
      tempPrefix: TEMP_PREFIX,
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  async #removeTemporaries(): Promise<void> {
    for await (const entry of Deno.readDir(this.dir)) {
      if (entry.isFile && entry.name.startsWith(TEMP_PREFIX)) {
        await Deno.remove(`${this.dir}/${entry.name}`).catch(() => {});
      }
    }
  }
}

/**
 * Creates the state directory if needed and returns its store.
 *
 * @example
 * ```ts ignore
 * const store = await openDiskStore(await Deno.makeTempDir());
 * ```
 */
export async function openDiskStore(dir: string): Promise<DiskStore> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  return new DiskStore(dir);
}

// Makes a rename durable; some platforms cannot open or fsync a directory, which is tolerated.
