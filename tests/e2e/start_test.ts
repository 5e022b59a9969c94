import assert from "node:assert/strict";
import { encodeToken, generateNetworkConfig } from "../../lib/config/token.ts";
import { REPO_ROOT } from "../helpers/cli.ts";

/** A `cli.ts start` child process whose stderr is scanned for log lines. */
class StartProcess {
  readonly child: Deno.ChildProcess;
  #text = "";
  readonly #done: Promise<void>;

  constructor(args: string[]) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${REPO_ROOT}cli.ts`, "start", "--log-level", "debug", ...args],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.child = child;
    this.#done = (async () => {
      const dec = new TextDecoder();
      for await (const chunk of child.stderr) this.#text += dec.decode(chunk);
    })();
  }

  get log(): string {
    return this.#text;
  }

  async waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const m = this.#text.match(pattern);
      if (m) return m;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no ${pattern} in:\n${this.#text}`);
  }

  async stop(signal: Deno.Signal): Promise<{ code: number; ms: number }> {
    const t0 = performance.now();
    this.child.kill(signal);
    const status = await this.child.status;
    const ms = performance.now() - t0;
    await this.#done;
    return { code: status.code, ms };
  }
}

Deno.test("start joins a peer with a generated token and exits 0 within 2 s of SIGTERM or SIGINT", async () => {
  const token = encodeToken(generateNetworkConfig());
  const common = [
    "--token",
    token,
    "--listen-maddrs",
    "/ip4/127.0.0.1/tcp/0",
    "--mdns=false",
    "--dht=false",
  ];
  const first = new StartProcess([
    ...common,
    "--discovery-bootstrap-peers",
    "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq",
  ]);
  let second: StartProcess | undefined;
  try {
    const address = (await first.waitFor(/Node Addresses: (\S+)/))[1];
    second = new StartProcess([...common, "--discovery-bootstrap-peers", address]);
    await second.waitFor(/Node ID: (\S+)/);
    const firstId = address.split("/p2p/")[1];
    await second.waitFor(new RegExp(`peer connected peer=${firstId}`));
    const a = await second.stop("SIGTERM");
    assert.equal(a.code, 0, second.log);
    assert.ok(a.ms < 2_000, `exited after ${a.ms} ms`);
    const b = await first.stop("SIGINT");
    assert.equal(b.code, 0, first.log);
    assert.ok(b.ms < 2_000, `exited after ${b.ms} ms`);
    assert.doesNotMatch(first.log + second.log, /\bat .*:\d+:\d+/, "no stack trace");
  } finally {
    for (const p of [first, second]) {
      try {
        p?.child.kill("SIGKILL");
      } catch { /* already exited */ }
    }
  }
});
