/** The release of this implementation, shown by `--version` and announced in the ledger. */

/**
 * Version of EdgeVPN for Deno.
 *
 * @example
 * ```ts
 * VERSION.startsWith("v"); // true
 * ```
 */
export const VERSION = "v0.1.0";
