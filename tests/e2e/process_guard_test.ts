/**
 * The CLI process survives what nothing caught: a throwing listener, a throwing timer and an
 * unhandled rejection are logged in one line each and counted in /metrics while the node keeps
 * serving; a VPN whose interface disappears stops the node with exit 1 instead of running on
 * without forwarding (needs root and /dev/net/tun for that part).
 */
import assert from "node:assert/strict";
import { readApiToken } from "../../lib/api/auth.ts";
import { encodeToken, generateNetworkConfig } from "../../lib/config/token.ts";
import { namespaceSkipReason } from "../../scripts/netns.ts";
import { CliProcess, eventually } from "../helpers/process.ts";
import { parseMetrics, valueOf } from "../metrics/helpers.ts";
import { createNamespaceLan } from "./vpn_helpers.ts";

const FAULTS = new URL("./cli_faults.ts", import.meta.url).pathname;
const UNREACHABLE = "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";

/** `cli_faults.ts` (the CLI with a fault trigger) as a child process, its output collected. */
class FaultyCli {
  readonly child: Deno.ChildProcess;
  log = "";
  readonly #done: Promise<void>;

  constructor(args: string[]) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", FAULTS, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const pump = async (s: ReadableStream<Uint8Array>) => {
      for await (const text of s.pipeThrough(new TextDecoderStream())) this.log += text;
    };
    this.#done = Promise.all([pump(this.child.stdout), pump(this.child.stderr)]).then(() => {});
  }

  async waitFor(pattern: RegExp): Promise<RegExpMatchArray> {
    await eventually(() => pattern.test(this.log), `${pattern} in:\n${this.log}`);
    return this.log.match(pattern)!;
  }

  async stop(): Promise<number> {
    this.child.kill("SIGTERM");
    const { code } = await this.child.status;
    await this.#done;
    return code;
  }

  async kill(): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch { /* already exited */ }
    await this.child.status;
    await this.#done;
  }
}

Deno.test("a throwing listener, a throwing timer and an unhandled rejection are counted and logged; the node keeps running", async () => {
  const dir = await Deno.makeTempDir({ prefix: "evguard" });
  const node = new FaultyCli([
    "api",
    "--token",
    encodeToken(generateNetworkConfig()),
    "--listen-maddrs",
    "/ip4/127.0.0.1/tcp/0",
    "--mdns=false",
    "--dht=false",
    "--discovery-bootstrap-peers",
    UNREACHABLE,
    "--state-dir",
    dir,
    "--listen",
    "127.0.0.1:0",
  ]);
  try {
    const url = `http://${(await node.waitFor(/API listening on (\S+)/))[1]}`;
    node.child.kill("SIGUSR2");
    await node.waitFor(/unhandled promise rejection[^\n]*rejection injected by the test/);
    await node.waitFor(/uncaught error[^\n]*timer failure injected by the test/);
    assert.match(node.log, /uncaught error \(the node keeps running\)[^\n]*listener failure/);
    assert.doesNotMatch(node.log, /^\s+at /m, "no stack trace at the default log level");
    const metrics = parseMetrics(await (await fetch(`${url}/metrics`)).text());
    assert.equal(valueOf(metrics, "edgevpn_process_errors_total", { kind: "uncaught_error" }), 2);
    assert.equal(
      valueOf(metrics, "edgevpn_process_errors_total", { kind: "unhandled_rejection" }),
      1,
    );
    // Still a working node: it takes a write and serves it back.
    const put = await fetch(`${url}/api/ledger/tests/after/fault`, {
      method: "PUT",
      headers: { authorization: `Bearer ${await readApiToken(dir)}` },
    });
    assert.equal(put.status, 200);
    await put.body?.cancel();
    await eventually(
      async () => (await (await fetch(`${url}/api/ledger/tests/after`)).json()) === '"fault"',
      "the key written after the faults",
    );
    assert.equal(await node.stop(), 0, node.log.slice(-2000));
  } finally {
    await node.kill();
    await Deno.remove(dir, { recursive: true });
  }
});

const skip = namespaceSkipReason({ tun: true });
if (skip) console.log(`VPN read-loop failure test skipped: ${skip}`);

Deno.test({
  name:
    "join exits 1 with one line when its interface goes away, instead of running without forwarding",
  ignore: skip !== undefined,
  async fn() {
    const lan = await createNamespaceLan("evf", 1, 240);
    const dir = await Deno.makeTempDir({ prefix: "evfail" });
    const node = new CliProcess([
      "join",
      "--token",
      encodeToken(generateNetworkConfig()),
      "--address",
      "10.1.0.1/24",
      "--listen-maddrs",
      "/ip4/127.0.0.1/tcp/0",
      "--mdns=false",
      "--dht=false",
      "--discovery-bootstrap-peers",
      UNREACHABLE,
      "--state-dir",
      dir,
      "--privkey-cache-dir",
      dir,
    ], { netns: lan.nodes[0].name });
    try {
      const iface = (await node.waitFor(/VPN up: interface (\S+)/, 30_000))[1];
      await lan.nodes[0].run("ip", ["link", "del", iface]);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const status = await Promise.race([
        node.child.status,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`still running:\n${node.log}`)), 15_000);
        }),
      ]).finally(() => clearTimeout(timer));
      assert.equal(status.code, 1, node.log);
      await node.stop();
      const last = node.log.trim().split("\n").at(-1)!;
      assert.match(last, /^edgevpn: VPN forwarding stopped: Cannot read from \S+: /);
    } finally {
      await node.kill();
      await lan.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
