/**
 * A hostile libp2p host WITHOUT the network token, run as a child process by the hostile
 * tests: it dials the victim, learns the gossip topic from the victim's subscription
 * announcements, subscribes to it and publishes junk there. When the victim drops it, it comes
 * back under a new identity (as a real attacker would), until every message is sent or it
 * cannot get in any more. Built with the same packages as the node; test-only.
 *
 * A message counts as sent once GossipSub handed it to the connection to the victim.
 * Prints one JSON event per line: `topic`, `progress`, `done`.
 */
import { multiaddr } from "@multiformats/multiaddr";
import { installDenoCompat } from "../../lib/node/deno_compat.ts";
import { type OutsiderHost, startOutsider, victimTopics } from "./outsider.ts";

const emit = (event: string, fields: Record<string, unknown> = {}) =>
  console.log(JSON.stringify({ event, ...fields }));

/** What the test asks for. */
export interface OutsiderConfig {
  /** The victim's multiaddr, with `/p2p/`. */
  victim: string;
  /** Messages to publish. */
  count: number;
  /** Bytes per message. */
  bytes: number;
  /** Stop after this long even if not everything was sent (ms). */
  deadlineMs: number;
  /** Identities to try at most (a new one each time the victim drops us). */
  maxIdentities: number;
  /** Identities attacking at once. */
  parallel: number;
}

/** Bytes queued on the gossip stream to `peer`, not yet taken by the connection. */
function queuedBytes(host: OutsiderHost, peer: string): number {
  const out = (host.services.pubsub as unknown as {
    streamsOutbound: Map<string, { rawStream?: { writeBufferLength?: number } }>;
  }).streamsOutbound.get(peer);
  return out?.rawStream?.writeBufferLength ?? 0;
}

async function main(config: OutsiderConfig): Promise<void> {
  installDenoCompat();
  const victim = multiaddr(config.victim);
  const victimId = config.victim.split("/p2p/")[1];
  const junk = crypto.getRandomValues(new Uint8Array(Math.min(config.bytes, 65536)));
  const deadline = Date.now() + config.deadlineMs;
  const totals = { sent: 0, identities: 0, refusedDials: 0 };
  let topic = "";
  // One identity: dial, learn the topic, then send until the victim is no longer a recipient.
  const attack = async (): Promise<void> => {
    const payload = new Uint8Array(config.bytes);
    for (let at = 0; at < payload.length; at += junk.length) {
      payload.set(junk.subarray(0, payload.length - at), at);
    }
    totals.identities++;
    const host = await startOutsider();
    try {
      try {
        await host.dial(victim, { signal: AbortSignal.timeout(5_000) });
      } catch {
        // Refused (the victim's per-address inbound rate limit, most often): as an attacker
        // would, wait a moment before the next identity instead of burning the budget.
        totals.refusedDials++;
        await new Promise((r) => setTimeout(r, 250));
        return;
      }
      const topics = await victimTopics(host, victimId, 5_000);
      if (topics.length === 0) return;
      if (topic === "") emit("topic", { topics });
      topic = topics[0];
      host.services.pubsub.subscribe(topic);
      while (totals.sent < config.count && Date.now() < deadline) {
        // Only as fast as the connection takes it: the point is the victim's work, not ours.
        while (queuedBytes(host, victimId) > 8 * config.bytes && host.getConnections().length) {
          await new Promise((r) => setTimeout(r, 5));
        }
        // Every message differs (seqno, first bytes), so none is a duplicate to the victim.
        payload[0] = totals.sent & 0xff;
        payload[1] = (totals.sent >> 8) & 0xff;
        let handed;
        try {
          handed = await host.services.pubsub.publish(topic, payload);
        } catch {
          return;
        }
        // Counted only once handed to the connection to the victim; dropped: a new identity.
        if (!handed.recipients.some((p) => p.toString() === victimId)) return;
        totals.sent++;
        if (totals.sent % 50 === 0) emit("progress", totals);
      }
      // Let what is queued reach the victim before this identity goes away.
      const drainBy = Date.now() + 2_000;
      while (
        queuedBytes(host, victimId) > 0 && host.getConnections().length && Date.now() < drainBy
      ) {
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      await host.stop();
    }
  };
  await Promise.all(
    Array.from({ length: config.parallel }, async () => {
      while (
        totals.sent < config.count && totals.identities < config.maxIdentities &&
        Date.now() < deadline
      ) await attack();
    }),
  );
  emit("done", totals);
}

if (import.meta.main) {
  await main(JSON.parse(Deno.args[0]) as OutsiderConfig);
  Deno.exit(0);
}
