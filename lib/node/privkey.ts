/** The cached node key (`<dir>/privkey`, libp2p protobuf as Go writes it) for a stable peer ID. */
import { generateIdentity, type Identity, identityFromProtobuf } from "../crypto/identity.ts";
import { writeFileAtomic } from "../util/atomic_file.ts";
import { EdgeVpnError, errorMessage } from "../util/errors.ts";

/** Name of the key file inside the cache directory (Go EdgeVPN's). */
export const PRIVKEY_FILE = "privkey";

/**
 * Loads the identity cached in `dir`, or creates one and writes it there (directory mode
 * 0700, file mode 0600). The key is written to a temporary file, synced and hard-linked into
 * place, so a crash never leaves a half-written key and two nodes starting at once agree on one.
 *
 * @throws {EdgeVpnError} `KEY_INVALID` when the file exists but is not an Ed25519 key;
 * `PRIVKEY_CACHE_FAILED` when the directory or file cannot be read or written.
 * @example
 * ```ts ignore
 * const id = await loadOrCreateIdentity("/var/lib/edgevpn");
 * ```
 */
export async function loadOrCreateIdentity(dir: string): Promise<Identity> {
  const path = `${dir.replace(/\/+$/, "")}/${PRIVKEY_FILE}`;
  let bytes: Uint8Array | undefined;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw cacheFailed(`read ${path}`, e);
  }
  if (bytes) return await identityFromProtobuf(bytes);
  const identity = await generateIdentity();
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(path, identity.privateKeyProtobuf, { mode: 0o600, createNew: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw cacheFailed(`write ${path}`, e);
    return await identityFromProtobuf(await Deno.readFile(path));
  }
  return identity;
}

function cacheFailed(what: string, cause: unknown): EdgeVpnError {
  return new EdgeVpnError(
    "PRIVKEY_CACHE_FAILED",
    `Cannot ${what}: ${errorMessage(cause)}`,
    { cause },
  );
}
