/** `edgevpn peergater ecdsa-genkey`: trust-zone key utilities, as Go EdgeVPN's. */
import type { CommandContext } from "./context.ts";
import { generateEcdsaKeys } from "../trustzone/ecdsa.ts";
import { UsageError } from "../util/errors.ts";

/**
 * `edgevpn peergater` alone: says which subcommand to use.
 *
 * @example
 * ```ts
 * // edgevpn peergater → usage error naming ecdsa-genkey
 * ```
 */
export function runPeergater(_ctx: CommandContext): Promise<void> {
  return Promise.reject(
    new UsageError("USAGE", "peergater: expected a subcommand: ecdsa-genkey [--privkey|--pubkey]"),
  );
}

/**
 * Prints a new P-521 key pair in Go's text form (`Private key: …`, `Public key: …`), or only
 * one with `--privkey` or `--pubkey`. The public key goes into the ledger
 * (`trustzoneAuth`/`ecdsa_<n>`), the private key into `--peergate-auth`.
 *
 * @example
 * ```ts
 * // edgevpn peergater ecdsa-genkey --pubkey
 * ```
 */
export function runEcdsaGenkey(ctx: CommandContext): Promise<void> {
  const { privateKey, publicKey } = generateEcdsaKeys();
  const s = ctx.settings;
  if (s.peergaterPrivkey) ctx.out(`${privateKey}\n`);
  else if (s.peergaterPubkey) ctx.out(`${publicKey}\n`);
  else ctx.out(`Private key: ${privateKey}\nPublic key: ${publicKey}\n`);
  return Promise.resolve();
}
