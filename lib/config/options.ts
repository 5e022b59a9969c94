/** Every command-line option and environment variable, with Go EdgeVPN's names and defaults. */

import { LOG_FORMATS, LOG_LEVELS } from "../util/logger.ts";

/**
 * How an option's text is parsed and what it resolves to:
 * - `bool`: Go's `strconv.ParseBool`; `int`: Go's `strconv.ParseInt` (base prefixes), within
 *   `min`..`max`; `seconds` and `duration` (Go's `time.ParseDuration`): milliseconds, within
 *   `min`..`max` (in milliseconds);
 * - `enum`: one of `values` (or an alias of one), compared trimmed and lower-cased with `fold`;
 * - `mode`: an octal file mode (`0660`, `0o600`), its permission bits as a number;
 * - `string`; `list` (comma-separated, repeatable); `multiaddrs`: a list of multiaddresses.
 */
export type OptionKind =
  | "bool"
  | "int"
  | "string"
  | "list"
  | "seconds"
  | "duration"
  | "enum"
  | "mode"
  | "multiaddrs";

/** Which commands take an option. */
export type OptionScope =
  | "common"
  | "vpn"
  | "api"
  | "generate"
  | "client"
  | "dns"
  | "dnsServer"
  | "services"
  | "named"
  | "service"
  | "file"
  | "fileReceive"
  | "peergater"
  | "proxy";

/** One option: its flag, environment variable, default and help. */
export interface OptionSpec {
  /** Long flag name without dashes. */
  flag: string;
  /** Single-letter alias, if any. */
  short?: string;
  env?: string;
  kind: OptionKind;
  default: boolean | number | string | readonly string[];
  help: string;
  scope: OptionScope;
  /** Accepted for compatibility with Go EdgeVPN scripts; has no effect here. */
  compat?: boolean;
  /** `enum`: the values it resolves to. */
  values?: readonly string[];
  /** `enum`: other spellings Go accepts, and the value each stands for. */
  aliases?: Readonly<Record<string, string>>;
  /** `enum`: compare trimmed and lower-cased, as Go's parser of this option does. */
  fold?: boolean;
  /** `int`, `seconds`, `duration`: the smallest value (milliseconds for the last two). */
  min?: number;
  /** `int`, `seconds`, `duration`: the largest value (milliseconds for the last two). */
  max?: number;
}

const HOME_DIR = "~/.edgevpn";

/**
 * The option table: the single source of flags, environment variables and defaults used by
 * the CLI, the API and the documentation.
 *
 * @example
 * ```ts
 * OPTIONS.mtu.default; // 1200
 * ```
 */
export const OPTIONS = {
  // Generation (root command only).
  generate: {
    flag: "g",
    kind: "bool",
    default: false,
    help: "print a new network configuration (YAML) and exit",
    scope: "generate",
  },
  base64: {
    flag: "b",
    kind: "bool",
    default: false,
    help: "with -g: print the configuration as a base64 token",
    scope: "generate",
  },
  keyOtpInterval: {
    flag: "key-otp-interval",
    kind: "int",
    default: 360,
    help: "with -g: OTP rotation interval in seconds",
    scope: "generate",
  },
  // Network membership.
  config: {
    flag: "config",
    short: "c",
    env: "EDGEVPNCONFIG",
    kind: "string",
    default: "",
    help: "path of a YAML network configuration (wins over --token)",
    scope: "common",
  },
  token: {
    flag: "token",
    env: "EDGEVPNTOKEN",
    kind: "string",
    default: "",
    help: "base64 network token",
    scope: "common",
  },
  tokenFile: {
    flag: "token-file",
    env: "EDGEVPNTOKENFILE",
    kind: "string",
    default: "",
    help:
      "read the network token from this file (- : standard input), which keeps it out of the process list",
    scope: "common",
  },
  // libp2p host and discovery.
  listenMaddrs: {
    flag: "listen-maddrs",
    env: "EDGEVPNLISTENMADDRS",
    kind: "multiaddrs",
    default: [],
    help: "multiaddresses to listen on (when empty: TCP on every interface, random port)",
    scope: "common",
  },
  dhtAnnounceMaddrs: {
    flag: "dht-announce-maddrs",
    env: "EDGEVPNDHTANNOUNCEMADDRS",
    kind: "multiaddrs",
    default: [],
    help: "multiaddresses announced to the DHT instead of the listen addresses",
    scope: "common",
  },
  discoveryInterval: {
    flag: "discovery-interval",
    env: "EDGEVPNDHTINTERVAL",
    kind: "seconds",
    default: 720,
    help: "seconds between DHT rendezvous rounds",
    scope: "common",
  },
  discoveryBootstrapPeers: {
    flag: "discovery-bootstrap-peers",
    env: "EDGEVPNBOOTSTRAPPEERS",
    kind: "multiaddrs",
    default: [],
    help: "bootstrap multiaddresses with /p2p/<id> (when empty: the public libp2p bootstrap peers)",
    scope: "common",
  },
  mdns: {
    flag: "mdns",
    env: "EDGEVPNMDNS",
    kind: "bool",
    default: true,
    help: "discover peers on the LAN with mDNS",
    scope: "common",
  },
  dht: {
    flag: "dht",
    env: "EDGEVPNDHT",
    kind: "bool",
    default: true,
    help: "discover peers through the Kademlia DHT",
    scope: "common",
  },
  lowProfile: {
    flag: "low-profile",
    env: "EDGEVPNLOWPROFILE",
    kind: "bool",
    default: true,
    help: "DHT buckets of 20 peers, which is also the DHT's default (in Go as here)",
    scope: "common",
  },
  blacklist: {
    flag: "blacklist",
    env: "EDGEVPNBLACKLIST",
    kind: "list",
    default: [],
    help: "CIDRs and peer IDs refused at connection time",
    scope: "common",
  },
  whitelist: {
    flag: "whitelist",
    env: "EDGEVPNWHITELIST",
    kind: "list",
    default: [],
    help: "allow-list of the libp2p resource manager, which is not built here (js-libp2p has none)",
    scope: "common",
    compat: true,
  },
  privkeyCache: {
    flag: "privkey-cache",
    env: "EDGEVPNPRIVKEYCACHE",
    kind: "bool",
    default: false,
    help: "keep the node key on disk so the peer ID survives restarts",
    scope: "common",
  },
  privkeyCacheDir: {
    flag: "privkey-cache-dir",
    env: "EDGEVPNPRIVKEYCACHEDIR",
    kind: "string",
    default: HOME_DIR,
    help: "directory of the cached node key",
    scope: "common",
  },
  connectionHighWater: {
    flag: "connection-high-water",
    env: "EDGEVPN_CONNECTION_HIGH_WATER",
    kind: "int",
    default: 0,
    help:
      "trimming of connections above a high water mark (Go's connmgr) is not built here; js-libp2p keeps its own limits",
    scope: "common",
    compat: true,
  },
  connectionLowWater: {
    flag: "connection-low-water",
    env: "EDGEVPN_CONNECTION_LOW_WATER",
    kind: "int",
    default: 0,
    help:
      "trimming of connections down to a low water mark (Go's connmgr) is not built here; js-libp2p keeps its own limits",
    scope: "common",
    compat: true,
  },
  maxConnections: {
    flag: "max-connections",
    env: "EDGEVPNMAXCONNS",
    kind: "int",
    default: 0,
    help:
      "maximum connections of the libp2p resource manager, which is not built here (js-libp2p has none)",
    scope: "common",
    compat: true,
  },
  // Ledger.
  ledgerAnnounceInterval: {
    flag: "ledger-announce-interval",
    env: "EDGEVPNLEDGERINTERVAL",
    kind: "seconds",
    default: 10,
    help: "seconds between re-announcements of this node's ledger entries",
    scope: "common",
  },
  ledgerSynchronizationInterval: {
    flag: "ledger-synchronization-interval",
    env: "EDGEVPNLEDGERSYNCINTERVAL",
    kind: "seconds",
    default: 10,
    help: "seconds between ledger synchronisation rounds",
    scope: "common",
  },
  ledgerState: {
    flag: "ledger-state",
    env: "EDGEVPNLEDGERSTATE",
    kind: "string",
    default: "",
    help: "directory keeping the ledger on disk (default: in memory)",
    scope: "common",
  },
  ownership: {
    flag: "ownership",
    env: "EDGEVPNOWNERSHIP",
    kind: "enum",
    values: ["off", "observe", "enforce"],
    aliases: { "": "off", log: "observe", "log-only": "observe", on: "enforce" },
    fold: true,
    default: "enforce",
    help: "ledger ownership mode: off, observe or enforce",
    scope: "common",
  },
  ownershipTtl: {
    flag: "ownership-ttl",
    env: "EDGEVPNOWNERSHIPTTL",
    kind: "seconds",
    default: 0,
    help: "seconds before an owner without heartbeat expires (0: 4 x healthcheck interval)",
    scope: "common",
  },
  alivenessHealthcheckInterval: {
    flag: "aliveness-healthcheck-interval",
    env: "HEALTHCHECKINTERVAL",
    kind: "seconds",
    default: 120,
    help: "seconds between heartbeats",
    scope: "common",
  },
  alivenessHealthcheckScrubInterval: {
    flag: "aliveness-healthcheck-scrub-interval",
    env: "HEALTHCHECKSCRUBINTERVAL",
    kind: "seconds",
    default: 600,
    help: "seconds between scrubs of stale entries by the leader",
    scope: "common",
  },
  alivenessHealthcheckMaxInterval: {
    flag: "aliveness-healthcheck-max-interval",
    env: "HEALTHCHECKMAXINTERVAL",
    kind: "seconds",
    default: 900,
    help: "seconds after which a node without heartbeat is considered gone",
    scope: "common",
  },
  // VPN data plane.
  timeout: {
    flag: "timeout",
    env: "EDGEVPNTIMEOUT",
    kind: "duration",
    default: "15s",
    help: "timeout for opening a stream to a peer",
    scope: "common",
  },
  mtu: {
    flag: "mtu",
    env: "EDGEVPNMTU",
    kind: "int",
    default: 1200,
    help: "MTU of the VPN interface",
    scope: "common",
  },
  bootstrapIface: {
    flag: "bootstrap-iface",
    env: "EDGEVPNBOOTSTRAPIFACE",
    kind: "bool",
    default: true,
    help: "configure the interface (address, MTU, link up)",
    scope: "common",
  },
  packetMtu: {
    flag: "packet-mtu",
    env: "EDGEVPNPACKETMTU",
    kind: "int",
    default: 1420,
    help:
      "the interface read buffer is sized from the interface itself (64 KiB with offload), not by this flag",
    scope: "common",
    compat: true,
  },
  channelBufferSize: {
    flag: "channel-buffer-size",
    env: "EDGEVPNCHANNELBUFFERSIZE",
    kind: "int",
    default: 0,
    help: "packets are handed on as they are read, in batches; there is no packet queue to size",
    scope: "common",
    compat: true,
  },
  concurrency: {
    flag: "concurrency",
    kind: "int",
    default: 0,
    help: "packets are handled on one event loop; there are no packet workers to count",
    scope: "common",
    compat: true,
  },
  staticPeertable: {
    flag: "static-peertable",
    env: "EDGEVPNSTATICPEERTABLE",
    kind: "list",
    default: [],
    help: "fixed routes ip:peerid instead of the ledger's machines",
    scope: "common",
  },
  // Logging.
  logLevel: {
    flag: "log-level",
    env: "EDGEVPNLOGLEVEL",
    kind: "enum",
    values: LOG_LEVELS,
    aliases: { warning: "warn", dpanic: "fatal", panic: "fatal" },
    fold: true,
    default: "info",
    help: "log level (Go's names): debug, info, warn, error, dpanic, panic, fatal",
    scope: "common",
  },
  logFormat: {
    flag: "log-format",
    env: "EDGEVPNLOGFORMAT",
    kind: "enum",
    values: LOG_FORMATS,
    fold: true,
    default: "text",
    help: "log lines as text or json (Go's zap field names: level, ts, logger, caller, msg)",
    scope: "common",
  },
  libp2pLogLevel: {
    flag: "libp2p-log-level",
    env: "EDGEVPNLIBP2PLOGLEVEL",
    kind: "string",
    default: "fatal",
    help: "the libp2p layer's own log lines are not routed to the node's log",
    scope: "common",
    compat: true,
  },
  // NAT traversal and relays (Go's flags and defaults; see lib/node/nat.ts).
  natservice: opt(
    "natservice",
    "EDGEVPNNATSERVICE",
    "bool",
    true,
    "answer AutoNAT dial-back requests of peers and ask them about our addresses",
  ),
  natmap: opt(
    "natmap",
    "EDGEVPNNATMAP",
    "bool",
    true,
    "map our TCP port on the LAN's UPnP gateway and announce the mapped address",
  ),
  natRatelimit: opt(
    "nat-ratelimit",
    "EDGEVPNNATRATELIMIT",
    "bool",
    true,
    "rate-limit the AutoNAT dial-back requests we answer",
  ),
  natRatelimitGlobal: opt(
    "nat-ratelimit-global",
    "EDGEVPNNATRATELIMITGLOBAL",
    "int",
    10,
    "AutoNAT requests answered per interval, all peers together",
  ),
  natRatelimitPeer: opt(
    "nat-ratelimit-peer",
    "EDGEVPNNATRATELIMITPEER",
    "int",
    10,
    "AutoNAT requests answered per interval to one peer",
  ),
  natRatelimitInterval: opt(
    "nat-ratelimit-interval",
    "EDGEVPNNATRATELIMITINTERVAL",
    "seconds",
    60,
    "seconds of the AutoNAT rate limit's window",
  ),
  holepunch: opt(
    "holepunch",
    "EDGEVPNHOLEPUNCH",
    "bool",
    true,
    "upgrade relayed connections to direct ones by hole punching (DCUtR)",
  ),
  autorelay: opt(
    "autorelay",
    "EDGEVPNAUTORELAY",
    "bool",
    true,
    "while this node has no public address, hold slots on relays (static ones and members we can dial)",
  ),
  autorelayStaticOnly: opt(
    "autorelay-static-only",
    "EDGEVPNAUTORELAYSTATICONLY",
    "bool",
    false,
    "use only the --autorelay-static-peer relays",
  ),
  autorelayStaticPeer: opt(
    "autorelay-static-peer",
    "EDGEVPNAUTORELAYPEERS",
    "list",
    [],
    "relays to hold a slot on, multiaddresses with /p2p/<id>",
  ),
  autorelayDiscoveryInterval: opt(
    "autorelay-discovery-interval",
    "EDGEVPNAUTORELAYDISCOVERYINTERVAL",
    "duration",
    "5m",
    "how often relay slots are re-examined (lost ones are replaced at once)",
  ),
  relayService: opt(
    "relay-service",
    "EDGEVPN_RELAY_SERVICE",
    "bool",
    true,
    "relay connections between members that cannot reach each other",
  ),
  relayServiceNetworkOnly: opt(
    "relay-service-network-only",
    "EDGEVPN_RELAY_SERVICE_NETWORK_ONLY",
    "bool",
    true,
    "relay only for network members (false: for anyone)",
  ),
  relayServiceAclRefresh: opt(
    "relay-service-acl-refresh",
    "EDGEVPN_RELAY_SERVICE_ACL_REFRESH",
    "duration",
    "30s",
    "accepted for Go compatibility: the relay's member list follows the ledger as it changes",
  ),
  relayServiceMaxData: opt(
    "relay-service-max-data",
    "EDGEVPN_RELAY_MAX_DATA",
    "int",
    1073741824,
    "bytes per direction of one relayed connection (0: no limit)",
  ),
  relayServiceMaxDuration: opt(
    "relay-service-max-duration",
    "EDGEVPN_RELAY_MAX_DURATION",
    "duration",
    "30m0s",
    "lifetime of one relayed connection (0: no limit)",
  ),
  relayServiceMaxCircuits: opt(
    "relay-service-max-circuits",
    "EDGEVPN_RELAY_MAX_CIRCUITS",
    "int",
    64,
    "relayed connections open at once per peer",
  ),
  relayServiceReservationTtl: opt(
    "relay-service-reservation-ttl",
    "EDGEVPN_RELAY_RESERVATION_TTL",
    "duration",
    "1h0m0s",
    "lifetime of a relay slot unless refreshed",
  ),
  relayServiceBufferSize: opt(
    "relay-service-buffer-size",
    "EDGEVPN_RELAY_BUFFER_SIZE",
    "int",
    65536,
    "accepted for Go compatibility: relayed bytes are forwarded as they arrive, flow control bounds memory",
  ),
  relayServiceMaxRate: opt(
    "relay-service-max-rate",
    "EDGEVPN_RELAY_MAX_RATE",
    "int",
    10485760,
    "bytes per second one peer may push through our relay (0: no limit); over it the peer is slowed, not cut",
  ),
  limitEnable: compat("limit-enable", "LIMITENABLE", "bool", false),
  limitFile: compat("limit-file", "LIMITFILE", "string", ""),
  limitScope: compat("limit-scope", "LIMITSCOPE", "string", "system"),
  limitConfigStreams: compat("limit-config-streams", "LIMITCONFIGSTREAMS", "int", 200),
  limitConfigStreamsInbound: compat(
    "limit-config-streams-inbound",
    "LIMITCONFIGSTREAMSINBOUND",
    "int",
    30,
  ),
  limitConfigStreamsOutbound: compat(
    "limit-config-streams-outbound",
    "LIMITCONFIGSTREAMSOUTBOUND",
    "int",
    30,
  ),
  limitConfigConn: compat("limit-config-conn", "LIMITCONFIGCONNS", "int", 200),
  limitConfigConnInbound: compat("limit-config-conn-inbound", "LIMITCONFIGCONNSINBOUND", "int", 30),
  limitConfigConnOutbound: compat(
    "limit-config-conn-outbound",
    "LIMITCONFIGCONNSOUTBOUND",
    "int",
    30,
  ),
  limitConfigFd: compat("limit-config-fd", "LIMITCONFIGFD", "int", 30),
  // Trust zone (Go's PeerGuard; see lib/trustzone/).
  peerguard: opt(
    "peerguard",
    "PEERGUARD",
    "bool",
    false,
    "run the trust zone: members prove they hold a trust-zone key (trustzoneAuth) on the public room",
  ),
  peerguardMode: opt(
    "peerguard-mode",
    "PEERGUARDMODE",
    "string",
    "bound",
    "how challenges are checked: bound (ours: signed text names the sender, a time and a nonce; a replay admits nobody) or go (Go EdgeVPN's constant challenge, replayable)",
  ),
  peergate: opt(
    "peergate",
    "PEERGATE",
    "bool",
    false,
    "with --peerguard: drop ledger messages from peers outside the trust zone, and treat them as non-members",
  ),
  peergateAutoclean: opt(
    "peergate-autoclean",
    "PEERGATE_AUTOCLEAN",
    "bool",
    false,
    "remove trust-zone members that left the network's topic",
  ),
  peergateRelaxed: opt(
    "peergate-relaxed",
    "PEERGATE_RELAXED",
    "bool",
    false,
    "let everything through while the trust zone is empty",
  ),
  peergateAuth: opt(
    "peergate-auth",
    "PEERGATE_AUTH",
    "string",
    "",
    'trust-zone credentials as JSON, e.g. {"ecdsa":{"private_key":"<edgevpn peergater ecdsa-genkey --privkey>"}}',
  ),
  peergateInterval: opt(
    "peergate-interval",
    "EDGEVPNPEERGATEINTERVAL",
    "seconds",
    120,
    "seconds between challenges and trust-zone refreshes",
  ),
  peergaterPrivkey: {
    flag: "privkey",
    kind: "bool",
    default: false,
    help: "print only the private key",
    scope: "peergater",
  },
  peergaterPubkey: {
    flag: "pubkey",
    kind: "bool",
    default: false,
    help: "print only the public key",
    scope: "peergater",
  },
  // Root command / join: the VPN and what runs beside it.
  interface: {
    flag: "interface",
    env: "IFACE",
    kind: "string",
    default: "edgevpn0",
    help: "name of the VPN interface",
    scope: "vpn",
  },
  address: {
    flag: "address",
    env: "ADDRESS",
    kind: "string",
    default: "10.1.0.1/24",
    help: "VPN address of this node, in CIDR form",
    scope: "vpn",
  },
  router: {
    flag: "router",
    env: "ROUTER",
    kind: "string",
    default: "",
    help: "VPN address that receives packets for unknown destinations",
    scope: "vpn",
  },
  dhcp: {
    flag: "dhcp",
    env: "DHCP",
    kind: "bool",
    default: false,
    help: "obtain the VPN address from the network instead of --address",
    scope: "vpn",
  },
  leaseDir: {
    flag: "lease-dir",
    env: "DHCPLEASEDIR",
    kind: "string",
    default: `${HOME_DIR}/leases`,
    help: "directory of DHCP leases",
    scope: "vpn",
  },
  vpnProtocol: {
    flag: "vpn-protocol",
    env: "EDGEVPNVPNPROTOCOL",
    kind: "enum",
    values: ["auto", "legacy"],
    default: "auto",
    help:
      "data plane: auto (our fast protocol where the peer speaks it, else Go's /edgevpn/0.1) or legacy (always /edgevpn/0.1)",
    scope: "vpn",
  },
  tunOffload: {
    flag: "tun-offload",
    env: "EDGEVPNTUNOFFLOAD",
    kind: "bool",
    default: true,
    help:
      "let the kernel hand over TCP segments of up to 64 KiB (GSO); falls back when unsupported",
    scope: "vpn",
  },
  vpnTrace: {
    flag: "vpn-trace",
    env: "EDGEVPNVPNTRACE",
    kind: "string",
    default: "",
    help:
      "debugging: stamp each packet's path (interface, muxer, socket) and write the marks as JSON to this file on exit (see scripts/trace_vpn.ts)",
    scope: "vpn",
  },
  transientConn: opt(
    "transient-conn",
    "TRANSIENTCONN",
    "bool",
    true,
    "let the VPN, services and files use relayed connections while no direct one exists (Go's default: false)",
    "common",
  ),
  api: {
    flag: "api",
    env: "API",
    kind: "bool",
    default: false,
    help: "serve the HTTP API beside the VPN",
    scope: "vpn",
  },
  apiListen: {
    flag: "api-listen",
    env: "APILISTEN",
    kind: "string",
    default: "127.0.0.1:8080",
    help: "address of the HTTP API: host:port or unix:///path",
    scope: "vpn",
  },
  // `edgevpn api`.
  listen: {
    flag: "listen",
    kind: "string",
    default: "127.0.0.1:8080",
    help: "address of the HTTP API: host:port or unix:///path",
    scope: "api",
  },
  enableHealthchecks: {
    flag: "enable-healthchecks",
    env: "ENABLE_HEALTHCHECKS",
    kind: "bool",
    default: false,
    help: "send heartbeats so this node counts as alive",
    scope: "api",
  },
  stateDir: {
    flag: "state-dir",
    env: "EDGEVPNSTATEDIR",
    kind: "string",
    default: HOME_DIR,
    help:
      "directory of this node's files: the network that join creates when given no token, the API token (api-token)",
    scope: "common",
  },
  apiAuth: {
    flag: "api-auth",
    env: "APIAUTH",
    kind: "bool",
    default: true,
    help:
      "require the API token (state dir file api-token) for writes, and for everything off loopback; false: open as Go EdgeVPN",
    scope: "common",
  },
  apiHosts: {
    flag: "api-hosts",
    env: "APIHOSTS",
    kind: "list",
    default: [],
    help: "extra host names the API answers to (Host header), besides its address and localhost",
    scope: "common",
  },
  apiUrl: {
    flag: "api-url",
    env: "EDGEVPNAPIURL",
    kind: "string",
    default: "http://127.0.0.1:8080",
    help: "where the node's API listens (http://host:port)",
    scope: "client",
  },
  apiListenUnixMode: {
    flag: "api-listen-unix-mode",
    env: "APILISTENUNIXMODE",
    kind: "mode",
    default: "0660",
    help: "octal file mode of the API's unix socket",
    scope: "common",
  },
  debug: {
    flag: "debug",
    kind: "bool",
    default: false,
    help: "Go's pprof debugging endpoints do not exist here",
    scope: "common",
    compat: true,
  },
  // DNS server: `--dns` of the root command and join, `edgevpn dns --listen`, shared settings.
  dns: {
    flag: "dns",
    env: "DNSADDRESS",
    kind: "string",
    default: "",
    help: "serve DNS on this address over UDP and TCP, e.g. 127.0.0.1:53 (empty: no DNS server)",
    scope: "vpn",
  },
  dnsListen: {
    flag: "listen",
    env: "DNSADDRESS",
    kind: "string",
    default: "",
    help: "address of the DNS server, UDP and TCP (empty: :53, every interface)",
    scope: "dnsServer",
  },
  dnsForwarder: {
    flag: "dns-forwarder",
    env: "DNSFORWARD",
    kind: "bool",
    default: true,
    help: "forward questions the network cannot answer to --dns-forward-server",
    scope: "dns",
  },
  dnsCacheSize: {
    flag: "dns-cache-size",
    env: "DNSCACHESIZE",
    kind: "int",
    min: 0,
    default: 200,
    help: "forwarded answers kept, each until its TTL runs out (0: no cache)",
    scope: "dns",
  },
  dnsForwardServer: {
    flag: "dns-forward-server",
    env: "DNSFORWARDSERVER",
    kind: "list",
    default: ["8.8.8.8:53", "1.1.1.1:53"],
    help: "DNS servers asked in order, ip[:port]",
    scope: "dns",
  },
  dnsZone: {
    flag: "dns-zone",
    env: "DNSZONE",
    kind: "string",
    default: "edgevpn",
    help:
      "zone of machine names: <hostname>.<zone> and <peer id>.<zone> resolve to VPN addresses (empty: none)",
    scope: "dns",
  },
  // Services: `--expose`/`--connect` of the root command, join, service-add and service-connect.
  expose: {
    flag: "expose",
    env: "EDGEVPNEXPOSE",
    kind: "list",
    default: [],
    help:
      "expose a TCP service to the network as NAME=HOST:PORT (repeatable; the first one also answers Go's service-connect)",
    scope: "services",
  },
  connect: {
    flag: "connect",
    env: "EDGEVPNCONNECT",
    kind: "list",
    default: [],
    help:
      "reach the network's service NAME on a local port as NAME=[IP]:PORT, e.g. db=127.0.0.1:5432 (repeatable)",
    scope: "services",
  },
  // service-add, service-connect, file-send, file-receive (Go's flags, or positional).
  name: {
    flag: "name",
    kind: "string",
    default: "",
    help: "unique name of the service or file in the network (or the first argument)",
    scope: "named",
  },
  serviceAddress: {
    flag: "address",
    kind: "string",
    default: "",
    help:
      "service-add: HOST:PORT of the service (e.g. 127.0.0.1:22); service-connect: [IP]:PORT to listen on (e.g. :8080) (or the second argument)",
    scope: "service",
  },
  path: {
    flag: "path",
    kind: "string",
    default: "",
    help: "file-send: the file to serve; file-receive: where to save it (or the second argument)",
    scope: "file",
  },
  overwrite: {
    flag: "overwrite",
    kind: "bool",
    default: false,
    help: "replace the file at --path if it exists (without it, file-receive refuses)",
    scope: "fileReceive",
  },
  // Egress: `--egress` of the root command and join.
  egress: {
    flag: "egress",
    env: "EGRESS",
    kind: "bool",
    default: false,
    help:
      "be an egress node: members' proxies reach the internet through this node (HTTP, HTTPS, SOCKS5)",
    scope: "vpn",
  },
  egressAnnounceTime: {
    flag: "egress-announce-time",
    env: "EGRESSANNOUNCE",
    kind: "seconds",
    default: 200,
    help: "seconds between announcements of this egress node in the ledger",
    scope: "vpn",
  },
  egressAllowPrivate: {
    flag: "egress-allow-private",
    env: "EGRESSALLOWPRIVATE",
    kind: "bool",
    default: true,
    help:
      "let members reach private, loopback and link-local addresses through this egress node (false: only public addresses, checked after DNS resolution)",
    scope: "vpn",
  },
  // `edgevpn proxy`.
  proxyListen: {
    flag: "listen",
    env: "PROXYLISTEN",
    kind: "string",
    default: ":8080",
    help: "address of the proxy (HTTP, CONNECT and SOCKS5 on one port)",
    scope: "proxy",
  },
  proxyApi: {
    flag: "api",
    env: "API",
    kind: "bool",
    default: false,
    help: "serve the HTTP API beside the proxy",
    scope: "proxy",
  },
  proxyApiListen: {
    flag: "api-listen",
    env: "APILISTEN",
    kind: "string",
    default: "127.0.0.1:8081",
    help:
      "address of the HTTP API with --api (host:port or unix:///path); must differ from --listen",
    scope: "proxy",
  },
  proxyInterval: {
    flag: "interval",
    env: "PROXYINTERVAL",
    kind: "seconds",
    default: 120,
    help: "seconds between announcements of this proxy as a user of the network",
    scope: "proxy",
  },
  proxyDeadInterval: {
    flag: "dead-interval",
    env: "PROXYDEADINTERVAL",
    kind: "seconds",
    default: 600,
    help: "egress nodes without a heartbeat for this many seconds are taken as dead",
    scope: "proxy",
  },
} as const satisfies Record<string, OptionSpec>;

/** Names of the options (camelCase keys of {@link OPTIONS}). */
export type OptionName = keyof typeof OPTIONS;

type ValueOf<S> = S extends { kind: "enum"; values: readonly (infer V)[] } ? V
  : S extends { kind: "bool" } ? boolean
  : S extends { kind: "int" | "seconds" | "duration" | "mode" } ? number
  : S extends { kind: "list" | "multiaddrs" } ? string[]
  : string;

/**
 * Resolved values of every option: booleans, numbers (`seconds` and `duration` kinds in
 * milliseconds, `mode` as permission bits), the values of enums, strings and string lists.
 */
export type Settings = { -readonly [K in OptionName]: ValueOf<typeof OPTIONS[K]> };

function opt<K extends OptionKind>(
  flag: string,
  env: string,
  kind: K,
  value: boolean | number | string | readonly string[],
  help: string,
  scope: OptionScope = "common",
): OptionSpec & { kind: K } {
  return { flag, env, kind, default: value, help, scope };
}

function compat<K extends OptionKind>(
  flag: string,
  env: string,
  kind: K,
  value: boolean | number | string | readonly string[],
  scope: OptionScope = "common",
): OptionSpec & { kind: K } {
  return {
    flag,
    env,
    kind,
    default: value,
    help: compatHelp(flag),
    scope,
    compat: true,
  };
}

/** What a compatibility option of Go EdgeVPN would need that is not built here. */
function compatHelp(flag: string): string {
  if (flag.startsWith("limit-")) {
    return "limits of the libp2p resource manager, which is not built here (js-libp2p has none)";
  }
  if (flag.startsWith("peerg")) return "the trust zone (Go's PeerGuard) is not built yet";
  return "NAT traversal and relays (AutoNAT, UPnP, circuit relay, hole punching) are not built yet";
}
