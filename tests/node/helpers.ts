/** Test support for node tests: loopback nodes, waiting for conditions. */
import { generateNetworkConfig } from "../../lib/config/token.ts";
import type { NetworkConfig } from "../../lib/config/network.ts";
import { createNode, type EdgeNode } from "../../lib/node/node.ts";
import type { NodeOptions } from "../../lib/node/options.ts";

export { generateNetworkConfig };

/** Options for a loopback-only node: no mDNS, no DHT, no bootstrap peers unless given. */
export function loopbackOptions(
  network: NetworkConfig,
  extra: Partial<NodeOptions> = {},
): NodeOptions {
  return {
    network,
    listenMaddrs: ["/ip4/127.0.0.1/tcp/0"],
    bootstrapPeers: [],
    mdns: false,
    dht: false,
    ...extra,
  };
}

/** Starts a loopback node. */
export async function startNode(
  network: NetworkConfig,
  extra: Partial<NodeOptions> = {},
): Promise<EdgeNode> {
  const node = await createNode(loopbackOptions(network, extra));
  await node.start();
  return node;
}

/** Stops every node, even if some fail. */
export async function stopAll(nodes: (EdgeNode | undefined)[]): Promise<void> {
  await Promise.allSettled(nodes.map((n) => n?.stop()));
}

/** Polls `condition` every 50 ms until it holds; throws `what` after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string | (() => string),
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      const text = typeof what === "string" ? what : what();
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${text}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Collects the text of every hub message a node receives. */
export function collectMessages(node: EdgeNode): string[] {
  const got: string[] = [];
  node.hub.addEventListener("message", (e) => got.push(new TextDecoder().decode(e.detail.data)));
  return got;
}
