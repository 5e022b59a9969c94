/**
 * `edgevpn service-add` and `service-connect` as users run them, in separate processes on
 * loopback: a 10 MB answer byte-exact, 50 concurrent connections, two services on one node,
 * a backend killed mid-transfer, no file descriptor left behind, bad input in one line.
 */
import assert from "node:assert/strict";
import { runCli } from "../helpers/cli.ts";
import { CliProcess, eventually } from "../helpers/process.ts";
import {
  echoHandler,
  exchange,
  fixedResponse,
  randomBytes,
  startTcpServer,
} from "../services/helpers.ts";
import { REPO_ROOT } from "../helpers/cli.ts";
import { newToken, nodeFlags, openFds, startNode } from "./services_helpers.ts";

Deno.test("service-add exposes two services; service-connect reaches both: 10 MB byte-exact, 50 concurrent connections, no descriptor left open", async () => {
  const token = newToken();
  const body = randomBytes(10 << 20);
  const echo = startTcpServer(echoHandler);
  const blob = startTcpServer(fixedResponse(body));
  let exposer: CliProcess | undefined;
  let connector: CliProcess | undefined;
  try {
    const a = await startNode([
      "service-add",
      "echo",
      echo.address,
      "--expose",
      `blob=${blob.address}`,
      ...nodeFlags(token),
    ]);
    exposer = a.proc;
    const b = await startNode([
      "sc",
      "--name",
      "echo",
      "--address",
      "127.0.0.1:0",
      "--connect",
      "blob=127.0.0.1:0",
      ...nodeFlags(token, a.address),
    ]);
    connector = b.proc;
    const echoPort = Number(
      (await connector.waitFor(/Service 'echo' reachable on 127\.0\.0\.1:(\d+)/))[1],
    );
    const blobPort = Number(
      (await connector.waitFor(/Service 'blob' reachable on 127\.0\.0\.1:(\d+)/))[1],
    );
    await connector.waitFor(/Service 'blob' is provided by/, 30_000);

    const got = await exchange(blobPort, new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"));
    assert.equal(got.length, body.length);
    assert.ok(got.every((v, i) => v === body[i]), "the 10 MB answer arrives byte-exact");

    const hello = new TextEncoder().encode("hello");
    assert.deepEqual(await exchange(echoPort, hello), hello);
    const fds = [openFds(exposer.child.pid), openFds(connector.child.pid)];

    const requests = Array.from({ length: 50 }, () => randomBytes(256 * 1024));
    const answers = await Promise.all(requests.map((r) => exchange(echoPort, r)));
    for (const [i, answer] of answers.entries()) {
      assert.equal(answer.length, requests[i].length, `connection ${i}`);
      assert.ok(answer.every((v, j) => v === requests[i][j]), `connection ${i} byte-exact`);
    }
    assert.equal(echo.accepted, 51);
    // Every socket and stream of those connections is released on both nodes.
    await eventually(
      () => openFds(exposer!.child.pid) <= fds[0] && openFds(connector!.child.pid) <= fds[1],
      `descriptors back to ${fds} (now ${openFds(exposer.child.pid)}, ${
        openFds(connector.child.pid)
      })`,
      10_000,
    );

    assert.equal((await connector.stop()).code, 0);
    assert.equal((await exposer.stop()).code, 0);
  } finally {
    await connector?.kill();
    await exposer?.kill();
    await echo.close();
    await blob.close();
  }
});

Deno.test("a backend process killed mid-transfer ends the client's connection; the exposer keeps serving", async () => {
  const token = newToken();
  const backend = new CliBackend();
  const echo = startTcpServer(echoHandler);
  let exposer: CliProcess | undefined;
  let connector: CliProcess | undefined;
  try {
    const port = await backend.port();
    const a = await startNode([
      "sa",
      "flood",
      `127.0.0.1:${port}`,
      "--expose",
      `echo=${echo.address}`,
      ...nodeFlags(token),
    ]);
    exposer = a.proc;
    const b = await startNode([
      "sc",
      "flood",
      "127.0.0.1:0",
      "--connect",
      "echo=127.0.0.1:0",
      ...nodeFlags(token, a.address),
    ]);
    connector = b.proc;
    const floodPort = Number(
      (await connector.waitFor(/Service 'flood' reachable on 127\.0\.0\.1:(\d+)/))[1],
    );
    const echoPort = Number(
      (await connector.waitFor(/Service 'echo' reachable on 127\.0\.0\.1:(\d+)/))[1],
    );
    await connector.waitFor(/Service 'flood' is provided by/, 30_000);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: floodPort });
    const buffer = new Uint8Array(65536);
    let got = 0;
    while (got < 4 << 20) {
      const n = await conn.read(buffer);
      assert.notEqual(n, null, "the transfer runs");
      got += n!;
    }
    await backend.kill();
    // The client drains what was in flight, then sees the end of the connection.
    const ended = (async () => {
      try {
        while ((await conn.read(buffer)) !== null) { /* drain */ }
      } catch { /* a reset ends it too */ }
    })();
    const timer = setTimeout(() => conn.close(), 20_000);
    await ended;
    clearTimeout(timer);
    try {
      conn.close();
    } catch (e) {
      assert.fail(`the client's connection did not end by itself: ${e}`);
    }
    const hello = new TextEncoder().encode("still here");
    assert.deepEqual(await exchange(echoPort, hello), hello);
    assert.equal((await connector.stop()).code, 0);
    assert.equal((await exposer.stop()).code, 0);
  } finally {
    await connector?.kill();
    await exposer?.kill();
    await backend.kill();
    await echo.close();
  }
});

Deno.test("service-add and service-connect: bad input exits with one line", async () => {
  const token = newToken();
  const base = ["--token", token, "--mdns=false", "--dht=false"];
  const cases: [string[], number, RegExp][] = [
    [["service-add", ...base], 2, /Either a file UUID as first argument or with --name/],
    [["sa", "web", ...base], 2, /service-add NAME HOST:PORT/],
    [["sa", "web", "nowhere", ...base], 2, /--address: expected host:port/],
    [["sa", "web", "127.0.0.1:0", ...base], 2, /--address: expected host:port/],
    [["sc", "web", "localhost", ...base], 2, /--address: expected \[ip\]:port/],
    [["sc", "web", ":1", "--connect", "x", ...base], 2, /--connect: expected NAME=\[IP\]:PORT/],
    [["sa", "web", "127.0.0.1:1", "--expose", "web=127.0.0.1:2", ...base], 2, /given twice/],
  ];
  for (const [args, code, message] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
});

Deno.test("service-connect with --timeout gives up on an unknown service with exit 1; a busy port exits 1", async () => {
  const token = newToken();
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const waiting = new CliProcess([
      "sc",
      "nowhere",
      "127.0.0.1:0",
      "--timeout",
      "6s",
      ...nodeFlags(token),
    ]);
    await waiting.waitFor(/Waiting for service 'nowhere' to appear in the network/, 30_000);
    const status = await waiting.child.status;
    await waiting.kill();
    assert.equal(status.code, 1, waiting.log);
    assert.match(waiting.log, /Service "nowhere" not found in the network within 6s/);
    const r = await runCli(["sc", "web", `127.0.0.1:${busy.addr.port}`, ...nodeFlags(token)]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /Cannot listen on 127\.0\.0\.1:\d+ for service "web": the address is in use/,
    );
  } finally {
    busy.close();
  }
});

/** The flooding backend as a child process. */
class CliBackend {
  readonly #child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO_ROOT}tests/e2e/tcp_backend_tool.ts`, "flood"],
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  #killed = false;

  async port(): Promise<number> {
    const reader = this.#child.stdout.getReader();
    const { value } = await reader.read();
    reader.releaseLock();
    return JSON.parse(new TextDecoder().decode(value)).port;
  }

  async kill(): Promise<void> {
    if (this.#killed) return;
    this.#killed = true;
    try {
      this.#child.kill("SIGKILL");
    } catch { /* exited */ }
    await this.#child.status;
    await this.#child.stdout.cancel().catch(() => {});
  }
}
