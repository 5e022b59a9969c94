/** Test support for the proxy: curl as the client, a self-signed certificate, egress and proxy meshes on loopback. */
import { generateNetworkConfig } from "../../lib/config/token.ts";
import { createEgress, type Egress, egressComponentsOf } from "../../lib/egress/mod.ts";
import { BUCKETS } from "../../lib/ledger/buckets.ts";
import type { Mesh } from "../../lib/mesh/mesh.ts";
import { createProxy, type Proxy, type ProxyOptions } from "../../lib/proxy/mod.ts";
import { startLoopbackMesh } from "../mesh/helpers.ts";
import { waitFor } from "../node/helpers.ts";

/** Why curl-based tests cannot run here, or undefined. */
export function curlSkipReason(): string | undefined {
  return hasProgram("curl", "--version")
    ? undefined
    : "curl is not installed (.ci/run installs it)";
}

/** Why TLS tests cannot run here, or undefined. */
export function opensslSkipReason(): string | undefined {
  return hasProgram("openssl", "version")
    ? undefined
    : "openssl is not installed (.ci/run installs it)";
}

function hasProgram(name: string, versionArg: string): boolean {
  try {
    return new Deno.Command(name, { args: [versionArg], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/** What curl did: its exit code, the body it printed and its error text. */
export interface CurlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs curl with `args` (silent, errors shown, 20 s at most), in namespace `netns` if given. */
export async function curl(args: string[], netns?: string): Promise<CurlResult> {
  const argv = ["curl", "-sS", "--max-time", "20", "--noproxy", "", ...args];
  const [cmd, ...rest] = netns ? ["ip", "netns", "exec", netns, ...argv] : argv;
  const out = await new Deno.Command(cmd, {
    args: rest,
    stdin: "null",
    env: { http_proxy: "", https_proxy: "", HTTP_PROXY: "", HTTPS_PROXY: "", ALL_PROXY: "" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A self-signed certificate for 127.0.0.1 and localhost, valid one day (PEM texts and the certificate's path). */
export async function selfSignedCertificate(): Promise<
  { cert: string; key: string; certPath: string; keyPath: string }
> {
  const dir = await Deno.makeTempDir({ prefix: "evtls" });
  const certPath = `${dir}/cert.pem`;
  const keyPath = `${dir}/key.pem`;
  const out = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      // An end-entity certificate (rustls refuses a CA certificate as a server's).
      "-addext",
      "basicConstraints=critical,CA:FALSE",
      "-keyout",
      keyPath,
      "-out",
      certPath,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`openssl failed: ${new TextDecoder().decode(out.stderr)}`);
  return {
    cert: await Deno.readTextFile(certPath),
    key: await Deno.readTextFile(keyPath),
    certPath,
    keyPath,
  };
}

/** Egress meshes and one proxy mesh on loopback, all seeing each other. */
export interface ProxySetup {
  egressMeshes: Mesh[];
  egresses: Egress[];
  proxyMesh: Mesh;
  proxy: Proxy;
  /** `http://127.0.0.1:<port>` of the proxy. */
  url: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * Starts `egressCount` egress nodes (allowing private destinations unless told) and a proxy
 * node bootstrapped to them, and waits until the proxy sees every egress node alive and each
 * egress node sees the proxy's `users` entry.
 */
export async function startProxySetup(
  egressCount: number,
  options: { allowPrivate?: boolean; proxy?: Partial<ProxyOptions> } = {},
): Promise<ProxySetup> {
  const network = generateNetworkConfig();
  const egressMeshes: Mesh[] = [];
  const egresses: Egress[] = [];
  for (let i = 0; i < egressCount; i++) {
    const mesh = await startLoopbackMesh(network, {
      bootstrap: egressMeshes.flatMap((m) => m.node.multiaddrs()),
    });
    egressMeshes.push(mesh);
    const egress = createEgress(egressComponentsOf(mesh), {
      announceIntervalMs: 500,
      allowPrivate: options.allowPrivate ?? true,
    });
    await egress.start();
    egresses.push(egress);
  }
  const proxyMesh = await startLoopbackMesh(network, {
    bootstrap: egressMeshes.flatMap((m) => m.node.multiaddrs()),
  });
  const proxy = createProxy(egressComponentsOf(proxyMesh), {
    listen: { hostname: "127.0.0.1", port: 0 },
    deadIntervalMs: 600_000,
    announceIntervalMs: 500,
    ...options.proxy,
  });
  await proxy.start();
  await waitFor(
    () =>
      egressMeshes.every((m) =>
        m.isUser(proxyMesh.peerId) &&
        proxyMesh.ledger.getKey(BUCKETS.egress, m.peerId) !== undefined &&
        proxyMesh.ledger.availableNodes(600_000).includes(m.peerId)
      ),
    "egress nodes alive on the proxy, the proxy's users entry on the egress nodes",
  );
  const port = proxy.address!.port;
  return {
    egressMeshes,
    egresses,
    proxyMesh,
    proxy,
    port,
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      await proxy.stop();
      for (const e of egresses) await e.stop();
      await Promise.allSettled([proxyMesh.stop(), ...egressMeshes.map((m) => m.stop())]);
    },
  };
}
