/** The NAT traversal options of a node from Go EdgeVPN's flags (`--relay-service*`, `--autorelay*`, …). */
import type { Settings } from "../config/options.ts";
import { OPTIONS } from "../config/options.ts";
import { parseOptionText } from "../config/settings.ts";
import type { NatOptions } from "../node/nat.ts";
import { UsageError } from "../util/errors.ts";
import type { Logger } from "../util/logger.ts";

/**
 * NAT options from the settings; warns once about the flags that have no counterpart here.
 *
 * @throws {UsageError} `BAD_FLAG` for a negative limit or a static relay without `/p2p/<id>`.
 * @example
 * ```ts ignore
 * const nat = natOptionsOf(settings, logger);
 * nat.relayService; // { maxCircuitsPerPeer: 64, … } or false
 * ```
 */
export function natOptionsOf(s: Settings, logger: Logger): NatOptions {
  for (
    const [name, value] of [
      ["relayServiceMaxData", s.relayServiceMaxData],
      ["relayServiceMaxCircuits", s.relayServiceMaxCircuits],
      ["relayServiceMaxRate", s.relayServiceMaxRate],
      ["natRatelimitGlobal", s.natRatelimitGlobal],
      ["natRatelimitPeer", s.natRatelimitPeer],
    ] as const
  ) {
    if (value < 0) {
      throw new UsageError(
        "BAD_FLAG",
        `--${OPTIONS[name].flag}: expected a number >= 0, got ${value}`,
      );
    }
  }
  for (const relay of s.autorelayStaticPeer) {
    if (!/\/p2p\/[^/]+$/.test(relay)) {
      throw new UsageError(
        "BAD_FLAG",
        `--autorelay-static-peer: expected a multiaddress ending in /p2p/<peer id>, got ${
          JSON.stringify(relay)
        }`,
      );
    }
  }
  const defaultOf = (name: "relayServiceAclRefresh" | "relayServiceBufferSize") =>
    parseOptionText(OPTIONS[name], String(OPTIONS[name].default));
  if (s.relayService && s.relayServiceAclRefresh !== defaultOf("relayServiceAclRefresh")) {
    logger.warn(
      "--relay-service-acl-refresh has no effect: the relay's member list follows the ledger as it changes",
    );
  }
  if (s.relayService && s.relayServiceBufferSize !== defaultOf("relayServiceBufferSize")) {
    logger.warn(
      "--relay-service-buffer-size has no effect: relayed bytes are forwarded as they arrive and flow control bounds the memory of each circuit",
    );
  }
  return {
    relayService: s.relayService
      ? {
        membersOnly: s.relayServiceNetworkOnly,
        maxDataBytes: s.relayServiceMaxData,
        maxDurationMs: s.relayServiceMaxDuration,
        maxCircuitsPerPeer: s.relayServiceMaxCircuits,
        reservationTtlMs: s.relayServiceReservationTtl,
        maxRateBytes: s.relayServiceMaxRate,
      }
      : false,
    autoRelay: s.autorelay
      ? {
        staticRelays: s.autorelayStaticPeer,
        staticOnly: s.autorelayStaticOnly,
        intervalMs: s.autorelayDiscoveryInterval,
      }
      : false,
    holePunch: s.holepunch,
    natService: s.natservice
      ? {
        rateLimit: s.natRatelimit
          ? {
            global: s.natRatelimitGlobal,
            perPeer: s.natRatelimitPeer,
            intervalMs: s.natRatelimitInterval,
          }
          : undefined,
      }
      : false,
    natMap: s.natmap,
    limitedConnections: s.transientConn,
  };
}
