/** A test-only libp2p host without the network token, built with the node's packages. */
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { type GossipSub, gossipsub, StrictSign } from "@libp2p/gossipsub";
import { identify } from "@libp2p/identify";
import type { Libp2p } from "@libp2p/interface";
import { tcp } from "@libp2p/tcp";
import { createLibp2p } from "libp2p";
import { installDenoCompat } from "../../lib/node/deno_compat.ts";

/** A libp2p host with GossipSub and no network token. */
export type OutsiderHost = Libp2p<{ pubsub: GossipSub; identify: unknown }>;

/**
 * Starts a host built like a node (TCP, Noise, Yamux, identify, GossipSub with StrictSign) but
 * holding no token, listening nowhere.
 */
export async function startOutsider(): Promise<OutsiderHost> {
  installDenoCompat();
  return await createLibp2p({
    addresses: { listen: [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      pubsub: gossipsub({
        globalSignaturePolicy: StrictSign,
        allowPublishToZeroTopicPeers: true,
        floodPublish: true,
        maxInboundDataLength: 64 << 20,
      }),
    },
  }) as unknown as OutsiderHost;
}

/** Waits until the victim announced a topic; resolves with its topics (current first). */
export function victimTopics(
  host: OutsiderHost,
  victimId: string,
  timeoutMs: number,
): Promise<string[]> {
  return new Promise((resolve) => {
    // The router's record of who announced which topic.
    const announced = (host.services.pubsub as unknown as { topics: Map<string, Set<string>> })
      .topics;
    const check = () => [...announced].filter(([, peers]) => peers.has(victimId)).map(([t]) => t);
    const timer = setTimeout(() => {
      host.services.pubsub.removeEventListener("subscription-change", onChange);
      resolve(check());
    }, timeoutMs);
    const onChange = () => {
      const t = check();
      if (t.length === 0) return;
      clearTimeout(timer);
      host.services.pubsub.removeEventListener("subscription-change", onChange);
      resolve(t);
    };
    host.services.pubsub.addEventListener("subscription-change", onChange);
    onChange();
  });
}
