/** The cached node key (`<dir>/privkey`, libp2p protobuf as Go writes it) for a stable peer ID. */
import { generateIdentity, type Identity, identityFromProtobuf } from "../crypto/identity.ts";
import { EdgeVpnError, errorMessage } from "../util/errors.ts";

/** Name of the key file inside the cache directory (Go EdgeVPN's). */
export const PRIVKEY_FILE = "privkey";

/**
 * Loads the identity cached in `dir`, or creates one and writes it there (directory mode
 * 0700, file mode 0600). The key is written to a temporary file and hard-linked into place,
 * so a crash never leaves a half-written key and two nodes starting at once agree on one.
 *
 * @throws {EdgeVpnError} `KEY_INVALID` when the file exists but is not an Ed25519 key;
 * `PRIVKEY_CACHE_FAILED` when the directory or file cannot be read or written.
 * @example
 * ```ts
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
  const tmp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    await Deno.writeFile(tmp, identity.privateKeyProtobuf, { mode: 0o600, createNew: true });
    await Deno.chmod(tmp, 0o600);
    await Deno.link(tmp, path);
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) {
      await Deno.remove(tmp).catch(() => {});
      throw cacheFailed(`write ${path}`, e);
    }
    await Deno.remove(tmp).catch(() => {});
    return await identityFromProtobuf(await Deno.readFile(path));
  }
  await Deno.remove(tmp).catch(() => {});
  return identity;
}

function cacheFailed(what: string, cause: unknown): EdgeVpnError {
  return new EdgeVpnError(
    "PRIVKEY_CACHE_FAILED",
    `Cannot ${what}: ${errorMessage(cause)}`,
    { cause },
  );
}
