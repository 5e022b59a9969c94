/** The error class of the TUN device and interface configuration, mapped from errno. */

import { Errno, errnoName } from "./libc.ts";
import { errnoText } from "./ptr.ts";

/**
 * Stable codes of {@link TunError}:
 * - `TUN_PERMISSION_DENIED`: not root / no `CAP_NET_ADMIN` (`EPERM`, `EACCES`).
 * - `TUN_UNAVAILABLE`: no `/dev/net/tun` or no tun driver (`ENOENT`, `ENODEV`, `ENXIO`).
 * - `TUN_BUSY`: the interface name is held by another open device (`EBUSY`).
 * - `TUN_ADDRESS_IN_USE`: the address is already configured (`EEXIST`, `EADDRINUSE`).
 * - `TUN_INVALID`: a bad name, address, prefix, MTU or flag (`EINVAL`, `ERANGE`, ... or
 *   rejected before any system call).
 * - `TUN_NOT_FOUND`: the interface disappeared (`ENODEV` during configuration).
 * - `TUN_UNSUPPORTED`: the kernel lacks the feature (`EAFNOSUPPORT` for IPv6, `ENOTTY`).
 * - `TUN_CLOSED`: the device was used after `close()`.
 * - `TUN_READ_IN_PROGRESS`: a second reader called `readBatch` while one was waiting.
 * - `TUN_SYSCALL_FAILED`: any other failure; `errno` says which.
 */
export type TunErrorCode =
  | "TUN_PERMISSION_DENIED"
  | "TUN_UNAVAILABLE"
  | "TUN_BUSY"
  | "TUN_ADDRESS_IN_USE"
  | "TUN_INVALID"
  | "TUN_NOT_FOUND"
  | "TUN_UNSUPPORTED"
  | "TUN_CLOSED"
  | "TUN_READ_IN_PROGRESS"
  | "TUN_SYSCALL_FAILED";

/**
 * A TUN device or interface configuration failure, with a stable `code`. It extends `Error`,
 * not the library's `EdgeVpnError`: `ffi/` sits below `lib/` and imports nothing from it; the
 * CLI reports both the same way (one line, exit 1).
 *
 * @example
 * ```ts
 * try {
 *   TunDevice.open({ name: "edgevpn0" });
 * } catch (e) {
 *   if (e instanceof TunError && e.code === "TUN_PERMISSION_DENIED") {
 *     // ask the user to run as root or grant CAP_NET_ADMIN
 *   }
 * }
 * ```
 */
export class TunError extends Error {
  /** Stable machine-readable code. */
  readonly code: TunErrorCode;
  /** The errno of the failed system call, when one failed. */
  readonly errno?: number;
  /** The failed system call (`ioctl(TUNSETIFF)`, `open`), when one failed. */
  readonly syscall?: string;

  constructor(
    code: TunErrorCode,
    message: string,
    details: { errno?: number; syscall?: string } = {},
  ) {
    super(message);
    this.name = "TunError";
    this.code = code;
    this.errno = details.errno;
    this.syscall = details.syscall;
  }
}

/**
 * Builds a {@link TunError} for a failed system call, choosing the code from errno.
 *
 * `what` says what was being done, e.g. `Cannot set MTU of edgevpn0 to 70000`.
 *
 * @example
 * ```ts
 * throw syscallError("Cannot open /dev/net/tun", "open", 13); // TUN_PERMISSION_DENIED
 * ```
 */
export function syscallError(what: string, syscall: string, errno: number): TunError {
  return new TunError(
    codeOf(syscall, errno),
    `${what}: ${syscall} failed with ${errnoName(errno)} (${errnoText(errno)})`,
    { errno, syscall },
  );
}

function codeOf(syscall: string, errno: number): TunErrorCode {
  switch (errno) {
    case Errno.EPERM:
    case Errno.EACCES:
      return "TUN_PERMISSION_DENIED";
    case Errno.EBUSY:
      return "TUN_BUSY";
    case Errno.EEXIST:
    case Errno.EADDRINUSE:
      return "TUN_ADDRESS_IN_USE";
    case Errno.EINVAL:
    case Errno.ERANGE:
    case Errno.EADDRNOTAVAIL:
      return "TUN_INVALID";
    case Errno.ENOENT:
    case Errno.ENXIO:
      return "TUN_UNAVAILABLE";
    case Errno.ENODEV:
      // Opening the character device: no tun driver. Configuring: the interface is gone.
      return syscall === "open" ? "TUN_UNAVAILABLE" : "TUN_NOT_FOUND";
    case Errno.EAFNOSUPPORT:
    case Errno.ENOTTY:
    case Errno.EOPNOTSUPP:
      return "TUN_UNSUPPORTED";
    case Errno.EBADF:
    case Errno.EBADFD:
      return "TUN_CLOSED";
    default:
      return "TUN_SYSCALL_FAILED";
  }
}
