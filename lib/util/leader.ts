/** Deterministic leader election among peer IDs, as Go EdgeVPN's `utils.Leader`. */

const encoder = new TextEncoder();

/**
 * FNV-1a 32-bit hash of the UTF-8 bytes of `text` (Go's `hash/fnv.New32a`).
 *
 * @example
 * ```ts
 * fnv1a32("a"); // 0xe40c292c
 * ```
 */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of encoder.encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/**
 * The element with the highest FNV-1a hash; on equal hashes the earlier element wins.
 * Returns undefined for an empty list (Go panics there).
 *
 * @example
 * ```ts
 * leader(["a", "b", "c", "d"]); // "b"
 * ```
 */
export function leader(actives: readonly string[]): string | undefined {
  if (actives.length === 0) return undefined;
  let best = actives[0];
  let bestHash = fnv1a32(best);
  for (const candidate of actives) {
    const h = fnv1a32(candidate);
    if (bestHash < h) {
      best = candidate;
      bestHash = h;
    }
  }
  return best;
}
