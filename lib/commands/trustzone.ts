/** The trust zone's options from Go EdgeVPN's `--peerguard` and `--peergate*` flags. */
import type { Settings } from "../config/options.ts";
import type { TrustMode, TrustZoneOptions } from "../trustzone/trustzone.ts";
import { UsageError } from "../util/errors.ts";

/**
 * Trust-zone options, or undefined without `--peerguard`.
 *
 * @throws {UsageError} `BAD_FLAG` for a bad `--peerguard-mode` or `--peergate-auth` (not JSON,
 * a provider other than `ecdsa`, no `private_key`).
 * @example
 * ```ts ignore
 * trustZoneOptionsOf(settings)?.mode; // "bound"
 * ```
 */
export function trustZoneOptionsOf(s: Settings): TrustZoneOptions | undefined {
  if (!s.peerguard) return undefined;
  if (s.peerguardMode !== "bound" && s.peerguardMode !== "go") {
    throw new UsageError(
      "BAD_FLAG",
      `--peerguard-mode: expected bound or go, got ${JSON.stringify(s.peerguardMode)}`,
    );
  }
  return {
    mode: s.peerguardMode as TrustMode,
    gate: s.peergate,
    relaxed: s.peergateRelaxed,
    autoclean: s.peergateAutoclean,
    intervalMs: s.peergateInterval > 0 ? s.peergateInterval : 120_000,
    ecdsaPrivateKey: ecdsaKeyOf(s.peergateAuth),
  };
}

function ecdsaKeyOf(text: string): string | undefined {
  if (text.trim() === "") return undefined;
  const bad = (why: string) =>
    new UsageError("BAD_FLAG", `--peergate-auth: ${why}, e.g. {"ecdsa":{"private_key":"…"}}`);
  let auth: unknown;
  try {
    auth = JSON.parse(text);
  } catch {
    throw bad("expected JSON");
  }
  if (auth === null || typeof auth !== "object" || Array.isArray(auth)) {
    throw bad("expected a JSON object");
  }
  let key: string | undefined;
  for (const [provider, options] of Object.entries(auth)) {
    if (provider.toLowerCase() !== "ecdsa") {
      throw bad(`provider ${JSON.stringify(provider)} is not supported`);
    }
    const pk = (options as { private_key?: unknown } | null)?.private_key;
    if (typeof pk !== "string" || pk === "") throw bad("the ecdsa provider needs a private_key");
    key = pk;
  }
  return key;
}
