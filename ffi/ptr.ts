/** The one place where FFI pointers and C strings are converted to and from JavaScript values. */

import { libc } from "./libc.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Encodes a string as a NUL-terminated UTF-8 buffer for a `buffer` parameter.
 *
 * @example
 * ```ts
 * cString("/dev/net/tun"); // Uint8Array of 13 bytes ending in 0
 * ```
 */
export function cString(text: string): Uint8Array {
  const bytes = new Uint8Array(encoder.encode(text).length + 1);
  encoder.encodeInto(text, bytes);
  return bytes;
}

/**
 * Decodes a NUL-terminated string held inside a fixed-size field of a struct.
 *
 * @example
 * ```ts
 * readCString(new Uint8Array([116, 117, 110, 48, 0, 0]), 0, 6); // "tun0"
 * ```
 */
export function readCString(bytes: Uint8Array, offset: number, size: number): string {
  const field = bytes.subarray(offset, offset + size);
  const end = field.indexOf(0);
  return decoder.decode(end < 0 ? field : field.subarray(0, end));
}

// errno lives at a per-thread address; module state is per isolate, and an isolate runs on
// one thread at a time, so the view is cached after the first failure.
let errnoView: Deno.UnsafePointerView | undefined;

/**
 * Returns `errno` as left by the last synchronous libc call on this thread.
 *
 * Call it immediately after the failing call: any other FFI call in between may change it.
 *
 * @example
 * ```ts ignore
 * if (libc().close(-1) < 0) lastErrno(); // 9 (EBADF)
 * ```
 */
export function lastErrno(): number {
  if (!errnoView) {
    const pointer = libc().__errno_location();
    if (pointer === null) return 0;
    errnoView = new Deno.UnsafePointerView(pointer);
  }
  return errnoView.getInt32();
}

/**
 * Returns libc's text for an errno value, e.g. `Device or resource busy`.
 *
 * @example
 * ```ts ignore
 * errnoText(16); // "Device or resource busy"
 * ```
 */
export function errnoText(errno: number): string {
  const pointer = libc().strerror(errno);
  return pointer === null ? `errno ${errno}` : Deno.UnsafePointerView.getCString(pointer);
}
