/** Whether this process may create and configure a TUN device, and how to fix it if not. */
import { EdgeVpnError } from "../util/errors.ts";

const CAP_NET_ADMIN = 12n;

/**
 * Throws a one-line explanation when the VPN cannot run here: no `/dev/net/tun`, or neither
 * root nor CAP_NET_ADMIN. `binary` is the compiled executable, if any, for the `setcap` hint.
 *
 * @throws {EdgeVpnError} `TUN_UNAVAILABLE` or `NO_PRIVILEGES`.
 * @example
 * ```ts ignore
 * await assertCanCreateTun();
 * ```
 */
export async function assertCanCreateTun(binary?: string): Promise<void> {
  try {
    await Deno.stat("/dev/net/tun");
  } catch {
    throw new EdgeVpnError(
      "TUN_UNAVAILABLE",
      "/dev/net/tun is missing: load the tun module (sudo modprobe tun), or give the container the device (--device /dev/net/tun)",
    );
  }
  if (await hasNetAdmin()) return;
  const grant = binary
    ? `run it with sudo, or grant the capability once: sudo setcap cap_net_admin+ep ${binary}`
    : "run it with sudo (or build the binary with ./deno task compile and grant it: sudo setcap cap_net_admin+ep dist/edgevpn)";
  throw new EdgeVpnError(
    "NO_PRIVILEGES",
    `Creating the VPN interface needs root or the CAP_NET_ADMIN capability: ${grant}`,
  );
}

/**
 * True when the effective capability set holds CAP_NET_ADMIN (always true for root).
 *
 * @example
 * ```ts ignore
 * if (!(await hasNetAdmin())) console.log("not allowed");
 * ```
 */
export async function hasNetAdmin(): Promise<boolean> {
  let status: string;
  try {
    status = await Deno.readTextFile("/proc/self/status");
  } catch {
    return Deno.uid() === 0;
  }
  const m = status.match(/^CapEff:\s*([0-9a-fA-F]+)$/m);
  if (!m) return Deno.uid() === 0;
  return ((BigInt(`0x${m[1]}`) >> CAP_NET_ADMIN) & 1n) === 1n;
}
