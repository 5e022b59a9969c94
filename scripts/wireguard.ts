/** Sets up a wireguard-go tunnel between two namespaces: the userspace baseline of the VPN benchmark. */
import type { Namespace } from "./netns.ts";
import { sh } from "./netns.ts";

/** A running wireguard-go tunnel. */
export interface WireguardTunnel {
  /** Tunnel addresses of side a and side b. */
  addressA: string;
  addressB: string;
  pids: number[];
  close(): Promise<void>;
}

const PORT = 51820;

async function keyPair(): Promise<{ privateHex: string; publicHex: string }> {
  const pair = await crypto.subtle.generateKey({ name: "X25519" }, true, [
    "deriveBits",
  ]) as CryptoKeyPair;
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return { privateHex: hex(pkcs8.slice(-32)), publicHex: hex(raw) };
}

async function uapiSet(iface: string, body: string): Promise<void> {
  const path = `/var/run/wireguard/${iface}.sock`;
  for (let i = 0; i < 100; i++) {
    try {
      await Deno.stat(path);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    await conn.write(new TextEncoder().encode(`set=1\n${body}\n`));
    const buf = new Uint8Array(256);
    const n = await conn.read(buf);
    const reply = new TextDecoder().decode(buf.subarray(0, n ?? 0));
    if (!reply.includes("errno=0")) throw new Error(`wireguard-go refused config: ${reply.trim()}`);
  } finally {
    conn.close();
  }
}

/**
 * Starts wireguard-go in both namespaces and links them over their veth addresses, with tunnel
 * addresses `10.<subnet>.0.1/24` and `.2`, MTU `mtu`.
 *
 * @example
 * ```ts
 * const wg = await startWireguard(pair.a, pair.b, 97, 1420);
 * await wg.close();
 * ```
 */
export async function startWireguard(
  a: Namespace,
  b: Namespace,
  subnet: number,
  mtu = 1420,
): Promise<WireguardTunnel> {
  const id = crypto.randomUUID().slice(0, 5);
  const sides = [
    { ns: a, iface: `wg${id}a`, addr: `10.${subnet}.0.1`, keys: await keyPair() },
    { ns: b, iface: `wg${id}b`, addr: `10.${subnet}.0.2`, keys: await keyPair() },
  ];
  const children: Deno.ChildProcess[] = [];
  const close = async () => {
    for (const c of children) {
      try {
        c.kill("SIGTERM");
      } catch { /* already gone */ }
      await c.status;
    }
  };
  try {
    for (const s of sides) {
      children.push(s.ns.spawn("wireguard-go", ["-f", s.iface], {
        env: { WG_PROCESS_FOREGROUND: "1", LOG_LEVEL: "error" },
        stdout: "null",
        stderr: "null",
      }));
    }
    for (const [i, s] of sides.entries()) {
      const peer = sides[1 - i];
      await uapiSet(
        s.iface,
        `private_key=${s.keys.privateHex}\nlisten_port=${PORT}\npublic_key=${peer.keys.publicHex}\n` +
          `endpoint=${peer.ns.address}:${PORT}\nallowed_ip=${peer.addr}/32\n`,
      );
      await sh("ip", ["-n", s.ns.name, "addr", "add", `${s.addr}/24`, "dev", s.iface]);
      await sh("ip", ["-n", s.ns.name, "link", "set", s.iface, "mtu", String(mtu), "up"]);
    }
  } catch (e) {
    await close();
    throw e;
  }
  return {
    addressA: sides[0].addr,
    addressB: sides[1].addr,
    pids: children.map((c) => c.pid),
    close,
  };
}
