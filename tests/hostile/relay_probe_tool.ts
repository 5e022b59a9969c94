/**
 * A libp2p host WITHOUT the network token that asks a relay for a slot and for a circuit to a
 * member, as circuit relay v2 clients do (test-only; run inside a namespace):
 *   deno run -A tests/hostile/relay_probe_tool.ts <relay multiaddr with /p2p/> <member peer ID>
 * Prints {"peerId","reserve","connect"}: the relay's status code for each request (100 is OK,
 * 202 PERMISSION_DENIED), or the error text when the relay gave no status.
 */
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { peerIdFromString } from "@libp2p/peer-id";
import { tcp } from "@libp2p/tcp";
import { pbStream } from "@libp2p/utils";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p } from "libp2p";
import { installDenoCompat } from "../../lib/node/deno_compat.ts";
import {
  HOP_PROTOCOL,
  HopCodec,
  type HopMessage,
  HopType,
  MAX_RELAY_MESSAGE,
} from "../../lib/node/relay_pb.ts";

const [relayText, memberText] = Deno.args;
installDenoCompat();
const host = await createLibp2p({
  addresses: { listen: [] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
});
try {
  const connection = await host.dial(multiaddr(relayText), { signal: AbortSignal.timeout(10_000) });
  // One hop request on a stream of its own; the relay's answer is a STATUS message.
  const ask = async (request: HopMessage): Promise<number | string> => {
    const signal = AbortSignal.timeout(10_000);
    try {
      const stream = await connection.newStream(HOP_PROTOCOL, { signal });
      const pb = pbStream(stream, { maxDataLength: MAX_RELAY_MESSAGE }).pb(HopCodec);
      await pb.write(request, { signal });
      const answer = await pb.read({ signal });
      await stream.close({ signal }).catch(() => {});
      return answer.status ?? "no status";
    } catch (e) {
      return String(e);
    }
  };
  const reserve = await ask({ type: HopType.RESERVE });
  const connect = await ask({
    type: HopType.CONNECT,
    peer: { id: peerIdFromString(memberText).toMultihash().bytes, addrs: [] },
  });
  console.log(JSON.stringify({ peerId: host.peerId.toString(), reserve, connect }));
} finally {
  await host.stop();
}
