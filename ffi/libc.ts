/** The libc symbols EdgeVPN calls through `Deno.dlopen`, Linux constants, and the lazy loader. */

/**
 * Every libc function the FFI layer uses, in one table.
 *
 * `ioctl` is variadic, so it is declared twice: `ioctl` passes a struct (`ifreq`, `in6_ifreq`)
 * by pointer, `ioctlInt` passes an integer (`TUNSETOFFLOAD`). `pollWait` is `poll` run on a
 * worker thread (it returns a promise) so that waiting for a packet never blocks the event loop;
 * `poll` runs on the calling thread (see `ffi/event_loop.ts` for when that is safe).
 *
 * @example
 * ```ts
 * import { libc } from "./libc.ts";
 * const fd = libc().socket(2, 2, 0); // AF_INET, SOCK_DGRAM
 * libc().close(fd);
 * ```
 */
export const LIBC_SYMBOLS = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  ioctlInt: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  pollWait: {
    name: "poll",
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
  mallopt: { parameters: ["i32", "i32"], result: "i32" },
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The callable symbols of {@link LIBC_SYMBOLS}. */
export type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

let library: Deno.DynamicLibrary<typeof LIBC_SYMBOLS> | undefined;

/**
 * Returns the libc symbols, opening `libc.so.6` on the first call.
 *
 * The library stays open for the life of the process: it is shared by every device and
 * closing it while a `pollWait` runs on a worker thread would unmap code in use.
 *
 * @example
 * ```ts
 * const fd = libc().eventfd(0, 0);
 * libc().close(fd);
 * ```
 */
export function libc(): Libc {
  library ??= Deno.dlopen("libc.so.6", LIBC_SYMBOLS);
  return library.symbols;
}

/** Linux errno values (x86-64 and arm64 share them) that the FFI layer tells apart. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  EMFILE: 24,
  ENOTTY: 25,
  ENOSPC: 28,
  ERANGE: 34,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENOBUFS: 105,
  EBADFD: 77,
} as const;

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(Errno).map(([name, value]) => [value, name]),
);

/**
 * Returns the symbolic name of an errno value (`EBUSY`), or `errno N` when it is not listed.
 *
 * @example
 * ```ts
 * errnoName(16); // "EBUSY"
 * ```
 */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

/** Flags and request numbers from `<fcntl.h>`, `<sys/socket.h>`, `<poll.h>`, `<linux/if_tun.h>`. */
export const Linux = {
  O_RDWR: 0x2,
  O_NONBLOCK: 0x800,
  O_CLOEXEC: 0x80000,
  F_GETFL: 3,
  AF_INET: 2,
  AF_INET6: 10,
  SOCK_DGRAM: 2,
  SOCK_CLOEXEC: 0x80000,
  EFD_NONBLOCK: 0x800,
  EFD_CLOEXEC: 0x80000,
  POLLIN: 0x1,
  POLLOUT: 0x4,
  IFNAMSIZ: 16,
  IFF_UP: 0x1,
  IFF_RUNNING: 0x40,
  IFF_TUN: 0x0001,
  IFF_NO_PI: 0x1000,
  IFF_VNET_HDR: 0x4000,
  TUNSETIFF: 0x400454ca,
  TUNSETOFFLOAD: 0x400454d0,
  TUN_F_CSUM: 0x01,
  TUN_F_TSO4: 0x02,
  TUN_F_TSO6: 0x04,
  SIOCGIFFLAGS: 0x8913,
  SIOCSIFFLAGS: 0x8914,
  SIOCSIFADDR: 0x8916,
  SIOCSIFNETMASK: 0x891c,
  SIOCSIFMTU: 0x8922,
  SIOCGIFMTU: 0x8921,
  SIOCSIFTXQLEN: 0x8943,
} as const;
