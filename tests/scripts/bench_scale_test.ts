/**
 * `deno task bench:scale` in miniature (three nodes, five simulated ones): it prints its table,
 * and it leaves no node process behind, whether it ends by itself or by SIGINT.
 */
import assert from "node:assert/strict";
import { REPO_ROOT } from "../helpers/cli.ts";

const SCRIPT = `${REPO_ROOT}scripts/bench_scale.ts`;
const SMALL = ["--nodes", "3", "--simulated", "5", "--writes", "1", "--idle", "1", "--wave", "2"];

/** Pids of processes whose command line mentions `dir` (the nodes' state dirs live under it). */
function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${e.name}/cmdline`).includes(dir)) pids.push(Number(e.name));
    } catch { /* exited meanwhile */ }
  }
  return pids;
}

function bench(tmp: string, extra: string[] = []): Deno.ChildProcess {
  const env: Record<string, string> = { TMPDIR: tmp };
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT, ...SMALL, "--only", "ours", ...extra],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

Deno.test("bench:scale prints its table for three nodes and leaves no node running", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "bench-scale-test-" });
  try {
    const out = await bench(tmp).output();
    const text = new TextDecoder().decode(out.stdout);
    const err = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `${text}\n${err}`);
    assert.match(text, /the 20 entries reached 3 of 3 nodes/);
    assert.match(text, /1 writes, 2 arrivals, 0 missing/);
    assert.match(
      text,
      /\| implementation \| start \(s\) \|.*\| RSS per node mean \/ max \(MiB\) \|/,
    );
    assert.match(text, /\n\| ours +\| +[\d.]+ \|/);
    assert.deepEqual(processesUnder(tmp), []);
    assert.deepEqual([...Deno.readDirSync(tmp)], [], "its temporary directories are removed");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("bench:scale stops every node it started when interrupted with SIGINT", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "bench-scale-test-" });
  try {
    // Long enough to be interrupted while the nodes are up.
    const child = bench(tmp, ["--idle", "600"]);
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!seen.includes("writes,")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    assert.match(seen, /writes,/, seen);
    assert.equal(processesUnder(tmp).length, 3, "three nodes while it runs");
    child.kill("SIGINT");
    const status = await child.status;
    await reader.cancel();
    await child.stderr.cancel();
    assert.equal(status.code, 130);
    assert.deepEqual(processesUnder(tmp), []);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
