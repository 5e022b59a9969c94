import assert from "node:assert/strict";
import { createProgressReporter, formatBytes, formatEta } from "../../lib/commands/progress.ts";
import { createLogger } from "../../lib/util/logger.ts";

Deno.test("byte counts and durations read as people write them", () => {
  assert.equal(formatBytes(0), "0 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(200 << 20), "200.0 MiB");
  assert.equal(formatEta(42), "42s");
  assert.equal(formatEta(185), "3m05s");
  assert.equal(formatEta(3720), "1h02m");
  assert.equal(formatEta(Infinity), "?");
});

Deno.test("without a terminal, progress is a plain line every 2 s with rate and ETA, and the last one at 100 %", async () => {
  const lines: string[] = [];
  const log = createLogger({ level: "info", sink: (r) => lines.push(r.msg) });
  const progress = createProgressReporter("iso", { tty: false, log });
  const total = 10 << 20;
  progress.update({ received: 0, total, resumedFrom: 0 });
  await new Promise((r) => setTimeout(r, 2_100));
  progress.update({ received: 4 << 20, total, resumedFrom: 0 });
  progress.update({ received: 5 << 20, total, resumedFrom: 0 }); // within 2 s: no line
  progress.update({ received: total, total, resumedFrom: 0 });
  progress.stop();
  assert.equal(lines.length, 2, lines.join("\n"));
  assert.match(lines[0], /^file 'iso': 4\.0 MiB of 10\.0 MiB \(40%\), [\d.]+ MiB\/s, ETA \d+s$/);
  assert.match(lines[1], /^file 'iso': 10\.0 MiB of 10\.0 MiB \(100%\), .*ETA 0s$/);
  assert.ok(lines.every((l) => !l.includes("\x1b")), "no escape codes in plain lines");
});

Deno.test({
  name: "on a terminal, progress is a cli-progress bar with percentage, rate and ETA",
  ignore: !hasScript(),
  async fn() {
    const code = `
      import { createProgressReporter } from "${
      new URL("../../lib/commands/progress.ts", import.meta.url).href
    }";
      import { silentLogger } from "${new URL("../../lib/util/logger.ts", import.meta.url).href}";
      const p = createProgressReporter("iso", { tty: Deno.stderr.isTerminal(), log: silentLogger });
      const total = 10 << 20;
      for (let i = 0; i <= 10; i++) {
        p.update({ received: i << 20, total, resumedFrom: 0 });
        await new Promise((r) => setTimeout(r, 60));
      }
      p.stop();
    `;
    const dir = await Deno.makeTempDir({ prefix: "evprogress" });
    try {
      await Deno.writeTextFile(`${dir}/bar.ts`, code);
      // `script` runs the command on a pseudo-terminal and copies what it writes.
      const out = await new Deno.Command("script", {
        args: ["-qec", `${Deno.execPath()} run -A --config ${CONFIG} ${dir}/bar.ts`, "/dev/null"],
        env: { NO_COLOR: "1", TERM: "xterm" },
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      assert.ok(out.success, text);
      assert.match(text, /iso \[[█░]+\] 100% \| 10\.0 MiB\/10\.0 MiB \| [\d.]+ (K|M)iB\/s \| ETA /);
      assert.ok(text.includes("\x1b["), "the bar redraws in place with escape codes");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

function hasScript(): boolean {
  try {
    return new Deno.Command("script", { args: ["--version"] }).outputSync().success;
  } catch {
    return false;
  }
}
