/**
 * The ledger between a Go EdgeVPN v0.35 node and ours, each in its own network namespace on a
 * veth link, both `api` nodes with heartbeats, each bootstrapping only from the other: heartbeats
 * (signed, under ownership enforcement) and keys written through either API reach the other.
 * Needs EDGEVPN_GO and root; skipped with the reason otherwise.
 */
import assert from "node:assert/strict";
import { createNamespacePair } from "../../scripts/netns.ts";
import { eventually, type LoggedProcess } from "../helpers/process.ts";
import { CliProcess } from "../helpers/process.ts";
import {
  droppedMessages,
  GoProcess,
  interopGoBinary,
  unexpectedViolations,
  UnixApi,
  writeNodeKey,
} from "./go_edgevpn.ts";

const go = interopGoBinary("Go EdgeVPN ledger interop tests");

/** Fast ledger rounds and heartbeats; no DHT, no mDNS: each node knows only the other. */
const QUICK = [
  "--ledger-announce-interval",
  "2",
  "--ledger-synchronization-interval",
  "1",
  "--aliveness-healthcheck-interval",
  "2",
  "--dht=false",
  "--mdns=false",
];

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
  const pair = await createNamespacePair("evg", 240);
  const dir = await Deno.makeTempDir({ prefix: "evgo" });
  const processes: LoggedProcess[] = [];
  const apis: UnixApi[] = [];
  try {
    const generated = await new Deno.Command(binary, { args: ["-g", "-b"], clearEnv: true })
      .output();
    assert.ok(generated.success, "Go generates a token");
    const token = new TextDecoder().decode(generated.stdout).trim();
    const goId = await writeNodeKey(`${dir}/go`);
    const ourId = await writeNodeKey(`${dir}/deno`);
    const goAddr = `/ip4/${pair.a.address}/tcp/4001`;
    const ourAddr = `/ip4/${pair.b.address}/tcp/4001`;
    const common = (self: string, peer: string, keyDir: string, socket: string) => [
      "api",
      "--enable-healthchecks",
      "--token",
      token,
      "--listen",
      `unix://${socket}`,
      "--listen-maddrs",
      self,
      "--discovery-bootstrap-peers",
      peer,
      "--privkey-cache",
      "--privkey-cache-dir",
      keyDir,
      "--ownership",
      mode,
      ...QUICK,
    ];
    const goNode = new GoProcess(
      binary,
      common(goAddr, `${ourAddr}/p2p/${ourId.peerId}`, `${dir}/go`, `${dir}/go.sock`),
      { netns: pair.a.name, home: `${dir}/go` },
    );
    processes.push(goNode);
    const ours = new CliProcess(
      common(ourAddr, `${goAddr}/p2p/${goId.peerId}`, `${dir}/deno`, `${dir}/deno.sock`),
      { netns: pair.b.name },
    );
    processes.push(ours);
    await goNode.waitFor(/http server started/);
    await ours.waitFor(/API listening on/);
    const goApi = new UnixApi(`${dir}/go.sock`);
    const ourApi = new UnixApi(`${dir}/deno.sock`);
    apis.push(goApi, ourApi);
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
  } finally {
    for (const api of apis) api.close();
    for (const p of processes) await p.kill();
    await pair.close();
    await Deno.remove(dir, { recursive: true });
  }
}
