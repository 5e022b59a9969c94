/**
 * TCP services and files between a Go EdgeVPN v0.35 node and ours, each in its own network
 * namespace on a veth link, each bootstrapping only from the other: Go exposes and ours
 * connects, ours exposes and Go connects, a file each way. Needs EDGEVPN_GO and root; skipped
 * with the reason otherwise.
 */
import assert from "node:assert/strict";
import { hashFileInto, Sha256, toHex } from "../../lib/files/mod.ts";
import { REPO_ROOT } from "../helpers/cli.ts";
import { CliProcess, LoggedProcess } from "../helpers/process.ts";
import { type NodePair, QUICK_FLAGS } from "../helpers/node_pair.ts";
import { GoProcess, interopGoBinary, withGoPair } from "./go_edgevpn.ts";

const go = interopGoBinary("Go EdgeVPN services and files interop tests");

/** The Go node (`a`) and ours (`b`), with the flags each runs with. */
type Setup = NodePair & { goFlags: string[]; ourFlags: string[] };

function withPair(fn: (s: Setup) => Promise<void>): Promise<void> {
  return withGoPair(go!.path, { prefix: "evs", subnet: 241, tempPrefix: "evgosvc" }, (p) =>
    fn({
      ...p,
      goFlags: [...p.a.flags, ...QUICK_FLAGS],
      ourFlags: [...p.b.flags, ...QUICK_FLAGS],
    }));
}

/** The TCP tool in a namespace. */
function tool(netns: string, args: string[]): LoggedProcess {
  return new LoggedProcess(
    [Deno.execPath(), "run", "-A", `${REPO_ROOT}tests/e2e/tcp_backend_tool.ts`, ...args],
    { netns },
  );
}

async function echoBackend(s: Setup, netns: string): Promise<number> {
  const echo = tool(netns, ["echo"]);
  s.processes.push(echo);
  return Number((await echo.waitFor(/"port":(\d+)/))[1]);
}

/** Runs the echo client in `netns` against `port`; returns its verdict. */
async function echoThrough(netns: string, port: number, bytes: number) {
  const client = tool(netns, ["client", String(port), String(bytes), "90"]);
  await client.child.status;
  const line = client.log.trim().split("\n").at(-1) ?? "";
  return JSON.parse(line) as { sent: number; received: number; match: boolean };
}

async function sha256Of(path: string): Promise<string> {
  const hash = await Sha256.create();
  await hashFileInto(hash, path);
  return toHex(hash.digest());
}

async function writeRandom(path: string, size: number): Promise<string> {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
  await Deno.writeFile(path, data);
  return await sha256Of(path);
}

Deno.test({
  name:
    "interop services: Go's service-add is reached through our service-connect, ours through Go's",
  ignore: go === undefined,
  fn: () =>
    withPair(async (s) => {
      // Go exposes (namespace a), ours connects (namespace b).
      const goBackend = await echoBackend(s, s.a.ns.name);
      const goExposer = new GoProcess(
        go!.path,
        // urfave/cli reads flags only before the arguments.
        ["service-add", ...s.goFlags, "go-echo", `127.0.0.1:${goBackend}`],
        { netns: s.a.ns.name, home: s.a.dir },
      );
      s.processes.push(goExposer);
      const ourConnector = new CliProcess(
        ["service-connect", "go-echo", "127.0.0.1:9100", ...s.ourFlags],
        { netns: s.b.ns.name },
      );
      s.processes.push(ourConnector);
      await ourConnector.waitFor(/Service 'go-echo' is provided by/, 90_000).catch((e) => {
        throw new Error(`${e}\n--- Go:\n${goExposer.log.slice(-4000)}`);
      });
      const first = await echoThrough(s.b.ns.name, 9100, 1 << 20);
      assert.ok(
        first.match,
        `Go exposes, ours connects: ${JSON.stringify(first)}\n${goExposer.log}`,
      );
      await ourConnector.stop();
      await goExposer.stop();

      // Ours exposes (namespace b), Go connects (namespace a).
      const ourBackend = await echoBackend(s, s.b.ns.name);
      const ourExposer = new CliProcess(
        ["service-add", "deno-echo", `127.0.0.1:${ourBackend}`, ...s.ourFlags],
        { netns: s.b.ns.name },
      );
      s.processes.push(ourExposer);
      const goConnector = new GoProcess(
        go!.path,
        ["service-connect", ...s.goFlags, "deno-echo", "127.0.0.1:9101"],
        { netns: s.a.ns.name, home: s.a.dir },
      );
      s.processes.push(goConnector);
      const second = await echoThrough(s.a.ns.name, 9101, 1 << 20);
      assert.ok(
        second.match,
        `ours exposes, Go connects: ${JSON.stringify(second)}\n${ourExposer.log.slice(-3000)}`,
      );
      assert.match(ourExposer.log, /\(service deno-echo\) Received connection from/);
      assert.equal((await ourExposer.stop()).code, 0);
    }),
});

Deno.test({
  name: "interop files: Go's file-send is received by our file-receive, ours by Go's",
  ignore: go === undefined,
  fn: () =>
    withPair(async (s) => {
      const fromGo = await writeRandom(`${s.dir}/from-go`, 3 << 20);
      const goSender = new GoProcess(
        go!.path,
        ["file-send", "--name", "go-file", "--path", `${s.dir}/from-go`, ...s.goFlags],
        { netns: s.a.ns.name, home: s.a.dir },
      );
      s.processes.push(goSender);
      const ourReceiver = new CliProcess(
        ["file-receive", "go-file", `${s.dir}/got-from-go`, ...s.ourFlags],
        { netns: s.b.ns.name },
      );
      s.processes.push(ourReceiver);
      const received = await ourReceiver.child.status;
      assert.equal(received.code, 0, ourReceiver.log);
      assert.match(ourReceiver.log, new RegExp(`SHA-256 ${fromGo} \\(not verified`));
      assert.equal(await sha256Of(`${s.dir}/got-from-go`), fromGo);
      await goSender.stop();

      const fromDeno = await writeRandom(`${s.dir}/from-deno`, 3 << 20);
      const ourSender = new CliProcess(
        ["file-send", "deno-file", `${s.dir}/from-deno`, ...s.ourFlags],
        { netns: s.b.ns.name },
      );
      s.processes.push(ourSender);
      const goReceiver = new GoProcess(
        go!.path,
        ["file-receive", "--name", "deno-file", "--path", `${s.dir}/got-from-deno`, ...s.goFlags],
        { netns: s.a.ns.name, home: s.a.dir },
      );
      s.processes.push(goReceiver);
      const timer = setTimeout(() => goReceiver.kill(), 120_000);
      const status = await goReceiver.child.status;
      clearTimeout(timer);
      assert.equal(status.code, 0, `${goReceiver.log}\n${ourSender.log.slice(-3000)}`);
      assert.equal(await sha256Of(`${s.dir}/got-from-deno`), fromDeno);
      assert.equal((await ourSender.stop()).code, 0);
    }),
});
