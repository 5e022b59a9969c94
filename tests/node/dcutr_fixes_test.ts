/** The relayed connection DCUtR replaced is closed only once the streams that stay have ended. */
import assert from "node:assert/strict";
import type { Connection, Stream } from "@libp2p/interface";
import { closeRelayedWhenIdle } from "../../lib/node/dcutr_fixes.ts";

/** A stream stand-in: a protocol, a status, and the `close` event libp2p streams send. */
function fakeStream(protocol: string): Stream & { end(): void } {
  const stream = Object.assign(new EventTarget(), {
    protocol,
    status: "open",
    end() {
      stream.status = "closed";
      stream.dispatchEvent(new Event("close"));
    },
  });
  return stream as unknown as Stream & { end(): void };
}

/** A connection stand-in that records its closes. */
function fakeConnection(streams: Stream[]) {
  const closes: unknown[] = [];
  const connection = {
    status: "open",
    get streams() {
      return streams.filter((s) => s.status !== "closed");
    },
    close(options?: unknown) {
      closes.push(options);
      connection.status = "closed";
      return Promise.resolve();
    },
    abort() {
      connection.status = "closed";
    },
  };
  return { connection: connection as unknown as Connection, closes, raw: connection };
}

/** DCUtR's two paths to closing the relayed connection, as `@libp2p/dcutr` 3.0 has them. */
function fakeDcutr() {
  return {
    upgradeInbound(relayed: Connection) {
      return relayed.close({ signal: AbortSignal.timeout(5_000) });
    },
    handleIncomingUpgrade(_stream: Stream, relayed: Connection) {
      return relayed.close();
    },
  };
}

const SERVICE = "/edgevpn/service/1";
const stays = (s: Stream) => s.protocol === SERVICE;

Deno.test("DCUtR closes an idle relayed connection at once, as before", async () => {
  const dcutr = fakeDcutr();
  assert.ok(closeRelayedWhenIdle(dcutr, stays));
  const vpn = fakeStream("/edgevpn/fast/1");
  const { connection, closes } = fakeConnection([vpn]);
  await dcutr.upgradeInbound(connection);
  assert.equal(closes.length, 1);
  assert.ok((closes[0] as { signal?: AbortSignal }).signal instanceof AbortSignal);
});

Deno.test("DCUtR leaves a relayed connection open until the last stream that stays has ended", async () => {
  const dcutr = fakeDcutr();
  closeRelayedWhenIdle(dcutr, stays);
  const first = fakeStream(SERVICE);
  const second = fakeStream(SERVICE);
  const vpn = fakeStream("/edgevpn/fast/1");
  const streams = [first, vpn, second];
  const { connection, closes } = fakeConnection(streams);
  await dcutr.handleIncomingUpgrade(fakeStream("/libp2p/dcutr"), connection);
  assert.equal(closes.length, 0);
  assert.equal(connection.status, "open");
  first.end();
  assert.equal(closes.length, 0);
  // A stream that stays, opened on it meanwhile, is waited for too.
  const late = fakeStream(SERVICE);
  streams.push(late);
  second.end();
  assert.equal(closes.length, 0);
  late.end();
  assert.equal(closes.length, 1);
});

Deno.test("a relayed connection that closes by itself meanwhile is left alone", async () => {
  const dcutr = fakeDcutr();
  closeRelayedWhenIdle(dcutr, stays);
  const session = fakeStream(SERVICE);
  const { connection, closes, raw } = fakeConnection([session]);
  await dcutr.upgradeInbound(connection);
  raw.status = "closed";
  session.end();
  assert.equal(closes.length, 0);
});

Deno.test("a DCUtR service of another shape is reported, not patched", () => {
  assert.equal(closeRelayedWhenIdle({}, stays), false);
  assert.equal(closeRelayedWhenIdle(undefined, stays), false);
});
