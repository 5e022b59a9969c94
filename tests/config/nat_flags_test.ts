/** Go's NAT, relay and trust-zone flags turn into the node's options (or clear errors). */
import assert from "node:assert/strict";
import { natOptionsOf } from "../../lib/commands/nat.ts";
import { trustZoneOptionsOf } from "../../lib/commands/trustzone.ts";
import { resolveSettings } from "../../lib/config/settings.ts";
import { UsageError } from "../../lib/util/errors.ts";
import { createLogger, type LogRecord } from "../../lib/util/logger.ts";

function withLog() {
  const records: LogRecord[] = [];
  return { records, logger: createLogger({ level: "debug", sink: (r) => records.push(r) }) };
}

Deno.test("Go's defaults turn every NAT feature on, with Go's relay limits", () => {
  const nat = natOptionsOf(resolveSettings({}, {}), withLog().logger);
  assert.deepEqual(nat.relayService, {
    membersOnly: true,
    maxDataBytes: 1 << 30,
    maxDurationMs: 30 * 60_000,
    maxCircuitsPerPeer: 64,
    reservationTtlMs: 3_600_000,
    maxRateBytes: 10 << 20,
  });
  assert.deepEqual(nat.autoRelay, { staticRelays: [], staticOnly: false, intervalMs: 300_000 });
  assert.equal(nat.holePunch, true);
  assert.deepEqual(nat.natService, { rateLimit: { global: 10, perPeer: 10, intervalMs: 60_000 } });
  assert.equal(nat.natMap, true);
  assert.equal(nat.limitedConnections, true);
});

Deno.test("flags and environment variables change the NAT options", () => {
  const relay = "/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWQFrvqRrmDaeRmkS1QUVS5ZYRK3PbNo7oTtcH7F79WtLH";
  const s = resolveSettings({
    relayService: "false",
    autorelayStaticPeer: [relay],
    autorelayStaticOnly: true,
    holepunch: "false",
    natRatelimit: "false",
    transientConn: "false",
  }, { EDGEVPNNATMAP: "false", EDGEVPNNATSERVICE: "true" });
  const nat = natOptionsOf(s, withLog().logger);
  assert.equal(nat.relayService, false);
  assert.deepEqual(nat.autoRelay, { staticRelays: [relay], staticOnly: true, intervalMs: 300_000 });
  assert.equal(nat.holePunch, false);
  assert.deepEqual(nat.natService, { rateLimit: undefined });
  assert.equal(nat.natMap, false);
  assert.equal(nat.limitedConnections, false);
});

Deno.test("flags without a counterpart here are warned about, bad values refused", () => {
  const { records, logger } = withLog();
  natOptionsOf(
    resolveSettings({ relayServiceBufferSize: "1024", relayServiceAclRefresh: "1m" }, {}),
    logger,
  );
  assert.equal(records.filter((r) => r.level === "warn").length, 2);
  assert.throws(
    () =>
      natOptionsOf(resolveSettings({ autorelayStaticPeer: ["/ip4/1.2.3.4/tcp/1"] }, {}), logger),
    (e) => e instanceof UsageError && /\/p2p\/<peer id>/.test(e.message),
  );
  assert.throws(
    () => natOptionsOf(resolveSettings({ relayServiceMaxCircuits: "-1" }, {}), logger),
    UsageError,
  );
});

Deno.test("trust-zone flags: off without --peerguard, Go's auth JSON parsed, bad input refused", () => {
  assert.equal(trustZoneOptionsOf(resolveSettings({ peergate: true }, {})), undefined);
  const tz = trustZoneOptionsOf(resolveSettings({
    peerguard: true,
    peergate: true,
    peergateAuth: '{"ecdsa":{"private_key":"abc"}}',
  }, {}));
  assert.deepEqual(tz, {
    mode: "bound",
    gate: true,
    relaxed: false,
    autoclean: false,
    intervalMs: 120_000,
    ecdsaPrivateKey: "abc",
  });
  assert.equal(
    trustZoneOptionsOf(resolveSettings({ peerguard: true, peerguardMode: "go" }, {}))?.mode,
    "go",
  );
  for (const auth of ["{", '{"rsa":{}}', '{"ecdsa":{}}', "[]"]) {
    assert.throws(
      () => trustZoneOptionsOf(resolveSettings({ peerguard: true, peergateAuth: auth }, {})),
      UsageError,
      auth,
    );
  }
  assert.throws(
    () => trustZoneOptionsOf(resolveSettings({ peerguard: true, peerguardMode: "weak" }, {})),
    UsageError,
  );
});
