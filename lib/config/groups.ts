/** The groups options are shown in, by `--help` and by the configuration reference. */
import type { OptionName, OptionSpec } from "./options.ts";

/** Help groups, in the order `--help` and docs/configuration.md show them. */
export const OPTION_GROUPS = [
  "Network",
  "Discovery",
  "Ledger",
  "VPN",
  "DNS",
  "Egress and proxy",
  "API",
  "Logging",
  "Generation",
  "Go EdgeVPN compatibility (not supported)",
] as const;

/** One of {@link OPTION_GROUPS}. */
export type OptionGroup = typeof OPTION_GROUPS[number];

const BY_NAME: Partial<Record<OptionName, OptionGroup>> = {
  listenMaddrs: "Network",
  dhtAnnounceMaddrs: "Discovery",
  discoveryInterval: "Discovery",
  discoveryBootstrapPeers: "Discovery",
  mdns: "Discovery",
  dht: "Discovery",
  lowProfile: "Discovery",
  ledgerAnnounceInterval: "Ledger",
  ledgerSynchronizationInterval: "Ledger",
  ledgerState: "Ledger",
  ownership: "Ledger",
  ownershipTtl: "Ledger",
  alivenessHealthcheckInterval: "Ledger",
  alivenessHealthcheckScrubInterval: "Ledger",
  alivenessHealthcheckMaxInterval: "Ledger",
  timeout: "VPN",
  mtu: "VPN",
  bootstrapIface: "VPN",
  staticPeertable: "VPN",
  logLevel: "Logging",
  logFormat: "Logging",
  libp2pLogLevel: "Logging",
  stateDir: "Network",
  apiAuth: "API",
  apiHosts: "API",
  apiUrl: "API",
  apiListenUnixMode: "API",
  api: "API",
  apiListen: "API",
  listen: "API",
  enableHealthchecks: "API",
  dns: "DNS",
  egress: "Egress and proxy",
  egressAnnounceTime: "Egress and proxy",
};

/**
 * The help group of an option: compatibility flags that do nothing here go last, the rest by
 * topic (VPN, DNS, API, …), falling back on the commands that take the option.
 *
 * @example
 * ```ts
 * import { OPTIONS } from "./options.ts";
 * optionGroup("mtu", OPTIONS.mtu); // "VPN"
 * ```
 */
export function optionGroup(name: OptionName, spec: OptionSpec): OptionGroup {
  if (spec.compat) return "Go EdgeVPN compatibility (not supported)";
  const named = BY_NAME[name];
  if (named) return named;
  switch (spec.scope) {
    case "vpn":
      return "VPN";
    case "api":
    case "client":
      return "API";
    case "dns":
    case "dnsServer":
      return "DNS";
    case "generate":
      return "Generation";
    case "proxy":
      return "Egress and proxy";
    default:
      return "Network";
  }
}

/**
 * The one-line warning for a compatibility option that was given but has no effect here, naming
 * the flag (and the environment variable it came from) and what is missing.
 *
 * @example
 * ```ts
 * import { OPTIONS } from "./options.ts";
 * unsupportedWarning(OPTIONS.limitEnable, "flag");
 * // "--limit-enable is not supported by EdgeVPN for Deno and is ignored: …"
 * ```
 */
export function unsupportedWarning(spec: OptionSpec, from: "flag" | "env"): string {
  const dash = spec.flag.length === 1 ? "-" : "--";
  const name = from === "env" && spec.env
    ? `${spec.env} (${dash}${spec.flag})`
    : `${dash}${spec.flag}`;
  return `${name} is not supported by EdgeVPN for Deno and is ignored: ${spec.help}`;
}
