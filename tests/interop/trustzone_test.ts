/**
 * The trust zone between a Go EdgeVPN v0.35 node and ours (`--peerguard-mode go`), each in its
 * own network namespace, both holding the zone's ECDSA key (made by Go's `peergater
 * ecdsa-genkey`). In Go's mode (`--peerguard-mode go`) each admits the other from its signed
 * challenge on the public room, and with the gate turned on through both APIs, ledger writes
 * still cross (both are in the zone). In our bound mode Go still admits us (it verifies any
 * signed text) and we refuse Go's constant challenge.
 * Needs EDGEVPN_GO and root; skipped with the reason otherwise.
 */
import assert from "node:assert/strict";
import { CliProcess, eventually } from "../helpers/process.ts";
import { GoProcess, interopGoBinary, runGo, UnixApi, withGoPair } from "./go_edgevpn.ts";

const go = interopGoBinary("Go EdgeVPN trust-zone interop test");

/** Challenge rounds and Go's zone-copy refresh (`--peergate-interval`, seconds). */
const PEERGATE_INTERVAL_S = 2;

Deno.test({
  name:
    "interop trust zone (Go's mode): Go EdgeVPN and our node admit each other from their signed challenges, and gated ledger writes cross",
  ignore: go === undefined,
  fn: () => trustZone("go"),
});

Deno.test({
  name:
    "interop trust zone (our bound mode): Go EdgeVPN admits our bound challenge, ours refuses Go's constant one",
  ignore: go === undefined,
  fn: () => trustZone("bound"),
});

/** Whether our node logged admitting `peer` to the zone. */
function admittedBy(log: string, peer: string): boolean {
  return log.split("\n").some((l) =>
    l.includes("peer admitted to the trust zone") && l.includes(peer)
  );
}

async function trustZone(mode: "go" | "bound"): Promise<void> {
  const binary = go!.path;
  const keys = await runGo(binary, ["peergater", "ecdsa-genkey"]);
  const privateKey = keys.match(/^Private key: (\S+)$/m)?.[1];
  const publicKey = keys.match(/^Public key: (\S+)$/m)?.[1];
  assert.ok(privateKey && publicKey, keys);
  const scope = { prefix: "evt", subnet: 246, tempPrefix: "evtz" };
  await withGoPair(binary, scope, async ({ a: goSide, b: ourSide, processes, defer }) => {
    const [goId, ourId] = [goSide.id, ourSide.id];
    const apis: UnixApi[] = [];
    // The gate starts off (no --peergate), as a zone is bootstrapped: the auth key has to
    // reach every member before anyone can be admitted.
    const common = (side: typeof goSide) => [
      "api",
      ...side.flags,
      "--listen",
      `unix://${side.socket}`,
      "--peerguard",
      "--peergate-auth",
      JSON.stringify({ ecdsa: { private_key: privateKey } }),
      "--peergate-interval",
      String(PEERGATE_INTERVAL_S),
      "--ledger-announce-interval",
      "2",
      "--ledger-synchronization-interval",
      "1",
      "--dht=false",
      "--mdns=false",
    ];
    const goNode = new GoProcess(binary, common(goSide), {
      netns: goSide.ns.name,
      home: goSide.dir,
    });
    processes.push(goNode);
    const ours = new CliProcess(
      [...common(ourSide), "--peerguard-mode", mode, "--log-level", "info"],
      { netns: ourSide.ns.name },
    );
    processes.push(ours);
    try {
      await goNode.waitFor(/http server started/);
      await ours.waitFor(/API listening on/);
      const goApi = new UnixApi(goSide.socket);
      const ourApi = new UnixApi(ourSide.socket);
      apis.push(goApi, ourApi);
      defer(() => goApi.close());
      defer(() => ourApi.close());
      assert.equal(await goApi.get("/api/peergate"), false);
      assert.equal(await ourApi.get("/api/peergate"), false);

      // The zone's public key, written on the Go node, reaches ours through the ledger.
      await goApi.request("PUT", `/api/ledger/trustzoneAuth/ecdsa_1/${publicKey}`);
      const authKey = async (api: UnixApi) =>
        await api.get("/api/ledger/trustzoneAuth/ecdsa_1") as string;
      await eventually(
        async () => (await authKey(ourApi)) === JSON.stringify(publicKey),
        "the auth key on our node",
        30_000,
      );

      // Our ID in the zone: only Go's receiver can have put it there (ours never sees its own
      // challenges); Go's ID admitted by ours: our log says so.
      const zone = async (api: UnixApi) =>
        Object.keys(await api.get("/api/ledger/trustzone") as Record<string, string>).sort();
      await eventually(
        async () => (await zone(goApi)).includes(ourId.peerId),
        "our node admitted by the Go node",
        30_000,
      );
      if (mode === "bound") {
        // Go signs the constant text `challenge`: in our mode that admits nobody. Several of
        // Go's challenge rounds (2 s) pass after ours was admitted.
        await new Promise((r) => setTimeout(r, 6_000));
        assert.ok(!admittedBy(ours.log, goId.peerId), "our node admitted Go's constant challenge");
        assert.equal((await ours.stop()).code, 0, ours.log.slice(-2000));
        return;
      }
      await eventually(
        () => admittedBy(ours.log, goId.peerId),
        "the Go node admitted by ours",
        30_000,
      );
      await eventually(
        async () => (await zone(ourApi)).join() === [goId.peerId, ourId.peerId].sort().join(),
        "both in the zone on our node",
        30_000,
      );

      // Gates on: both are zone members, so ledger writes still cross in both directions. Go's
      // gate checks a copy of the zone that its updater refreshes every --peergate-interval (2 s,
      // on a backoff ticker): a message of ours gated before that copy names us is lost, and our
      // ledger answers the same divergence only once a minute. So the gate goes on once Go's copy
      // has certainly been refreshed since it admitted us.
      await new Promise((r) => setTimeout(r, 2 * PEERGATE_INTERVAL_S * 1000 + 1000));
      assert.equal(await goApi.request("PUT", "/api/peergate/enable"), true);
      assert.equal(await ourApi.request("PUT", "/api/peergate/enable"), true);
      // One write at a time: two writes at once fork the chain at one height, which neither
      // implementation resolves until a later write (no heartbeats run here).
      const key = (api: UnixApi, k: string) => api.get(`/api/ledger/interop/${k}`);
      await ourApi.request("PUT", "/api/ledger/interop/from-deno/gated");
      await eventually(
        async () => (await key(goApi, "from-deno")) === '"gated"',
        "our gated write on the Go node",
        30_000,
      );
      await goApi.request("PUT", "/api/ledger/interop/from-go/gated");
      await eventually(
        async () => (await key(ourApi, "from-go")) === '"gated"',
        "the Go node's gated write on ours",
        30_000,
      );
      assert.equal((await ours.stop()).code, 0, ours.log.slice(-2000));
    } catch (e) {
      if (Deno.env.get("TZ_TEST_LOGS")) {
        for (const p of [goNode, ours]) console.log(p.log.slice(-20_000), "\n-----");
        for (const api of apis) {
          console.log(api.socket, JSON.stringify(await api.get("/api/ledger").catch(String)));
          console.log(JSON.stringify(await api.get("/api/counters").catch(String)).slice(0, 4000));
        }
      }
      throw e;
    }
  });
}
