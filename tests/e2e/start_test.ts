import assert from "node:assert/strict";
import { encodeToken, generateNetworkConfig } from "../../lib/config/token.ts";
import { CliProcess } from "../helpers/process.ts";

const UNREACHABLE = "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";

Deno.test("start joins a peer with a generated token (flag or EDGEVPNTOKEN) and exits 0 within 2 s of SIGTERM or SIGINT", async () => {
  const token = encodeToken(generateNetworkConfig());
  const common = [
    "start",
    "--log-level",
    "debug",
    "--token",
    token,
    "--listen-maddrs",
    "/ip4/127.0.0.1/tcp/0",
    "--mdns=false",
    "--dht=false",
  ];
  const first = new CliProcess([...common, "--discovery-bootstrap-peers", UNREACHABLE]);
  let second: CliProcess | undefined;
  try {
    const address = (await first.waitFor(/Node Addresses: (\S+)/))[1];
    // The second node takes the token from the environment instead of the flag.
    const withoutToken = common.filter((a) => a !== "--token" && a !== token);
    second = new CliProcess([...withoutToken, "--discovery-bootstrap-peers", address], {
      env: { EDGEVPNTOKEN: token },
    });
    await second.waitFor(/Node ID: (\S+)/);
    await second.waitFor(new RegExp(`peer connected peer=${address.split("/p2p/")[1]}`));
    const a = await second.stop("SIGTERM");
    assert.equal(a.code, 0, second.log);
    assert.ok(a.ms < 2_000, `exited after ${a.ms} ms`);
    const b = await first.stop("SIGINT");
    assert.equal(b.code, 0, first.log);
    assert.ok(b.ms < 2_000, `exited after ${b.ms} ms`);
    assert.doesNotMatch(first.log + second.log, /\bat .*:\d+:\d+/, "no stack trace");
  } finally {
    await first.kill();
    await second?.kill();
  }
});

Deno.test("--log-format json writes one zap-style JSON object per stderr line", async () => {
  const node = new CliProcess([
    "start",
    "--log-format",
    "json",
    "--log-level",
    "debug",
    "--token",
    encodeToken(generateNetworkConfig()),
    "--listen-maddrs",
    "/ip4/127.0.0.1/tcp/0",
    "--mdns=false",
    "--dht=false",
    "--discovery-bootstrap-peers",
    UNREACHABLE,
  ]);
  try {
    await node.waitFor(/"msg":"Node ID: /);
    assert.equal((await node.stop()).code, 0, node.log);
    const lines = node.log.trim().split("\n");
    assert.ok(lines.length >= 3);
    for (const line of lines) {
      const json = JSON.parse(line);
      assert.deepEqual(Object.keys(json).slice(0, 4), ["level", "ts", "logger", "msg"], line);
      assert.equal(typeof json.ts, "number");
    }
    assert.ok(lines.some((l) => JSON.parse(l).level === "debug"));
  } finally {
    await node.kill();
  }
});
