/** Network interface configuration (addresses, MTU, queue length, link state) through ioctls. */

import { syscallError, TunError } from "./errors.ts";
import { libc, Linux } from "./libc.ts";
import { cString, lastErrno } from "./ptr.ts";

/**
 * An interface address with its prefix length, already parsed: 4 bytes for IPv4, 16 for IPv6.
 * Text is parsed above this layer (`lib/net`), whose `Cidr` is one of these.
 *
 * @example
 * ```ts
 * const address: InterfaceAddress = { address: new Uint8Array([10, 1, 0, 1]), prefixLength: 24 };
 * ```
 */
export interface InterfaceAddress {
  readonly address: Uint8Array;
  readonly prefixLength: number;
}

/** Size of `struct ifreq` on 64-bit Linux. */
export const IFREQ_SIZE = 40;
const IFREQ_UNION = 16;
const IPV6_MIN_MTU = 1280;

/**
 * Builds a zeroed `struct ifreq` with `ifr_name` set; rejects names the kernel would refuse.
 *
 * @example
 * ```ts
 * const ifr = ifreq("edgevpn0");
 * ```
 */
export function ifreq(name: string): Uint8Array {
  const bytes = cString(name);
  if (bytes.length > Linux.IFNAMSIZ || /[\s/:]/.test(name)) {
    throw new TunError(
      "TUN_INVALID",
      `Invalid interface name: expected at most ${
        Linux.IFNAMSIZ - 1
      } bytes without spaces, '/' or ':', got ${JSON.stringify(name)}`,
    );
  }
  const ifr = new Uint8Array(IFREQ_SIZE);
  ifr.set(bytes, 0);
  return ifr;
}

/**
 * Returns the kernel index of an interface.
 *
 * @example
 * ```ts
 * interfaceIndex("lo"); // 1
 * ```
 */
export function interfaceIndex(name: string): number {
  ifreq(name);
  const index = libc().if_nametoindex(cString(name));
  if (index === 0) {
    throw syscallError(`Cannot find interface ${name}`, "if_nametoindex", lastErrno());
  }
  return index;
}

/**
 * Sets the MTU of an interface (`SIOCSIFMTU`).
 *
 * @example
 * ```ts
 * setInterfaceMtu("edgevpn0", 1420);
 * ```
 */
export function setInterfaceMtu(name: string, mtu: number): void {
  checkInteger("MTU", mtu, 68, 0xffff);
  const ifr = ifreq(name);
  new DataView(ifr.buffer).setInt32(IFREQ_UNION, mtu, true);
  withSocket(Linux.AF_INET, (s) => ioctl(s, Linux.SIOCSIFMTU, ifr, `set MTU of ${name} to ${mtu}`));
}

/**
 * Reads the MTU of an interface (`SIOCGIFMTU`).
 *
 * @example
 * ```ts
 * interfaceMtu("lo"); // 65536
 * ```
 */
export function interfaceMtu(name: string): number {
  const ifr = ifreq(name);
  withSocket(Linux.AF_INET, (s) => ioctl(s, Linux.SIOCGIFMTU, ifr, `read MTU of ${name}`));
  return new DataView(ifr.buffer).getInt32(IFREQ_UNION, true);
}

/**
 * Sets the transmit queue length of an interface (`SIOCSIFTXQLEN`).
 *
 * @example
 * ```ts
 * setInterfaceTxQueueLength("edgevpn0", 1000);
 * ```
 */
export function setInterfaceTxQueueLength(name: string, length: number): void {
  checkInteger("tx queue length", length, 0, 0x7fffffff);
  const ifr = ifreq(name);
  new DataView(ifr.buffer).setInt32(IFREQ_UNION, length, true);
  withSocket(
    Linux.AF_INET,
    (s) => ioctl(s, Linux.SIOCSIFTXQLEN, ifr, `set tx queue length of ${name} to ${length}`),
  );
}

/**
 * Sets the IPv4 address and netmask of an interface (`SIOCSIFADDR`, then `SIOCSIFNETMASK`).
 * This replaces the interface's primary IPv4 address.
 *
 * @example
 * ```ts
 * setInterfaceIPv4("edgevpn0", { address: new Uint8Array([10, 1, 0, 1]), prefixLength: 24 });
 * ```
 */
export function setInterfaceIPv4(name: string, value: InterfaceAddress): void {
  const { address, prefixLength } = checkAddress(value, 4);
  const cidr = addressText(value);
  const mask = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
  withSocket(Linux.AF_INET, (s) => {
    ioctl(s, Linux.SIOCSIFADDR, sockaddrIn(name, address), `set address ${cidr} on ${name}`);
    const maskBytes = new Uint8Array(4);
    new DataView(maskBytes.buffer).setUint32(0, mask);
    ioctl(s, Linux.SIOCSIFNETMASK, sockaddrIn(name, maskBytes), `set netmask ${cidr} on ${name}`);
  });
}

/**
 * Adds an IPv6 address with its prefix to an interface (`SIOCSIFADDR` with a
 * `struct in6_ifreq` on an `AF_INET6` socket). The kernel disables IPv6 on links whose MTU is
 * below 1280, which fails here with `TUN_INVALID` or `TUN_UNSUPPORTED`.
 *
 * @example
 * ```ts
 * const fd00 = new Uint8Array(16);
 * fd00.set([0xfd, 0x00]);
 * fd00[15] = 1;
 * addInterfaceIPv6("edgevpn0", { address: fd00, prefixLength: 64 });
 * ```
 */
export function addInterfaceIPv6(name: string, value: InterfaceAddress): void {
  const { address, prefixLength } = checkAddress(value, 6);
  const cidr = addressText(value);
  const in6ifreq = new Uint8Array(24);
  in6ifreq.set(address, 0);
  const view = new DataView(in6ifreq.buffer);
  view.setUint32(16, prefixLength, true);
  view.setInt32(20, interfaceIndex(name), true);
  withSocket(Linux.AF_INET6, (s) => {
    try {
      ioctl(s, Linux.SIOCSIFADDR, in6ifreq, `add address ${cidr} to ${name}`);
    } catch (e) {
      if (!(e instanceof TunError) || e.code !== "TUN_INVALID") throw e;
      const mtu = interfaceMtu(name);
      if (mtu >= IPV6_MIN_MTU) throw e;
      throw new TunError(
        "TUN_INVALID",
        `${e.message}: IPv6 needs an MTU of at least ${IPV6_MIN_MTU}, ${name} has ${mtu}`,
        { errno: e.errno, syscall: e.syscall },
      );
    }
  });
}

/**
 * Brings an interface up (`IFF_UP | IFF_RUNNING`) or down, keeping its other flags.
 *
 * @example
 * ```ts
 * setInterfaceUp("edgevpn0", true);
 * ```
 */
export function setInterfaceUp(name: string, up: boolean): void {
  const ifr = ifreq(name);
  const view = new DataView(ifr.buffer);
  withSocket(Linux.AF_INET, (s) => {
    ioctl(s, Linux.SIOCGIFFLAGS, ifr, `read flags of ${name}`);
    const flags = view.getUint16(IFREQ_UNION, true);
    const wanted = Linux.IFF_UP | Linux.IFF_RUNNING;
    view.setUint16(IFREQ_UNION, up ? flags | wanted : flags & ~wanted, true);
    ioctl(s, Linux.SIOCSIFFLAGS, ifr, `bring ${name} ${up ? "up" : "down"}`);
  });
}

function sockaddrIn(name: string, address: Uint8Array): Uint8Array {
  const ifr = ifreq(name);
  new DataView(ifr.buffer).setUint16(IFREQ_UNION, Linux.AF_INET, true);
  ifr.set(address, IFREQ_UNION + 4);
  return ifr;
}

function checkAddress(value: InterfaceAddress, version: 4 | 6): InterfaceAddress {
  const bytes = version === 4 ? 4 : 16;
  const { address, prefixLength } = value;
  if (
    !(address instanceof Uint8Array) || address.length !== bytes ||
    !Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > bytes * 8
  ) {
    throw new TunError(
      "TUN_INVALID",
      `Invalid address: expected an IPv${version} address of ${bytes} bytes with a prefix of 0..${
        bytes * 8
      }, got ${address?.length ?? 0} bytes with prefix ${prefixLength}`,
    );
  }
  return value;
}

// For messages only: dotted IPv4, or the eight IPv6 groups in hex, then the prefix.
function addressText({ address, prefixLength }: InterfaceAddress): string {
  const text = address.length === 4 ? address.join(".") : Array.from(
    { length: 8 },
    (_, i) => ((address[2 * i] << 8) | address[2 * i + 1]).toString(16),
  ).join(":");
  return `${text}/${prefixLength}`;
}

function checkInteger(what: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TunError("TUN_INVALID", `Invalid ${what}: expected ${min}..${max}, got ${value}`);
  }
}

function withSocket(family: number, use: (socket: number) => void): void {
  const s = libc().socket(family, Linux.SOCK_DGRAM | Linux.SOCK_CLOEXEC, 0);
  if (s < 0) {
    throw syscallError(
      `Cannot open ${family === Linux.AF_INET6 ? "IPv6" : "IPv4"} control socket`,
      "socket",
      lastErrno(),
    );
  }
  try {
    use(s);
  } finally {
    libc().close(s);
  }
}

function ioctl(fd: number, request: number, arg: Uint8Array, what: string): void {
  if (libc().ioctl(fd, BigInt(request), arg) < 0) {
    throw syscallError(`Cannot ${what}`, `ioctl(${requestName(request)})`, lastErrno());
  }
}

function requestName(request: number): string {
  for (const [name, value] of Object.entries(Linux)) {
    if (value === request && (name.startsWith("SIOC") || name.startsWith("TUN"))) return name;
  }
  return `0x${request.toString(16)}`;
}
