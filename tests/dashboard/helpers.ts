/** Two loopback nodes, each serving the API and dashboard as the commands start them. */
import type { ApiServer } from "../../lib/api/server.ts";
import { readApiToken } from "../../lib/api/auth.ts";
import { startNodeApi } from "../../lib/commands/api_server.ts";
import { resolveSettings } from "../../lib/config/settings.ts";
import { generateNetworkConfig } from "../../lib/config/token.ts";
import type { Mesh } from "../../lib/mesh/mesh.ts";
import { silentLogger } from "../../lib/util/logger.ts";
import { startLoopbackMesh } from "../mesh/helpers.ts";
import { waitFor } from "../node/helpers.ts";

/** One node of {@link startDashboardPair}. */
export interface DashboardNode {
  mesh: Mesh;
  api: ApiServer;
  base: string;
  /** The one-time login link the node printed. */
  loginLink: string;
  token: string;
}

/** Two connected nodes with machines entries (as their VPNs would write) and APIs. */
export interface DashboardPair {
  a: DashboardNode;
  b: DashboardNode;
  close(): Promise<void>;
}

/**
 * Starts two meshes on loopback, writes a `machines` entry for each, and serves the API and
 * dashboard of both on 127.0.0.1 with tokens in temporary state directories.
 */
export async function startDashboardPair(): Promise<DashboardPair> {
  const network = generateNetworkConfig(360);
  const dir = await Deno.makeTempDir({ prefix: "edgevpn-dash-" });
  const meshes: Mesh[] = [];
  const apis: ApiServer[] = [];
  const close = async () => {
    for (const api of apis) await api.stop();
    for (const m of meshes.reverse()) await m.stop();
    await Deno.remove(dir, { recursive: true });
  };
  try {
    const a = await startLoopbackMesh(network);
    meshes.push(a);
    const b = await startLoopbackMesh(network, { bootstrap: a.node.multiaddrs() });
    meshes.push(b);
    await waitFor(() => a.node.topicPeers().includes(b.peerId), "b on a's topic");
    const nodes: DashboardNode[] = [];
    for (const [i, mesh] of [a, b].entries()) {
      await mesh.ledger.add("machines", {
        [`10.1.0.${i + 1}`]: {
          PeerID: mesh.peerId,
          Hostname: `node-${"ab"[i]}`,
          OS: "linux",
          Arch: "amd64",
          Address: `10.1.0.${i + 1}`,
          Version: "v0.1.0",
        },
      });
      const printed: string[] = [];
      const stateDir = `${dir}/${i}`;
      const api = await startNodeApi(mesh, {
        listen: "127.0.0.1:0",
        settings: { ...resolveSettings({}, {}), stateDir },
        home: undefined,
        logger: silentLogger,
        out: (t) => printed.push(t),
      });
      apis.push(api);
      const base = `http://127.0.0.1:${(api.address as { port: number }).port}`;
      const loginLink = /(http:\S+\/login\?code=\S+)/.exec(printed.join(""))![1];
      nodes.push({ mesh, api, base, loginLink, token: (await readApiToken(stateDir))! });
    }
    await waitFor(
      () => [a, b].every((m) => m.ledger.currentData().get("machines")?.size === 2),
      "both machines entries on both nodes",
    );
    return { a: nodes[0], b: nodes[1], close };
  } catch (e) {
    await close();
    throw e;
  }
}
