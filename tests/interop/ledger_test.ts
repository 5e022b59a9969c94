/**
 * The ledger between a Go EdgeVPN v0.35 node and ours, each in its own network namespace on a
 * veth link, both `api` nodes with heartbeats, each bootstrapping only from the other: heartbeats
 * (signed, under ownership enforcement) and keys written through either API reach the other.
 * Needs EDGEVPN_GO and root; skipped with the reason otherwise.
 */
import assert from "node:assert/strict";
import { CliProcess, eventually } from "../helpers/process.ts";
import { QUICK_FLAGS } from "../helpers/node_pair.ts";
import {
  droppedMessages,
  GoProcess,
  interopGoBinary,
  unexpectedViolations,
  UnixApi,
  withGoPair,
} from "./go_edgevpn.ts";

const go = interopGoBinary("Go EdgeVPN ledger interop tests");

/** The latest second tick of an API write's announce loop: 5 s + 50% jitter, and a margin. */
const ANNOUNCE_TICK_MAX_MS = 8_000;

for (const mode of ["enforce", "off"] as const) {
  Deno.test({
    name:
      `interop ledger (ownership ${mode}): Go EdgeVPN and our node take each other's heartbeats and API writes`,
    ignore: go === undefined,
    fn: () => ledgerBothWays(mode),
  });
}

async function ledgerBothWays(mode: "enforce" | "off"): Promise<void> {
  const binary = go!.path;
  const scope = { prefix: "evg", subnet: 240, tempPrefix: "evgo" };
  await withGoPair(binary, scope, async ({ a: goSide, b: ourSide, processes, defer }) => {
    const goId = goSide.id;
    const ourId = ourSide.id;
    const args = (flags: string[], socket: string) => [
      "api",
      "--enable-healthchecks",
      ...flags,
      "--listen",
      `unix://${socket}`,
      "--ownership",
      mode,
      ...QUICK_FLAGS,
    ];
    const goNode = new GoProcess(binary, args(goSide.flags, goSide.socket), {
      netns: goSide.ns.name,
      home: goSide.dir,
    });
    processes.push(goNode);
    const ours = new CliProcess(args(ourSide.flags, ourSide.socket), {
      netns: ourSide.ns.name,
    });
    processes.push(ours);
    await goNode.waitFor(/http server started/);
    await ours.waitFor(/API listening on/);
    const goApi = new UnixApi(goSide.socket);
    const ourApi = new UnixApi(ourSide.socket);
    defer(() => goApi.close());
    defer(() => ourApi.close());
    assert.equal((await goApi.get("/api/summary") as { NodeID: string }).NodeID, goId.peerId);
    assert.equal((await ourApi.get("/api/summary") as { NodeID: string }).NodeID, ourId.peerId);

    // An API write (Go's Persist, and ours) re-adds the key at its next announce tick when the
    // key is missing (5 s ±50% after the PUT), then stops: a delete issued before that tick is
    // undone by design, so the delete below waits until the writer's tick has passed.
    const key = (api: UnixApi, path: string) => api.get(`/api/ledger/interop/${path}`);
    assert.deepEqual(await goApi.request("PUT", "/api/ledger/interop/from-go/world"), {
      State: "Announcing",
    });
    const writerDone = Date.now() + ANNOUNCE_TICK_MAX_MS;

    // Heartbeats are signed entries of an owned bucket: Go (enforce) verifies ours.
    const heartbeats = async (api: UnixApi) =>
      Object.keys(await api.get("/api/ledger/healthcheck") as Record<string, string>);
    await eventually(
      async () => (await heartbeats(goApi)).includes(ourId.peerId),
      "our heartbeat on the Go node",
      60_000,
    );
    await eventually(
      async () => (await heartbeats(ourApi)).includes(goId.peerId),
      "the Go node's heartbeat on ours",
      60_000,
    );
    const nodes = async (api: UnixApi) =>
      (await api.get("/api/nodes") as { ID: string }[]).map((p) => p.ID).sort();
    assert.deepEqual(await nodes(goApi), [goId.peerId, ourId.peerId].sort());
    assert.deepEqual(await nodes(ourApi), [goId.peerId, ourId.peerId].sort());

    // A key written through one API is served by the other, and a delete travels too.
    assert.deepEqual(await ourApi.request("PUT", "/api/ledger/interop/from-deno/hello"), {
      State: "Announcing",
    });
    await eventually(
      async () => (await key(goApi, "from-deno")) === '"hello"',
      "our key on the Go node",
    );
    await eventually(
      async () => (await key(ourApi, "from-go")) === '"world"',
      "the Go node's key on ours",
    );
    await new Promise((r) => setTimeout(r, Math.max(0, writerDone - Date.now())));
    await ourApi.request("DELETE", "/api/ledger/interop/from-go");
    await eventually(
      async () => (await key(goApi, "from-go")) === "",
      "our delete of the Go node's key on the Go node",
    );
    assert.equal(await key(ourApi, "from-go"), "");
    assert.equal(await key(goApi, "from-deno"), '"hello"');

    assert.deepEqual(await droppedMessages(ourApi), {}, "messages our node dropped");
    assert.deepEqual(unexpectedViolations(goNode.log), [], "violations on the Go node");
    assert.deepEqual(unexpectedViolations(ours.log), [], "violations on our node");
    assert.equal((await ours.stop()).code, 0, ours.log.slice(-2000));
  });
}
