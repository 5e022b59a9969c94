/**
 * Services next to the VPN, as users run them: the root command exposes a service with
 * `--expose` and `join` reaches it with `--connect`, each node in its own network namespace
 * with its TUN up. Needs root and /dev/net/tun; skipped with the reason otherwise.
 */
import assert from "node:assert/strict";
import { namespaceSkipReason } from "../../scripts/netns.ts";
import { REPO_ROOT } from "../helpers/cli.ts";
import { QUICK_FLAGS, withNodePair } from "../helpers/node_pair.ts";
import { CliProcess, LoggedProcess } from "../helpers/process.ts";

const skip = namespaceSkipReason({ tun: true });
if (skip) console.log(`services namespace test skipped: ${skip}`);

const TOOL = `${REPO_ROOT}tests/e2e/tcp_backend_tool.ts`;

Deno.test({
  name:
    "the root command exposes a service with --expose and join reaches it with --connect, beside the VPN",
  ignore: skip !== undefined,
  fn: () =>
    withNodePair({ prefix: "evsn", subnet: 236, tempPrefix: "evsvcns" }, async (p) => {
      const { pair, processes } = p;
      const echo = new LoggedProcess([Deno.execPath(), "run", "-A", TOOL, "echo"], {
        netns: pair.a.name,
      });
      processes.push(echo);
      const echoPort = Number((await echo.waitFor(/"port":(\d+)/))[1]);
      const flags = (side: typeof p.a, i: number) => [
        ...side.flags,
        ...QUICK_FLAGS,
        "--address",
        `10.1.0.${i + 1}/24`,
        "--state-dir",
        side.dir,
      ];
      // The root command: flags only, no subcommand.
      const exposer = new CliProcess(
        [...flags(p.a, 0), "--expose", `echo=127.0.0.1:${echoPort}`],
        { netns: pair.a.name },
      );
      processes.push(exposer);
      const connector = new CliProcess(
        ["join", ...flags(p.b, 1), "--connect", "echo=127.0.0.1:7400"],
        { netns: pair.b.name },
      );
      processes.push(connector);
      await exposer.waitFor(/VPN up: interface/, 60_000);
      await connector.waitFor(/VPN up: interface/, 60_000);
      await exposer.waitFor(/Exposing service 'echo'/);
      await connector.waitFor(/Service 'echo' reachable on 127\.0\.0\.1:7400/);
      await connector.waitFor(/Service 'echo' is provided by/, 60_000);

      const client = new LoggedProcess(
        [Deno.execPath(), "run", "-A", TOOL, "client", "7400", String(1 << 20), "30"],
        { netns: pair.b.name },
      );
      processes.push(client);
      await client.child.status;
      const verdict = JSON.parse(client.log.trim().split("\n").at(-1) ?? "{}");
      assert.deepEqual(verdict, { sent: 1 << 20, received: 1 << 20, match: true }, client.log);

      assert.equal((await connector.stop()).code, 0, connector.log.slice(-2000));
      assert.equal((await exposer.stop()).code, 0, exposer.log.slice(-2000));
    }),
});
