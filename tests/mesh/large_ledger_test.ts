/**
 * Issue 11 acceptance, sync never stops silently: a ledger of 2.5 MiB compressed reaches two
 * peers within two sync intervals; past what one gossip message carries, the write is refused.
 */
import assert from "node:assert/strict";
import { generateNetworkConfig } from "../../lib/config/token.ts";
import { LedgerLimitError } from "../../lib/ledger/limits.ts";
import { encodeBlockMessage } from "../../lib/ledger/wire.ts";
import { waitFor } from "../node/helpers.ts";
import { startLoopbackMesh } from "./helpers.ts";

/** The ledger's default sync interval (Go's `--ledger-syncronization-interval`, 10 s). */
const SYNC_MS = 10_000;

/** `n` values of base64 random bytes (gzip cannot shrink them much). */
function randomValues(n: number, bytes: number): Record<string, string> {
  const out: Record<string, string> = {};
  const b = new Uint8Array(bytes);
  for (let i = 0; i < n; i++) {
    for (let at = 0; at < b.length; at += 65536) crypto.getRandomValues(b.subarray(at, at + 65536));
    let text = "";
    for (let at = 0; at < b.length; at += 8192) {
      text += String.fromCharCode(...b.subarray(at, at + 8192));
    }
    out[`blob${i}`] = btoa(text);
  }
  return out;
}

Deno.test("a ledger of 2.5 MiB compressed reaches two peers within two sync intervals", async () => {
  const network = generateNetworkConfig();
  // Heartbeats as Go's default (120 s) rather than the tests' usual second: a heartbeat is a
  // new head, which peers' digests then ask for.
  const options = { syncIntervalMs: SYNC_MS, aliveIntervalMs: 120_000 };
  const a = await startLoopbackMesh(network, options);
  const address = `${a.node.multiaddrs()[0]}`;
  const b = await startLoopbackMesh(network, { ...options, bootstrap: [address] });
  const c = await startLoopbackMesh(network, { ...options, bootstrap: [address] });
  try {
    await waitFor(
      () => [b, c].every((m) => m.ledger.getKey("healthcheck", a.peerId) !== undefined),
      "the peers to sync",
      30_000,
    );
    // 40 values of 48 KiB random bytes: ~2.5 MiB once gzipped (base64 grows them by 4/3).
    const values = randomValues(56, 48 << 10);
    const t0 = Date.now();
    await a.ledger.add("tests", values);
    await waitFor(
      () => [b, c].every((m) => m.ledger.getKey("tests", "blob55") !== undefined),
      "the large ledger on both peers",
      2 * SYNC_MS,
    );
    const ms = Date.now() - t0;
    const compressed = (await encodeBlockMessage(a.ledger.lastBlock())).length;
    console.log(
      `  ${(compressed / 2 ** 20).toFixed(2)} MiB compressed reached 2 peers in ${ms} ms ` +
        `(sync interval ${SYNC_MS} ms)`,
    );
    assert.ok(compressed >= 2.5 * 2 ** 20, `${compressed} bytes compressed`);
    assert.equal(a.ledger.counters.sendFailures, 0);
    for (const m of [b, c]) {
      assert.equal(m.ledger.getKey("tests", "blob0"), a.ledger.getKey("tests", "blob0"));
    }
  } finally {
    await c.stop();
    await b.stop();
    await a.stop();
  }
});

Deno.test("past what one gossip message carries, the write is refused with a clear error", async () => {
  // A token with max_message_size 1 MiB: blocks up to ~512 KiB compressed (sealed hex doubles).
  const network = { ...generateNetworkConfig(), maxMessageSize: 1 << 20 };
  const a = await startLoopbackMesh(network, { syncIntervalMs: SYNC_MS });
  try {
    const limit = a.node.hub.maxPayloadBytes;
    assert.ok(limit < 512 << 10);
    await a.ledger.add("tests", randomValues(4, 48 << 10));
    const error = await a.ledger.add("tests", randomValues(12, 48 << 10)).then(
      () => undefined,
      (e) => e,
    );
    assert.ok(error instanceof LedgerLimitError, String(error));
    assert.equal(error.code, "LEDGER_TOO_LARGE");
    assert.match(error.message, /above the \d+ one gossip message carries/);
    assert.equal(a.ledger.getKey("tests", "blob5"), undefined, "nothing of it was written");
    assert.equal(a.ledger.counters.sendFailures, 0, "nothing was sent to be dropped");
  } finally {
    await a.stop();
  }
});
