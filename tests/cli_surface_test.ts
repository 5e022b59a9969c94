/**
 * The command line as users meet it: every flag of Go EdgeVPN (wire reference §12.1–12.3) is
 * listed by --help and either works or is marked and warned as not supported; help, version,
 * typo suggestions, empty and file tokens, conflicting flags.
 */
import assert from "node:assert/strict";
import { OPTIONS, type OptionSpec } from "../lib/config/options.ts";
import { compatWarnings, resolveToken, type TokenSources } from "../lib/config/preflight.ts";
import { resolveSettings } from "../lib/config/settings.ts";
import { gitCommit } from "../lib/build_info.ts";
import { nearest } from "../lib/util/suggest.ts";
import { VERSION } from "../lib/version.ts";
import { UsageError } from "../lib/util/errors.ts";
import { REPO_ROOT, runCli } from "./helpers/cli.ts";

/** Go EdgeVPN v0.35's root flags (§12.1) and common flags (§12.2): [flag, env]. */
const GO_FLAGS: [string, string | undefined][] = [
  ["key-otp-interval", undefined],
  ["g", undefined],
  ["b", undefined],
  ["debug", undefined],
  ["api", "API"],
  ["api-listen", "APILISTEN"],
  ["dhcp", "DHCP"],
  ["transient-conn", "TRANSIENTCONN"],
  ["lease-dir", "DHCPLEASEDIR"],
  ["address", "ADDRESS"],
  ["dns", "DNSADDRESS"],
  ["dns-forwarder", "DNSFORWARD"],
  ["egress", "EGRESS"],
  ["egress-announce-time", "EGRESSANNOUNCE"],
  ["dns-cache-size", "DNSCACHESIZE"],
  ["dns-forward-server", "DNSFORWARDSERVER"],
  ["router", "ROUTER"],
  ["interface", "IFACE"],
  ["config", "EDGEVPNCONFIG"],
  ["token", "EDGEVPNTOKEN"],
  ["listen-maddrs", "EDGEVPNLISTENMADDRS"],
  ["dht-announce-maddrs", "EDGEVPNDHTANNOUNCEMADDRS"],
  ["timeout", "EDGEVPNTIMEOUT"],
  ["mtu", "EDGEVPNMTU"],
  ["bootstrap-iface", "EDGEVPNBOOTSTRAPIFACE"],
  ["packet-mtu", "EDGEVPNPACKETMTU"],
  ["channel-buffer-size", "EDGEVPNCHANNELBUFFERSIZE"],
  ["discovery-interval", "EDGEVPNDHTINTERVAL"],
  ["ledger-announce-interval", "EDGEVPNLEDGERINTERVAL"],
  ["autorelay-discovery-interval", "EDGEVPNAUTORELAYDISCOVERYINTERVAL"],
  ["autorelay-static-only", "EDGEVPNAUTORELAYSTATICONLY"],
  ["ledger-synchronization-interval", "EDGEVPNLEDGERSYNCINTERVAL"],
  ["nat-ratelimit-global", "EDGEVPNNATRATELIMITGLOBAL"],
  ["nat-ratelimit-peer", "EDGEVPNNATRATELIMITPEER"],
  ["nat-ratelimit-interval", "EDGEVPNNATRATELIMITINTERVAL"],
  ["nat-ratelimit", "EDGEVPNNATRATELIMIT"],
  ["max-connections", "EDGEVPNMAXCONNS"],
  ["ledger-state", "EDGEVPNLEDGERSTATE"],
  ["mdns", "EDGEVPNMDNS"],
  ["autorelay", "EDGEVPNAUTORELAY"],
  ["concurrency", undefined],
  ["holepunch", "EDGEVPNHOLEPUNCH"],
  ["natservice", "EDGEVPNNATSERVICE"],
  ["natmap", "EDGEVPNNATMAP"],
  ["dht", "EDGEVPNDHT"],
  ["low-profile", "EDGEVPNLOWPROFILE"],
  ["aliveness-healthcheck-interval", "HEALTHCHECKINTERVAL"],
  ["aliveness-healthcheck-scrub-interval", "HEALTHCHECKSCRUBINTERVAL"],
  ["aliveness-healthcheck-max-interval", "HEALTHCHECKMAXINTERVAL"],
  ["log-level", "EDGEVPNLOGLEVEL"],
  ["libp2p-log-level", "EDGEVPNLIBP2PLOGLEVEL"],
  ["discovery-bootstrap-peers", "EDGEVPNBOOTSTRAPPEERS"],
  ["connection-high-water", "EDGEVPN_CONNECTION_HIGH_WATER"],
  ["connection-low-water", "EDGEVPN_CONNECTION_LOW_WATER"],
  ["autorelay-static-peer", "EDGEVPNAUTORELAYPEERS"],
  ["relay-service", "EDGEVPN_RELAY_SERVICE"],
  ["relay-service-network-only", "EDGEVPN_RELAY_SERVICE_NETWORK_ONLY"],
  ["relay-service-acl-refresh", "EDGEVPN_RELAY_SERVICE_ACL_REFRESH"],
  ["relay-service-max-data", "EDGEVPN_RELAY_MAX_DATA"],
  ["relay-service-max-duration", "EDGEVPN_RELAY_MAX_DURATION"],
  ["relay-service-max-circuits", "EDGEVPN_RELAY_MAX_CIRCUITS"],
  ["relay-service-reservation-ttl", "EDGEVPN_RELAY_RESERVATION_TTL"],
  ["relay-service-buffer-size", "EDGEVPN_RELAY_BUFFER_SIZE"],
  ["blacklist", "EDGEVPNBLACKLIST"],
  ["limit-enable", "LIMITENABLE"],
  ["limit-file", "LIMITFILE"],
  ["limit-scope", "LIMITSCOPE"],
  ["limit-config-streams", "LIMITCONFIGSTREAMS"],
  ["limit-config-streams-inbound", "LIMITCONFIGSTREAMSINBOUND"],
  ["limit-config-streams-outbound", "LIMITCONFIGSTREAMSOUTBOUND"],
  ["limit-config-conn", "LIMITCONFIGCONNS"],
  ["limit-config-conn-inbound", "LIMITCONFIGCONNSINBOUND"],
  ["limit-config-conn-outbound", "LIMITCONFIGCONNSOUTBOUND"],
  ["limit-config-fd", "LIMITCONFIGFD"],
  ["peerguard", "PEERGUARD"],
  ["ownership", "EDGEVPNOWNERSHIP"],
  ["ownership-ttl", "EDGEVPNOWNERSHIPTTL"],
  ["privkey-cache", "EDGEVPNPRIVKEYCACHE"],
  ["privkey-cache-dir", "EDGEVPNPRIVKEYCACHEDIR"],
  ["static-peertable", "EDGEVPNSTATICPEERTABLE"],
  ["whitelist", "EDGEVPNWHITELIST"],
  ["peergate", "PEERGATE"],
  ["peergate-autoclean", "PEERGATE_AUTOCLEAN"],
  ["peergate-relaxed", "PEERGATE_RELAXED"],
  ["peergate-auth", "PEERGATE_AUTH"],
  ["peergate-interval", "EDGEVPNPEERGATEINTERVAL"],
];

/** Flags of §12 whose feature lands with another issue; until then they must be refused. */
const PENDING: Record<string, string> = {
  egress: "issue 13 (egress)",
  "egress-announce-time": "issue 13 (egress)",
};

/**
 * Options that are not compatibility flags but that no code reads, each with why that is right.
 * Every other working option must be read somewhere in lib/ or cli.ts.
 */
const READ_NOWHERE: Record<string, string> = {
  lowProfile: "DHT buckets of 20 peers are the DHT's default, in Go as here",
  generate: "read by lib/commands/root.ts as s.generate",
};

const byFlag = new Map<string, [string, OptionSpec]>(
  (Object.entries(OPTIONS) as [string, OptionSpec][])
    // The root command's and join's options (subcommands have their own, e.g. service --address).
    .filter(([, spec]) =>
      !["dnsServer", "api", "named", "service", "file", "fileReceive"].includes(spec.scope)
    )
    .map(([name, spec]) => [spec.flag, [name, spec]]),
);

/** A value of the option's kind that parses (the default where there is one). */
function sampleValue(spec: OptionSpec): string {
  if (spec.kind === "bool") return "true";
  if (Array.isArray(spec.default)) return spec.default[0] ?? "/ip4/127.0.0.1/tcp/1";
  const d = String(spec.default);
  if (d !== "") return d;
  return spec.kind === "int" || spec.kind === "seconds" ? "1" : "x";
}

Deno.test("every flag of Go EdgeVPN §12.1–12.2 is in --help, working or marked not supported", async () => {
  const help = await runCli(["--help"]);
  assert.equal(help.code, 0);
  const compatSection = help.stdout.slice(
    help.stdout.indexOf("Go EdgeVPN compatibility (not supported):"),
  );
  assert.ok(compatSection.length > 0 && compatSection.length < help.stdout.length);
  const pendingSeen: string[] = [];
  for (const [flag, env] of GO_FLAGS) {
    const dash = flag.length === 1 ? "-" : "--";
    const entry = byFlag.get(flag);
    if (!entry) {
      assert.ok(PENDING[flag], `Go's ${dash}${flag} is neither an option here nor pending`);
      pendingSeen.push(flag);
      continue;
    }
    const [, spec] = entry;
    assert.equal(spec.env, env, `${dash}${flag}: environment variable as Go's`);
    const line = help.stdout.split("\n").find((l) =>
      new RegExp(`^\\s+(-\\w, )?${dash}${flag}(?= |$)`).test(l)
    );
    assert.ok(line, `${dash}${flag} is listed by edgevpn --help`);
    if (env) assert.match(line!, new RegExp(`env ${env}\\b`), `${dash}${flag} names ${env}`);
    const inCompat = compatSection.includes(line!);
    assert.equal(inCompat, spec.compat === true, `${dash}${flag}: listed in its group`);
  }
  // A pending flag is refused up front, never swallowed.
  for (const flag of pendingSeen) {
    const r = await runCli([`--${flag}`, "1"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`unknown option '--${flag}'`));
  }
});

Deno.test("each compatibility flag given warns in one line naming it, as a flag and as a variable", async () => {
  const compat = [...byFlag.values()].filter(([, spec]) => spec.compat && spec.scope === "common");
  assert.ok(compat.length > 5);
  const args = compat.flatMap(([, spec]) => {
    const dash = spec.flag.length === 1 ? "-" : "--";
    return spec.kind === "bool"
      ? [`${dash}${spec.flag}=true`]
      : [`${dash}${spec.flag}`, sampleValue(spec)];
  });
  // `start` without a token: the warnings come first, then the one-line usage error.
  const r = await runCli(["start", ...args]);
  assert.equal(r.code, 2, r.stderr);
  for (const [, spec] of compat) {
    const dash = spec.flag.length === 1 ? "-" : "--";
    const lines = r.stderr.split("\n").filter((l) =>
      l.includes(`WARN  ${dash}${spec.flag} is not supported`)
    );
    assert.equal(lines.length, 1, `one warning for ${dash}${spec.flag} in:\n${r.stderr}`);
  }
  const env: Record<string, string> = {};
  for (const [, spec] of compat) if (spec.env) env[spec.env] = sampleValue(spec);
  const e = await runCli(["start"], env);
  for (const [, spec] of compat) {
    if (spec.env) {
      assert.match(e.stderr, new RegExp(`WARN  ${spec.env} \\(--${spec.flag}\\) is not`));
    }
  }
  // Working flags are not warned about.
  const ok = await runCli(["start", "--mdns=false", "--mtu", "1400"]);
  assert.doesNotMatch(ok.stderr, /not supported/);
  // Pure function: only options of the command's scopes count.
  assert.deepEqual(compatWarnings({ packetMtu: "1500" }, {}, ["vpn"]), []);
  assert.equal(compatWarnings({ packetMtu: "1500" }, {}, ["common"]).length, 1);
});

Deno.test("no working option is accepted and ignored: each is read by the code", async () => {
  const sources: string[] = [await Deno.readTextFile(`${REPO_ROOT}cli.ts`)];
  for await (const path of walkTs(`${REPO_ROOT}lib`)) {
    if (!path.endsWith("/config/options.ts") && !path.endsWith("/config/groups.ts")) {
      sources.push(await Deno.readTextFile(path));
    }
  }
  const all = sources.join("\n");
  for (const [name, spec] of Object.entries(OPTIONS) as [string, OptionSpec][]) {
    if (spec.compat || READ_NOWHERE[name]) continue;
    assert.match(all, new RegExp(`\\.${name}\\b|\\b${name}:|"${name}"`), `option ${name} is read`);
  }
});

async function* walkTs(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) yield* walkTs(path);
    else if (e.name.endsWith(".ts")) yield path;
  }
}

Deno.test("help: every command has a summary, grouped flags with defaults and env, an example", async () => {
  const commands = [
    [],
    ["join"],
    ["start"],
    ["api"],
    ["dashboard"],
    ["dns"],
    ["dns", "add"],
    [
      "dns",
      "rm",
    ],
    ["dns", "ls"],
    ["proxy"],
    ["service-add"],
    ["service-connect"],
    ["file-send"],
    ["file-receive"],
    ["peergater"],
    ["peergater", "ecdsa-genkey"],
  ];
  for (const cmd of commands) {
    const r = await runCli([...cmd, "--help"]);
    assert.equal(r.code, 0, r.stderr);
    const text = r.stdout;
    assert.match(text, /^Usage: edgevpn/m, cmd.join(" "));
    assert.match(text, /^Examples?:\n {2}\S/m, `${cmd.join(" ")}: an example`);
    const description = text.split("\n\n")[1] ?? "";
    assert.ok(description.trim().length > 10, `${cmd.join(" ")}: a summary`);
    if (cmd.length === 0 || cmd[0] === "join" || cmd[0] === "start") {
      for (const group of ["Network:", "Discovery:", "Ledger:", "Logging:"]) {
        assert.match(text, new RegExp(`^${group}$`, "m"), `${cmd.join(" ") || "root"}: ${group}`);
      }
      assert.match(text, /--discovery-interval <value> +.*\(default 720; env EDGEVPNDHTINTERVAL\)/);
    }
  }
  const root = (await runCli(["--help"])).stdout;
  for (const group of ["VPN:", "DNS:", "API:", "Go EdgeVPN compatibility (not supported):"]) {
    assert.match(root, new RegExp(`^${group.replace(/[()]/g, "\\$&")}$`, "m"));
  }
});

Deno.test("--help loads no node code: the CLI's static imports leave libp2p out", async () => {
  // Follows `import … from` and `export … from` (not `import type`, not `import()`) from cli.ts.
  const seen = new Set<string>();
  const bare = new Set<string>();
  const visit = async (url: URL) => {
    if (seen.has(url.href)) return;
    seen.add(url.href);
    const text = await Deno.readTextFile(url);
    const re = /^(?:import|export)\s+(?!type\b)[^;]*?\bfrom\s+"([^"]+)"|^import\s+"([^"]+)"/gms;
    for (const m of text.matchAll(re)) {
      const spec = m[1] ?? m[2];
      if (spec.startsWith(".")) await visit(new URL(spec, url));
      else bare.add(spec);
    }
  };
  await visit(new URL(`file://${REPO_ROOT}cli.ts`));
  assert.ok(seen.size > 5);
  const local = [...seen].map((u) => u.slice(`file://${REPO_ROOT}`.length));
  for (const heavy of ["libp2p", "@libp2p/", "@chainsafe/", "hono", "dns-packet", "yaml"]) {
    const found = [...bare].filter((s) => s.includes(heavy));
    assert.deepEqual(found, [], `${heavy} is imported eagerly by cli.ts`);
  }
  for (const dir of ["lib/node/", "lib/mesh/", "lib/vpn/", "lib/api/", "lib/commands/"]) {
    const found = local.filter((p) => p.startsWith(dir));
    assert.deepEqual(found, [], `${dir} is imported eagerly by cli.ts`);
  }
});

Deno.test("--version prints the version and the commit of this checkout", async () => {
  for (const flag of ["--version", "-v"]) {
    const r = await runCli([flag]);
    assert.equal(r.code, 0, r.stderr);
    const commit = await gitCommit(REPO_ROOT);
    assert.equal(r.stdout, `edgevpn ${VERSION} (commit ${commit})\n`);
    if (commit !== "unknown") assert.match(commit, /^[0-9a-f]{40}(-dirty)?$/);
  }
});

Deno.test("a mistyped command or flag suggests the nearest one, in one line, exit 2", async () => {
  const cases: [string[], RegExp][] = [
    [["jion"], /unknown command "jion" \(did you mean join\?\)/],
    [["strat"], /did you mean start\?/],
    [["dns", "ad", "x"], /unknown command "dns ad" \(did you mean dns add\?\)/],
    [["--tokn", "x"], /unknown option '--tokn' \(Did you mean --token\?\)/],
    [["join", "--adress", "x"], /Did you mean --address\?/],
    [["frobnicate"], /unknown command "frobnicate" \(commands: join, start/],
  ];
  for (const [args, pattern] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  }
  assert.equal(nearest("jion", ["join", "start"]), "join");
  assert.equal(nearest("zzzz", ["join", "start"]), undefined);
});

Deno.test("an empty token, config or token file is bad input (exit 2), never a new network", async () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["join", "--token", ""], {}, /--token: expected a base64 network token, got an empty value/],
    [["join"], { EDGEVPNTOKEN: "" }, /EDGEVPNTOKEN: expected a base64 network token, got an empty/],
    [["--token="], {}, /--token: expected/],
    [["start", "--config", ""], {}, /--config: expected the path/],
    [["join"], { EDGEVPNCONFIG: "" }, /EDGEVPNCONFIG: expected/],
    [["join", "--token-file", ""], {}, /--token-file: expected/],
  ];
  const dir = await Deno.makeTempDir();
  try {
    for (const [args, env, pattern] of cases) {
      const r = await runCli([...args, "--state-dir", dir], env);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, pattern);
      assert.doesNotMatch(r.stdout, /Created a new network/);
    }
    assert.deepEqual([...Deno.readDirSync(dir)], [], "no network was created");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--token-file reads a file or a line of standard input; bad ones exit 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // The token reaches the decoder: a file holding junk fails as a bad token would.
    await Deno.writeTextFile(`${dir}/junk`, "%%%\n", { mode: 0o600 });
    const junk = await runCli(["start", "--token-file", `${dir}/junk`]);
    assert.equal(junk.code, 2, junk.stderr);
    assert.match(junk.stderr, /network token: expected padded standard base64/);
    const cases: [string[], RegExp][] = [
      [["--token-file", `${dir}/absent`], /--token-file: cannot read .*absent: no such file/],
      [["--token-file", dir], /--token-file: cannot read/],
      [["--token-file", `${dir}/junk`, "--token", "abc"], /expected one of them, got both/],
    ];
    for (const [args, pattern] of cases) {
      const r = await runCli(["start", ...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, pattern);
    }
    // Pure function: file, stdin (first line), empty input, and a file others can read.
    const sources = (files: Record<string, string>, stdin = ""): TokenSources => ({
      readFile: (p) =>
        p in files
          ? Promise.resolve(new TextEncoder().encode(files[p]))
          : Promise.reject(new Deno.errors.NotFound(p)),
      readStdin: () => Promise.resolve(new TextEncoder().encode(stdin)),
      fileMode: (p) => Promise.resolve(p === "/open" ? 0o644 : 0o600),
    });
    const settingsOf = (tokenFile: string) => resolveSettings({ tokenFile }, {});
    const s1 = settingsOf("/t");
    assert.deepEqual(
      await resolveToken(s1, { tokenFile: "/t" }, {}, sources({ "/t": "abc\n" })),
      [],
    );
    assert.equal(s1.token, "abc");
    const s2 = settingsOf("-");
    await resolveToken(s2, { tokenFile: "-" }, {}, sources({}, "  xyz  "));
    assert.equal(s2.token, "xyz");
    const s3 = settingsOf("/open");
    const warnings = await resolveToken(s3, { tokenFile: "/open" }, {}, sources({ "/open": "t" }));
    assert.match(warnings[0], /can be read by other users \(mode 0644\): chmod 600 \/open/);
    await assert.rejects(
      () => resolveToken(settingsOf("-"), { tokenFile: "-" }, {}, sources({}, "\n")),
      (e) => e instanceof UsageError && /got nothing/.test(e.message),
    );
    await assert.rejects(
      () => resolveToken(settingsOf("/t"), { tokenFile: "/t", token: "x" }, {}, sources({})),
      /--token and --token-file: expected one of them, got both/,
    );
    const fromEnv = resolveSettings({}, { EDGEVPNTOKENFILE: "/t" });
    await assert.rejects(
      () => resolveToken(fromEnv, {}, { EDGEVPNTOKENFILE: "/t", EDGEVPNTOKEN: "x" }, sources({})),
      /EDGEVPNTOKEN and EDGEVPNTOKENFILE: expected one of them, got both/,
    );
    // A flag wins over the other's variable.
    const flagWins = resolveSettings({ tokenFile: "/t" }, {});
    await resolveToken(
      flagWins,
      { tokenFile: "/t" },
      { EDGEVPNTOKEN: "x" },
      sources({ "/t": "f" }),
    );
    assert.equal(flagWins.token, "f");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("conflicting flags are refused in one line naming what was expected, exit 2", async () => {
  const cases: [string[], RegExp][] = [
    [["join", "--dhcp", "--address", "fd00::1/64"], /--dhcp leases an address of --address's \/24/],
    [
      ["join", "--dhcp", "--address", "10.1.0.1/16"],
      /expected an IPv4 \/24 .*got "10\.1\.0\.1\/16"/,
    ],
    [["join", "--address", "fd00::1/64", "--mtu", "1200"], /IPv6 .*at least 1280, got 1200/],
    [["-g", "--token", "abc"], /-g prints a new network and exits/],
    [["-b"], /-b only makes sense with -g/],
  ];
  for (const [args, pattern] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, pattern);
    assert.doesNotMatch(r.stderr, /\bat .*:\d+:\d+/, "no stack trace");
  }
});

Deno.test("values that would fail only once the node runs are refused up front, exit 2", async () => {
  const token = (await runCli(["-g", "-b"])).stdout.trim();
  const cases: [string[], RegExp][] = [
    [
      ["start", "--ledger-synchronization-interval", "0"],
      /--ledger-synchronization-interval: expected a number of seconds above 0/,
    ],
    [
      ["start", "--aliveness-healthcheck-interval", "0"],
      /--aliveness-healthcheck-interval: expected a number of seconds above 0/,
    ],
    [["start", "--ledger-state", "/etc/hostname"], /--ledger-state: expected a directory/],
    [
      ["start", "--blacklist", "10.0.0.0/33"],
      /--blacklist: expected CIDRs .*got "10\.0\.0\.0\/33"/,
    ],
    [["api", "--listen", "127.0.0.1:99999"], /expected a port number 0 to 65535, got "99999"/],
    [["join", "--api", "--api-listen", "nope"], /API listen address "nope": expected host:port/],
  ];
  for (const [args, pattern] of cases) {
    const r = await runCli([...args, "--token", token]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    const lines = r.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, `refused before the node starts, in one line: ${r.stderr}`);
    assert.match(lines[0], pattern);
  }
});

/** Go's subcommands and their own flags (§12.3), with Go's environment variable where it has one. */
const GO_SUBCOMMAND_FLAGS: [string[], [string, string?][]][] = [
  [["api"], [["enable-healthchecks", "ENABLE_HEALTHCHECKS"], ["debug"], ["listen"]]],
  [["service-add"], [["name"], ["address"]]],
  [["sa"], [["name"], ["address"]]],
  [["service-connect"], [["name"], ["address"]]],
  [["sc"], [["name"], ["address"]]],
  [["file-send"], [["name"], ["path"]]],
  [["fs"], [["name"], ["path"]]],
  [["file-receive"], [["name"], ["path"]]],
  [["fr"], [["name"], ["path"]]],
  [["proxy"], [
    ["listen", "PROXYLISTEN"],
    ["api", "API"],
    ["api-listen", "APILISTEN"],
    ["debug"],
    ["interval", "PROXYINTERVAL"],
    ["dead-interval", "PROXYDEADINTERVAL"],
  ]],
  [["dns"], [
    ["listen", "DNSADDRESS"],
    ["dns-forwarder"],
    ["dns-cache-size"],
    ["dns-forward-server"],
  ]],
  [["peergater", "ecdsa-genkey"], [["privkey"], ["pubkey"]]],
  [["start"], []],
];

Deno.test("every subcommand of Go EdgeVPN §12.3 (and its alias) lists Go's flags with Go's variables", async () => {
  for (const [cmd, flags] of GO_SUBCOMMAND_FLAGS) {
    const r = await runCli([...cmd, "--help"]);
    assert.equal(r.code, 0, `${cmd.join(" ")}: ${r.stderr}`);
    for (const [flag, env] of flags) {
      const line = r.stdout.split("\n").find((l) => new RegExp(`^\\s+--${flag}(?= |$)`).test(l));
      assert.ok(line, `${cmd.join(" ")} --help lists --${flag}`);
      if (env) assert.match(line, new RegExp(`env ${env}\\b`), `${cmd.join(" ")} --${flag}: env`);
    }
  }
});
