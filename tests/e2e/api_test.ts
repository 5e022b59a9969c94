import assert from "node:assert/strict";
import { readApiToken } from "../../lib/api/auth.ts";
import { encodeToken, generateNetworkConfig } from "../../lib/config/token.ts";
import { CliProcess, eventually } from "../helpers/process.ts";

const UNREACHABLE = "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";

async function getJson(url: string, client?: Deno.HttpClient): Promise<unknown> {
  const res = await fetch(url, { client });
  return await res.json();
}

Deno.test("api: a key PUT on one node is served by the other, over TCP and a unix socket", async () => {
  const dir = await Deno.makeTempDir();
  const token = encodeToken(generateNetworkConfig());
  const common = [
    "api",
    "--token",
    token,
    "--listen-maddrs",
    "/ip4/127.0.0.1/tcp/0",
    "--mdns=false",
    "--dht=false",
    "--ledger-synchronization-interval",
    "1",
  ];
  const socket = `${dir}/api.sock`;
  const first = new CliProcess([
    ...common,
    "--state-dir",
    `${dir}/state`,
    "--listen",
    "127.0.0.1:0",
    "--discovery-bootstrap-peers",
    UNREACHABLE,
  ]);
  let second: CliProcess | undefined;
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
  try {
    const address = (await first.waitFor(/Node Addresses: (\S+)/))[1];
    const url = `http://${(await first.waitFor(/API listening on (\S+)/))[1]}`;
    second = new CliProcess([
      ...common,
      "--listen",
      `unix://${socket}`,
      "--discovery-bootstrap-peers",
      address,
    ]);
    await second.waitFor(/API listening on/);
    assert.equal((await Deno.stat(socket)).mode! & 0o777, 0o660);
    const anonymous = await fetch(`${url}/api/ledger/tests/greeting/hello`, { method: "PUT" });
    assert.equal(anonymous.status, 401, "writes on loopback need the token");
    await anonymous.body?.cancel();
    const token = await readApiToken(`${dir}/state`);
    assert.equal((await Deno.stat(`${dir}/state/api-token`)).mode! & 0o777, 0o600);
    const put = await fetch(`${url}/api/ledger/tests/greeting/hello`, {
      method: "PUT",
      headers: { authorization: `Bearer ${token}` },
    });
    assert.deepEqual(await put.json(), { State: "Announcing" });
    assert.ok(!first.log.includes(token!), "the API token never appears in the output");
    assert.match(
      first.log,
      /Dashboard \(one-time login link\): http:\/\/127\.0\.0\.1:\d+\/login\?code=/,
    );
    await eventually(
      async () => (await getJson("http://api/api/ledger/tests/greeting", client)) === '"hello"',
      "the key on the second node",
    );
    const summary = await getJson("http://api/api/summary", client) as Record<string, unknown>;
    assert.equal(summary.NodeID, (await second.waitFor(/Node ID: (\S+)/))[1]);
    assert.ok((summary.Peers as number) >= 2);
    const bad = await fetch(`${url}/api/ledger/${"x".repeat(2000)}`);
    assert.equal(bad.status, 400);
    assert.ok(typeof (await bad.json()).error === "string");
    assert.equal((await second.stop()).code, 0);
    await assert.rejects(() => Deno.stat(socket), Deno.errors.NotFound, "socket removed on exit");
    assert.equal((await first.stop()).code, 0);
  } finally {
    client.close();
    await first.kill();
    await second?.kill();
    await Deno.remove(dir, { recursive: true });
  }
});
