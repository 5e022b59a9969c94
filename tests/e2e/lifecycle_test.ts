/**
 * Every long-running command stops cleanly on SIGINT and on SIGTERM: exit 0, ledger saved,
 * sockets closed (the ports are free again). `join` is covered in namespaces by
 * quickstart_test.ts (Ctrl-C in a terminal) and join_cli_test.ts.
 */
import assert from "node:assert/strict";
import { encodeToken, generateNetworkConfig } from "../../lib/config/token.ts";
import { CliProcess } from "../helpers/process.ts";

const UNREACHABLE = "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("start, api and dns exit 0 on SIGINT and SIGTERM, ledger saved, ports released", async () => {
  const token = encodeToken(generateNetworkConfig());
  const dir = await Deno.makeTempDir();
  const times: string[] = [];
  try {
    for (const [i, command] of ["start", "api", "dns"].entries()) {
      for (const signal of ["SIGINT", "SIGTERM"] as const) {
        const p2p = freePort();
        const extra = command === "api"
          ? ["--listen", `127.0.0.1:${freePort()}`, "--state-dir", `${dir}/api`]
          : command === "dns"
          ? ["--listen", `127.0.0.1:${freePort()}`, "--dns-forwarder=false"]
          : [];
        const ledger = `${dir}/ledger-${i}-${signal}`;
        const node = new CliProcess([
          command,
          "--token",
          token,
          "--listen-maddrs",
          `/ip4/127.0.0.1/tcp/${p2p}`,
          "--mdns=false",
          "--dht=false",
          "--discovery-bootstrap-peers",
          UNREACHABLE,
          "--ledger-state",
          ledger,
          ...extra,
        ]);
        try {
          await node.waitFor(/Node ID: \S+/, 60_000);
          if (command !== "start") {
            await node.waitFor(
              command === "api" ? /login\?code=/ : /DNS server listening|dns.*listen/i,
            );
          }
          const { code, ms } = await node.stop(signal);
          assert.equal(code, 0, `${command} after ${signal}:\n${node.log}`);
          assert.doesNotMatch(node.log, /\bat .*:\d+:\d+/, "no stack trace");
          times.push(`${command}/${signal} ${Math.round(ms)} ms`);
          // The libp2p port is free again.
          Deno.listen({ hostname: "127.0.0.1", port: p2p }).close();
          assert.ok((await Deno.stat(ledger)).isDirectory, "the ledger directory exists");
        } finally {
          await node.kill();
        }
      }
    }
    console.log(`stop times: ${times.join(", ")}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
