import assert from "node:assert/strict";
import { readApiToken } from "../../lib/api/auth.ts";
import { encodeToken, generateNetworkConfig } from "../../lib/config/token.ts";
import { runCli } from "../helpers/cli.ts";
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

Deno.test("edgevpn dashboard prints a new one-time login link of a running node, with its token file", async () => {
  const dir = await Deno.makeTempDir();
  const node = new CliProcess([
    "api",
    "--token",
    encodeToken(generateNetworkConfig()),
    "--listen",
    "127.0.0.1:0",
    "--state-dir",
    dir,
    "--listen-maddrs",
    "/ip4/127.0.0.1/tcp/0",
    "--mdns=false",
    "--dht=false",
    "--discovery-bootstrap-peers",
    UNREACHABLE,
  ]);
  try {
    const url = `http://${(await node.waitFor(/API listening on (\S+)/))[1]}`;
    const first = (await node.waitFor(/login\?code=(\S+)/))[1];
    const out = await runCli(["dashboard", "--api-url", url, "--state-dir", dir]);
    assert.equal(out.code, 0, out.stderr);
    const link = new RegExp(
      `^Dashboard \\(one-time login link\\): (${url}/login\\?code=(\\S+))\\n$`,
    )
      .exec(out.stdout);
    assert.ok(link, out.stdout);
    assert.notEqual(link[2], first);
    const login = await fetch(link[1], { redirect: "manual" });
    await login.body?.cancel();
    assert.equal(login.status, 303);
    assert.match(login.headers.get("set-cookie")!, /HttpOnly/);
    const noToken = await runCli(["dashboard", "--api-url", url, "--state-dir", `${dir}/none`]);
    assert.equal(noToken.code, 2);
    assert.match(noToken.stderr, /^edgevpn: No API token in .*: start the node/);
    const down = await runCli(["dashboard", "--api-url", "http://127.0.0.1:9", "--state-dir", dir]);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /^edgevpn: Cannot reach the API at http:\/\/127\.0\.0\.1:9/);
    assert.equal(down.stderr.trim().split("\n").length, 1);
    assert.equal((await node.stop()).code, 0);
  } finally {
    await node.kill();
    await Deno.remove(dir, { recursive: true });
  }
});
