import assert from "node:assert/strict";
import { OPTIONS } from "../../lib/config/options.ts";
import {
  expandHome,
  parseGoBool,
  parseGoDuration,
  parseGoInt,
  parseOptionText,
  resolveSettings,
  splitList,
} from "../../lib/config/settings.ts";
import { UsageError } from "../../lib/util/errors.ts";

Deno.test("defaults are Go EdgeVPN's", () => {
  const s = resolveSettings({}, {});
  assert.equal(s.mtu, 1200);
  assert.equal(s.packetMtu, 1420);
  assert.equal(s.timeout, 15_000);
  assert.equal(s.discoveryInterval, 720_000);
  assert.equal(s.ledgerAnnounceInterval, 10_000);
  assert.equal(s.ledgerSynchronizationInterval, 10_000);
  assert.equal(s.alivenessHealthcheckInterval, 120_000);
  assert.equal(s.alivenessHealthcheckScrubInterval, 600_000);
  assert.equal(s.alivenessHealthcheckMaxInterval, 900_000);
  assert.equal(s.ownership, "enforce");
  assert.equal(s.interface, "edgevpn0");
  assert.equal(s.address, "10.1.0.1/24");
  assert.equal(s.mdns, true);
  assert.equal(s.dht, true);
  assert.equal(s.keyOtpInterval, 360);
  assert.equal(s.relayServiceMaxDuration, 30 * 60_000);
  assert.deepEqual(s.discoveryBootstrapPeers, []);
});

Deno.test("the command line wins over the environment, which wins over defaults", () => {
  const env = {
    EDGEVPNMTU: "1400",
    IFACE: "vpn7",
    EDGEVPNDHT: "false",
    EDGEVPNBOOTSTRAPPEERS: "/ip4/192.0.2.1/tcp/1,/ip4/192.0.2.2/tcp/2",
  };
  const s = resolveSettings({ mtu: "9000" }, env);
  assert.equal(s.mtu, 9000);
  assert.equal(s.interface, "vpn7");
  assert.equal(s.dht, false);
  assert.deepEqual(s.discoveryBootstrapPeers, ["/ip4/192.0.2.1/tcp/1", "/ip4/192.0.2.2/tcp/2"]);
});

Deno.test("booleans take Go's --flag=false as well as a bare flag and --no-flag", () => {
  assert.equal(resolveSettings({ mdns: "false" }, {}).mdns, false);
  assert.equal(resolveSettings({ mdns: true }, {}).mdns, true);
  assert.equal(resolveSettings({ mdns: false }, { EDGEVPNMDNS: "true" }).mdns, false);
  assert.equal(resolveSettings({ dht: "0" }, {}).dht, false);
});

Deno.test("list flags accept repetition and commas", () => {
  const s = resolveSettings({ blacklist: ["10.0.0.0/8,1.2.3.4/32", "12D3KooWX"] }, {});
  assert.deepEqual(s.blacklist, ["10.0.0.0/8", "1.2.3.4/32", "12D3KooWX"]);
});

Deno.test("bad values name the flag or variable and what was expected", () => {
  const cases: [Parameters<typeof resolveSettings>, RegExp][] = [
    [[{ mtu: "big" }, {}], /^--mtu: expected an integer, got "big"$/],
    [[{}, { EDGEVPNMTU: "1.5" }], /^EDGEVPNMTU: expected an integer/],
    [[{ mdns: "maybe" }, {}], /^--mdns: expected true or false/],
    [[{ timeout: "soon" }, {}], /^--timeout: expected a duration/],
    [[{ discoveryInterval: "-5" }, {}], /^--discovery-interval: expected a number of seconds/],
    [
      [{ logLevel: "loud" }, {}],
      /^--log-level: expected debug, info, warn, error or fatal, got "loud"$/,
    ],
    [[{ logFormat: "xml" }, {}], /^--log-format: expected text or json, got "xml"$/],
    [[{}, { EDGEVPNOWNERSHIP: "enabled" }], /^EDGEVPNOWNERSHIP: expected off, observe or enforce/],
    [[{ vpnProtocol: "AUTO" }, {}], /^--vpn-protocol: expected auto or legacy, got "AUTO"$/],
    [[{ dnsCacheSize: "-1" }, {}], /^--dns-cache-size: expected an integer 0 or more, got "-1"$/],
    [[{}, { APILISTENUNIXMODE: "rw" }], /^APILISTENUNIXMODE: expected an octal file mode/],
    [[{ listenMaddrs: ["tcp://0.0.0.0:1"] }, {}], /^--listen-maddrs: expected multiaddresses/],
  ];
  for (const [args, pattern] of cases) {
    assert.throws(() => resolveSettings(...args), (e) => {
      assert.ok(e instanceof UsageError);
      assert.match(e.message, pattern);
      return true;
    });
  }
});

Deno.test("Go number, boolean and duration syntax", () => {
  assert.equal(parseGoInt("42"), 42);
  assert.equal(parseGoInt("-7"), -7);
  assert.equal(parseGoInt("0x1F"), 31);
  assert.equal(parseGoInt("0o17"), 15);
  assert.equal(parseGoInt("017"), 15);
  assert.equal(parseGoInt("0b101"), 5);
  assert.equal(parseGoInt("1_000_000"), 1000000);
  for (const bad of ["", "1.5", "1e3", "08", "_1", "1_", "0x", "abc", "99999999999999999999"]) {
    assert.equal(parseGoInt(bad), undefined, bad);
  }
  assert.equal(parseGoBool("T"), true);
  assert.equal(parseGoBool("False"), false);
  assert.equal(parseGoBool("yes"), undefined);
  assert.equal(parseGoDuration("15s"), 15000);
  assert.equal(parseGoDuration("1h0m0s"), 3600000);
  assert.equal(parseGoDuration("1.5m"), 90000);
  assert.equal(parseGoDuration("250ms"), 250);
  assert.equal(parseGoDuration("30"), 30000);
  assert.equal(parseGoDuration("5 s"), undefined);
  assert.deepEqual(splitList(" a ,, b "), ["a", "b"]);
  assert.equal(expandHome("~/.edgevpn", "/home/u"), "/home/u/.edgevpn");
  assert.equal(expandHome("/abs", undefined), "/abs");
});

Deno.test("every option has a flag, a help text and a default of its kind", () => {
  // A flag may name different options in scopes no command combines (`--listen` of `api` and
  // of `dns`), never twice in a scope nor beside a common flag.
  const flags = new Set<string>();
  const common = new Set(
    Object.values(OPTIONS).filter((o) => o.scope === "common").map((o) => o.flag),
  );
  for (const [name, spec] of Object.entries(OPTIONS)) {
    const id = `${spec.scope}/${spec.flag}`;
    assert.ok(!flags.has(id), `duplicate flag ${id}`);
    assert.ok(spec.scope === "common" || !common.has(spec.flag), `${id} shadows a common flag`);
    flags.add(id);
    assert.ok(spec.help.length > 0, name);
    const d = spec.default;
    const ok = spec.kind === "bool"
      ? typeof d === "boolean"
      : spec.kind === "list" || spec.kind === "multiaddrs"
      ? Array.isArray(d)
      : ["string", "duration", "mode"].includes(spec.kind)
      ? typeof d === "string"
      : spec.kind === "enum"
      ? (spec as { values: readonly string[] }).values.includes(d as string)
      : typeof d === "number";
    assert.ok(ok, `default of ${name} does not match its kind ${spec.kind}`);
    if (typeof d !== "boolean") parseOptionText(spec, Array.isArray(d) ? d.join(",") : String(d));
  }
});

Deno.test("typed kinds resolve to their values: enums with Go's aliases, octal modes, multiaddr lists", () => {
  const s = resolveSettings({
    logLevel: "WARNING",
    logFormat: " JSON ",
    ownership: " Log-Only ",
    vpnProtocol: "legacy",
    apiListenUnixMode: "0o600",
    listenMaddrs: ["/ip4/127.0.0.1/tcp/0,/ip6/::1/tcp/0"],
  }, {});
  assert.equal(s.logLevel, "warn");
  assert.equal(s.logFormat, "json");
  assert.equal(s.ownership, "observe");
  assert.equal(s.vpnProtocol, "legacy");
  assert.equal(s.apiListenUnixMode, 0o600);
  assert.deepEqual(s.listenMaddrs, ["/ip4/127.0.0.1/tcp/0", "/ip6/::1/tcp/0"]);
  const repeated = resolveSettings({
    discoveryBootstrapPeers: ["/ip4/192.0.2.1/tcp/1", "/dns4/a/tcp/2,/dns4/b/tcp/3"],
  }, {});
  assert.deepEqual(
    repeated.discoveryBootstrapPeers,
    ["/ip4/192.0.2.1/tcp/1", "/dns4/a/tcp/2", "/dns4/b/tcp/3"],
    "a repeated multiaddress flag keeps every value",
  );
  const d = resolveSettings({}, {});
  assert.equal(d.apiListenUnixMode, 0o660, "the default is parsed like a value");
  assert.equal(resolveSettings({ logLevel: "dpanic" }, {}).logLevel, "fatal");
  assert.equal(resolveSettings({ ownership: "" }, {}).ownership, "off");
});

Deno.test("a bad environment variable of an option the command does not take is ignored", () => {
  const env = { DNSCACHESIZE: "-1", EDGEVPNVPNPROTOCOL: "fastest" };
  const s = resolveSettings({}, env, ["common"]);
  assert.equal(s.dnsCacheSize, 200);
  assert.equal(s.vpnProtocol, "auto");
  assert.equal(resolveSettings({}, { DNSCACHESIZE: "7" }, ["common"]).dnsCacheSize, 7);
  assert.throws(() => resolveSettings({}, env, ["common", "dns"]), UsageError);
});
