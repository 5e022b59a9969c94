/** glibc malloc tuning: freed native memory (packet buffers) goes back to the system. */
import { libc } from "./libc.ts";

/** `mallopt` parameters from `<malloc.h>`. */
const M_TRIM_THRESHOLD = -1;
const M_MMAP_THRESHOLD = -3;

/**
 * Makes glibc's allocator hand freed memory back instead of keeping it: allocations of
 * `mmapThreshold` bytes or more (a 64 KiB packet batch and the buffers the crypto and socket
 * layers make for it) get pages of their own, returned to the system when freed, and the heap
 * top is trimmed past `trimThreshold`. Without this glibc raises its mmap threshold after the
 * first large buffer is freed, and a data plane moving thousands of 64 KiB buffers a second
 * leaves tens of MiB of free, fragmented heap behind. Returns false where the C library is not
 * glibc (nothing changed).
 *
 * @example
 * ```ts
 * tuneMalloc(); // at start-up, before the traffic
 * ```
 */
export function tuneMalloc(mmapThreshold = 64 * 1024, trimThreshold = 1 << 20): boolean {
  try {
    const c = libc();
    return c.mallopt(M_MMAP_THRESHOLD, mmapThreshold) === 1 &&
      c.mallopt(M_TRIM_THRESHOLD, trimThreshold) === 1;
  } catch {
    return false;
  }
}
