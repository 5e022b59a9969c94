/**
 * `edgevpn file-send` and `file-receive` as users run them, in separate processes on
 * loopback: a 200 MB file arrives with the same SHA-256 while the receiver's memory stays
 * flat, a receiver killed mid-transfer resumes in its next run, bad input gets one line.
 */
import assert from "node:assert/strict";
import { hashFileInto, partPaths, Sha256, toHex } from "../../lib/files/mod.ts";
import { REPO_ROOT, runCli } from "../helpers/cli.ts";
import { CliProcess } from "../helpers/process.ts";
import { newToken, nodeFlags, peakRss, startNode } from "./services_helpers.ts";

const SIZE = 200 << 20;

async function randomFile(path: string, size: number): Promise<string> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const hash = await Sha256.create();
  const block = new Uint8Array(1 << 20);
  for (let at = 0; at < size; at += block.length) {
    for (let i = 0; i < block.length; i += 65536) {
      crypto.getRandomValues(block.subarray(i, i + 65536));
    }
    let written = 0;
    while (written < block.length) written += await file.write(block.subarray(written));
    hash.update(block);
  }
  return toHex(hash.digest());
}

async function sha256Of(path: string): Promise<string> {
  const hash = await Sha256.create();
  await hashFileInto(hash, path);
  return toHex(hash.digest());
}

/** The `--v8-flags` of `deno task edgevpn` (deno.json), as users run the node. */
async function taskV8Flags(): Promise<string> {
  const config = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`));
  const flags = /--v8-flags=(\S+)/.exec(config.tasks.edgevpn)?.[1];
  assert.ok(flags, "deno task edgevpn sets V8 flags");
  return flags;
}

/** Samples a process's peak RSS until it exits; `last()` is the highest sample. */
function watchPeakRss(pid: number): { last: () => number; stop: () => void } {
  let last = 0;
  const timer = setInterval(() => {
    try {
      const peak = peakRss(pid);
      // A process that exited (a zombie) has no memory lines left.
      if (Number.isFinite(peak)) last = Math.max(last, peak);
    } catch { /* exited */ }
  }, 50);
  return { last: () => last, stop: () => clearInterval(timer) };
}

Deno.test("file-receive gets a 200 MB file from file-send with the same SHA-256, its peak RSS growing by less than 64 MB", async () => {
  const dir = await Deno.makeTempDir({ prefix: "evfiles" });
  const token = newToken();
  let sender: CliProcess | undefined;
  let receiver: CliProcess | undefined;
  try {
    const sha256 = await randomFile(`${dir}/src`, SIZE);
    // The receiver starts first, so its memory is measured once it is up and waiting.
    // As users run it (deno task edgevpn, the compiled binary): with the task's V8 flags.
    const r = await startNode(["fr", "big", `${dir}/dst`, ...nodeFlags(token)], {
      DENO_V8_FLAGS: await taskV8Flags(),
    });
    receiver = r.proc;
    await receiver.waitFor(/Waiting for file 'big' to appear in the network/, 30_000);
    const before = peakRss(receiver.child.pid);
    const rss = watchPeakRss(receiver.child.pid);
    const s = await startNode([
      "fs",
      "--name",
      "big",
      "--path",
      `${dir}/src`,
      ...nodeFlags(token, r.address),
    ]);
    sender = s.proc;
    await receiver.waitFor(/Received 'big'/, 120_000).catch((e) => {
      throw new Error(`${e}\n--- sender:\n${sender?.log}`);
    });
    const status = await receiver.child.status;
    rss.stop();
    assert.equal(status.code, 0, receiver.log);
    assert.match(receiver.log, new RegExp(`SHA-256 ${sha256} \\(verified\\)`));
    assert.equal(await sha256Of(`${dir}/dst`), sha256);
    const growth = rss.last() - before;
    console.log(`receiver peak RSS ${before >> 20} MiB before, +${growth >> 20} MiB during 200 MB`);
    assert.ok(growth < 64 << 20, `peak RSS grew by ${growth >> 20} MiB`);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["dst", "src"], "no temporary file is left");
    assert.equal((await sender.stop()).code, 0);
  } finally {
    await receiver?.kill();
    await sender?.kill();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a receiver killed mid-transfer resumes in its next run and completes with the same SHA-256", async () => {
  const dir = await Deno.makeTempDir({ prefix: "evfiles" });
  const token = newToken();
  let sender: CliProcess | undefined;
  let receiver: CliProcess | undefined;
  try {
    const sha256 = await randomFile(`${dir}/src`, SIZE);
    const s = await startNode(["fs", "big", `${dir}/src`, ...nodeFlags(token)]);
    sender = s.proc;
    await sender.waitFor(/Serving/);
    const { part } = partPaths(`${dir}/dst`);
    receiver = new CliProcess(["fr", "big", `${dir}/dst`, ...nodeFlags(token, s.address)]);
    const deadline = Date.now() + 60_000;
    let partial = 0;
    while (partial < SIZE / 4) {
      assert.ok(Date.now() < deadline, `no progress: ${receiver.log}`);
      partial = (await Deno.stat(part).catch(() => undefined))?.size ?? 0;
      await new Promise((r) => setTimeout(r, 10));
    }
    await receiver.kill();
    partial = (await Deno.stat(part)).size;
    assert.ok(partial < SIZE, "killed before the end");
    assert.equal(await Deno.stat(`${dir}/dst`).catch(() => undefined), undefined);

    receiver = new CliProcess(["fr", "big", `${dir}/dst`, ...nodeFlags(token, s.address)]);
    const resumed = Number((await receiver.waitFor(/resuming at byte (\d+)/, 60_000))[1]);
    assert.ok(resumed > 0 && resumed <= partial, `resumed at ${resumed}, ${partial} on disk`);
    const status = await receiver.child.status;
    assert.equal(status.code, 0, receiver.log);
    assert.match(receiver.log, new RegExp(`SHA-256 ${sha256} \\(verified\\)`));
    assert.equal(await sha256Of(`${dir}/dst`), sha256);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["dst", "src"]);
    assert.equal((await sender.stop()).code, 0);
  } finally {
    await receiver?.kill();
    await sender?.kill();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("file-send and file-receive: bad paths and arguments exit 2 with one line; an unknown name gives up with --timeout", async () => {
  const dir = await Deno.makeTempDir({ prefix: "evfiles" });
  const token = newToken();
  try {
    await Deno.writeTextFile(`${dir}/exists`, "x");
    const base = ["--token", token, "--mdns=false", "--dht=false"];
    const cases: [string[], number, RegExp][] = [
      [["file-send", ...base], 2, /Either a file UUID as first argument or with --name/],
      [["fs", "n", dir, ...base], 2, /Cannot read .*: it is a directory/],
      [["fs", "n", `${dir}/missing`, ...base], 2, /Cannot read .*missing: no such file/],
      [["fr", "n", dir, ...base], 2, /Cannot write .*: it is a directory/],
      [["fr", "n", `${dir}/exists`, ...base], 2, /the file exists \(--overwrite replaces it\)/],
      [["fr", "n", `${dir}/no/dir/f`, ...base], 2, /no directory/],
      [["fr", "n", ...base], 2, /file-receive NAME PATH/],
    ];
    for (const [args, code, message] of cases) {
      const r = await runCli(args);
      assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
    const r = await runCli(["fr", "nothing", `${dir}/f`, "--timeout", "6s", ...nodeFlags(token)]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /Waiting for file 'nothing' to appear in the network \(5s so far\)/);
    assert.match(r.stderr, /edgevpn: File "nothing" not found in the network within 6s/);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["exists"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
