/**
 * The soak in its short mode (`deno task soak` runs an hour): five VPN nodes for 150 s with pings,
 * API polls and ledger writes, then the soak's own assertions (RSS growth under 10 % after the
 * 60 s warm-up, fds within ±10, zero errors, SIGTERM exits 0 within 2 s leaving nothing behind).
 * The CSV and PNG land in test-artifacts/soak/. Needs root and /dev/net/tun.
 */
import assert from "node:assert/strict";
import { namespaceSkipReason } from "../../scripts/netns.ts";

const skip = namespaceSkipReason({ tun: true });
if (skip) console.log(`soak test skipped: ${skip}`);

const SOAK = new URL("../../scripts/soak.ts", import.meta.url).pathname;
const OUT = new URL("../../test-artifacts/soak", import.meta.url).pathname;

Deno.test({
  name:
    "soak, short mode: 5 nodes for 150 s under traffic keep RSS, fds and errors flat and stop clean",
  ignore: skip !== undefined,
  async fn() {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", SOAK, "--duration", "150", "--warmup", "60", "--out", OUT],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    const text = dec.decode(out.stdout) + dec.decode(out.stderr);
    console.log(text.split("\n").filter((l) => /^soak: \{/.test(l)).join("\n"));
    assert.equal(out.code, 0, text.slice(-6000));
    assert.match(text, /soak passed/);
    const csv = await Deno.readTextFile(`${OUT}/soak.csv`);
    assert.ok(csv.split("\n").length > 5 * 10, "at least 10 samples of 5 nodes");
    const png = await Deno.readFile(`${OUT}/soak.png`);
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], "a PNG file");
  },
});
