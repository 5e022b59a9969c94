import assert from "node:assert/strict";
import YAML from "yaml";
import { decodeToken } from "../lib/config/token.ts";
import { runCli } from "./helpers/cli.ts";

function assertOneLineError(r: { code: number; stderr: string }, pattern: RegExp) {
  assert.equal(r.code, 2, `exit code 2 expected, stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line expected, got: ${r.stderr}`);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\bat .*:\d+:\d+/, "no stack trace");
}

Deno.test("-g prints a YAML config and -g -b a token that decodes to the same shape", async () => {
  const yaml = await runCli(["-g"]);
  assert.equal(yaml.code, 0);
  const parsed = YAML.parse(yaml.stdout);
  assert.deepEqual(Object.keys(parsed), ["otp", "room", "rendezvous", "mdns", "max_message_size"]);
  assert.deepEqual(Object.keys(parsed.otp), ["dht", "crypto"]);

  const token = await runCli(["-g", "-b", "--key-otp-interval", "60"]);
  assert.equal(token.code, 0);
  const config = decodeToken(token.stdout.trim());
  assert.equal(config.otp.dht.interval, 60);
  assert.equal(config.otp.crypto.interval, 60);
  assert.equal(config.maxMessageSize, 20971520);
});

Deno.test("bad tokens, configs, flags and values each give one line and exit 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const random = `${dir}/random.yaml`;
    await Deno.writeFile(random, crypto.getRandomValues(new Uint8Array(65536)));
    const big = `${dir}/big.yaml`;
    const chunk = crypto.getRandomValues(new Uint8Array(65536));
    const f = await Deno.open(big, { write: true, create: true });
    for (let i = 0; i < 160; i++) await f.write(chunk);
    f.close();
    const wrongShape = `${dir}/list.yaml`;
    await Deno.writeTextFile(wrongShape, "- a\n- b\n");
    const cases: [string[], Record<string, string>, RegExp][] = [
      [["--token", "%%%"], {}, /network token: expected padded standard base64/],
      [["--token", btoa("a: [")], {}, /not valid YAML/],
      [["--token", btoa("room: x\n")], {}, /otp\.crypto\.key is missing/],
      [
        [],
        { EDGEVPNTOKEN: "   " },
        /EDGEVPNTOKEN: expected a base64 network token, got an empty value/,
      ],
      [["--config", `${dir}/absent.yaml`], {}, /Cannot read config .*absent\.yaml: no such file/],
      [["--config", dir], {}, /not a regular file/],
      [["--config", random], {}, /config .*random\.yaml/],
      [["--config", big], {}, /expected at most 65536 bytes/],
      [["--config", wrongShape], {}, /expected a YAML mapping/],
      [[], { EDGEVPNCONFIG: wrongShape }, /expected a YAML mapping/],
      [["--frobnicate"], {}, /unknown option '--frobnicate'/],
      [["-g", "--key-otp-interval", "soon"], {}, /--key-otp-interval: expected an integer/],
      [["--mtu", "big"], {}, /--mtu: expected an integer, got "big"/],
      [["--mdns=perhaps"], {}, /--mdns: expected true or false/],
      [[], { EDGEVPNDHTINTERVAL: "x" }, /EDGEVPNDHTINTERVAL: expected a number of seconds/],
      [["--log-level", "loud"], {}, /--log-level: expected debug/],
      [["--log-format", "xml"], {}, /--log-format: expected text or json, got "xml"/],
      [["api", "--api-auth=maybe"], {}, /--api-auth: expected true or false/],
      [["start"], {}, /EDGEVPNCONFIG or EDGEVPNTOKEN not supplied/],
      [["join", "--vpn-protocol", "fastest"], {}, /--vpn-protocol: expected auto or legacy/],
      [["join", "--address", "10.1.0.300/24"], {}, /--address/],
      [["start"], { APILISTENUNIXMODE: "rw" }, /APILISTENUNIXMODE: expected an octal file mode/],
      [
        ["start", "--listen-maddrs", "tcp://0.0.0.0:1", "--listen-maddrs", "/ip4/127.0.0.1/tcp/0"],
        {},
        /--listen-maddrs: expected multiaddresses .*got "tcp:\/\/0\.0\.0\.0:1"/,
      ],
    ];
    for (const [args, env, pattern] of cases) {
      assertOneLineError(await runCli(args, env), pattern);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
