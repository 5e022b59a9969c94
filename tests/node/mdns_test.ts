import assert from "node:assert/strict";
import { generateIdentity } from "../../lib/crypto/identity.ts";
import { MdnsDiscovery, type MdnsPeer } from "../../lib/node/mdns.ts";
import { encodeDnsMessage, RR } from "../../lib/node/mdns_packet.ts";

type Received = [Uint8Array, Deno.Addr];

/** A UDP socket whose receives are fed by the test: each receive takes the next step. */
class ScriptedSocket {
  readonly #steps: (() => Received)[] = [];
  readonly #waiting: PromiseWithResolvers<Received>[] = [];
  #closed = false;

  /** Hands `step`'s result (or what it throws) to the current or next receive. */
  feed(step: () => Received): void {
    const w = this.#waiting.shift();
    if (w === undefined) this.#steps.push(step);
    else run(step, w);
  }

  receive(): Promise<Received> {
    const w = Promise.withResolvers<Received>();
    if (this.#closed) w.reject(new Deno.errors.BadResource("closed"));
    else if (this.#steps.length > 0) run(this.#steps.shift()!, w);
    else this.#waiting.push(w);
    return w.promise;
  }

  send(bytes: Uint8Array): Promise<number> {
    return Promise.resolve(bytes.length);
  }

  joinMulticastV4(): Promise<{ setTTL(ttl: number): Promise<void> }> {
    return Promise.resolve({ setTTL: () => Promise.resolve() });
  }

  close(): void {
    this.#closed = true;
    for (const w of this.#waiting.splice(0)) w.reject(new Deno.errors.BadResource("closed"));
  }
}

function run(step: () => Received, w: PromiseWithResolvers<Received>): void {
  try {
    w.resolve(step());
  } catch (e) {
    w.reject(e);
  }
}

Deno.test("an mDNS socket error pauses the receive loop; the next packet is still read", async () => {
  const other = await generateIdentity();
  const sockets: ScriptedSocket[] = [];
  const found: MdnsPeer[] = [];
  const { promise: peerSeen, resolve } = Promise.withResolvers<void>();
  const mdns = new MdnsDiscovery({
    serviceName: "svc",
    peerId: (await generateIdentity()).peerId,
    addresses: () => [],
    onPeer: (p) => {
      found.push(p);
      resolve();
    },
    interfaces: () => ["10.9.9.9"],
    listen: (() => {
      const s = new ScriptedSocket();
      sockets.push(s);
      return s as unknown as Deno.DatagramConn;
    }) as typeof Deno.listenDatagram,
  });
  const addr = `/ip4/10.9.9.8/tcp/4001/p2p/${other.peerId}`;
  const response = encodeDnsMessage({
    id: 0,
    response: true,
    authoritative: true,
    questions: [],
    answers: [{ name: "peer.svc.local.", type: RR.TXT, ttl: 120, data: [`dnsaddr=${addr}`] }],
    authorities: [],
    additionals: [],
  });
  const from: Deno.NetAddr = { transport: "udp", hostname: "10.9.9.8", port: 5353 };
  await mdns.start();
  // The main socket reports an error (as an ICMP port unreachable does), then gets a response.
  sockets[0].feed(() => {
    throw new Error("Connection refused (os error 111)");
  });
  sockets[0].feed(() => [response, from]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      peerSeen,
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("the response after the error was not read")),
          5000,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    await mdns.stop();
  }
  assert.deepEqual(found, [{ id: other.peerId, addrs: [addr] }]);
  assert.equal(mdns.receiveErrors, 1);
});
