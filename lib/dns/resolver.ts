/** What the DNS server answers: machine names of our zone, the `dns` bucket's records (Go EdgeVPN's rules), then forwarding. */
import { LRUCache } from "lru-cache";
import type { Clock } from "../util/clock.ts";
import type { Ledger } from "../ledger/ledger.ts";
import { compareGoStrings } from "../ledger/json.ts";
import { BUCKETS, dnsCodec } from "../ledger/buckets.ts";
import type { Logger } from "../util/logger.ts";
import { type Forwarder, ForwardError } from "./forwarder.ts";
import { parseRecordData, type RecordData, recordOf } from "./records.ts";
import { RegexKeys } from "./regex_keys.ts";
import { dnsTypeName } from "./types.ts";
import { CLASS_IN, type DnsQuestion, type DnsRecord, RCODE } from "./wire.ts";
import { MachineZone, type ZoneMachine } from "./zone.ts";

/** TTL of the answers this server makes (ledger records and machine names). Go EdgeVPN uses 3600. */
export const RECORD_TTL_S = 60;
/** TTL of negative answers in our zone (the SOA's minimum). */
export const NEGATIVE_TTL_S = 10;
/** CNAMEs followed for one question. */
export const MAX_CNAME_CHAIN = 8;
/** Ledger lookups remembered until the `dns` bucket changes. */
const LOOKUP_CACHE_SIZE = 4096;
/** Liveness of machines changes with time alone: the zone is rebuilt at least this often. */
const ZONE_REFRESH_MS = 10_000;

const TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, AAAA: 28, IXFR: 251, AXFR: 252, ANY: 255 };

/** The ledger as the DNS server reads it. */
export type DnsLedger = Pick<
  Ledger,
  "currentData" | "isOwnerLive" | "addEventListener" | "removeEventListener"
>;

/** Where an answer came from, the label of the answers counter. */
export type AnswerSource =
  | "zone"
  | "ledger"
  | "forward"
  | "cache"
  | "refused"
  | "servfail"
  | "notimp";

/** The answer to one question. */
export interface Resolution {
  rcode: number;
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
  /** Authoritative (our zone). */
  authoritative: boolean;
  source: AnswerSource;
}

/** Components of a {@link DnsResolver}. */
export interface DnsResolverComponents {
  ledger: DnsLedger;
  logger: Logger;
  clock: Clock;
  /** Absent when forwarding is off. */
  forwarder?: Forwarder;
}

/** Options of a {@link DnsResolver}. */
export interface DnsResolverOptions {
  /** Zone of machine names (absolute, lower case), or undefined for none. */
  zone?: string;
}

interface Snapshot {
  /** `dns` keys in Go's string order (Go iterates a map: any order would do; ours is stable). */
  keys: string[];
  values: Map<string, Map<number, string>>;
  builtAt: number;
}

/**
 * Answers questions. Order:
 * 1. names of our zone's machines: A/AAAA (and ANY) from the `machines` bucket, authoritative,
 *    never taken from `dns` records (a member's `.*` record cannot take over a machine);
 *    PTR for their VPN addresses;
 * 2. the `dns` bucket as Go EdgeVPN: the first key (RE2, unanchored, against the name as
 *    asked with its trailing dot) with a record of the question's type; a matching key with a
 *    CNAME answers other types with the CNAME followed;
 * 3. other names of our zone: authoritative NXDOMAIN (or no data), never forwarded;
 * 4. forwarding, when on; else REFUSED.
 * Record data invalid for its type is skipped and logged once; keys that are not usable
 * expressions likewise.
 *
 * @example
 * ```ts
 * const resolver = new DnsResolver({ ledger, logger, clock: systemClock }, { zone: "edgevpn." });
 * resolver.start();
 * const r = await resolver.resolve({ name: "web.edgevpn.", type: 1, class: 1 });
 * resolver.stop();
 * ```
 */
export class DnsResolver {
  readonly #ledger: DnsLedger;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #forwarder?: Forwarder;
  readonly #zone?: MachineZone;
  readonly #keys: RegexKeys;
  readonly #lookups = new LRUCache<string, { key?: string; cname?: string }>({
    max: LOOKUP_CACHE_SIZE,
  });
  readonly #parsed = new Map<string, RecordData | null>();
  readonly #loggedRecords = new Set<string>();
  #snapshot?: Snapshot;
  #dirty = true;
  readonly #onChange = () => {
    this.#dirty = true;
  };
  #invalidKeys = 0;
  #invalidRecords = 0;

  constructor(components: DnsResolverComponents, options: DnsResolverOptions = {}) {
    this.#ledger = components.ledger;
    this.#log = components.logger;
    this.#clock = components.clock;
    this.#forwarder = components.forwarder;
    if (options.zone) this.#zone = new MachineZone(options.zone);
    this.#keys = new RegexKeys((skipped) => {
      this.#invalidKeys++;
      this.#log.warn("DNS record key skipped: not a usable regular expression", {
        key: skipped.key.slice(0, 200),
        reason: skipped.reason,
        error: skipped.message,
      });
    });
  }

  /** Keys skipped as unusable, records skipped as invalid, queries cut by the work budget. */
  get counters(): { invalidKeys: number; invalidRecords: number; budgetExhausted: number } {
    return {
      invalidKeys: this.#invalidKeys,
      invalidRecords: this.#invalidRecords,
      budgetExhausted: this.#keys.budgetExhausted,
    };
  }

  /** Follows ledger changes. */
  start(): void {
    this.#ledger.addEventListener("change", this.#onChange);
  }

  /** Stops following the ledger. */
  stop(): void {
    this.#ledger.removeEventListener("change", this.#onChange);
  }

  /** The answer to `question`. */
  async resolve(question: DnsQuestion, depth = 0): Promise<Resolution> {
    if (question.type === TYPE.AXFR || question.type === TYPE.IXFR) {
      return empty(RCODE.NOTIMP, "notimp");
    }
    const local = question.class === CLASS_IN ? this.#local(question) : undefined;
    if (local && "cname" in local) return await this.#follow(question, local.cname, depth);
    if (local) return local;
    if (!this.#forwarder) return empty(RCODE.REFUSED, "refused");
    try {
      const answer = await this.#forwarder.resolve(question);
      return {
        rcode: answer.rcode,
        answers: answer.answers,
        authorities: answer.authorities,
        additionals: answer.additionals,
        authoritative: false,
        source: answer.source === "cache" ? "cache" : "forward",
      };
    } catch (e) {
      if (e instanceof ForwardError) return empty(RCODE.SERVFAIL, "servfail");
      throw e;
    }
  }

  async #follow(question: DnsQuestion, cname: DnsRecord, depth: number): Promise<Resolution> {
    const target = cname.data as string;
    if (depth + 1 >= MAX_CNAME_CHAIN) {
      return { ...empty(RCODE.NOERROR, "ledger"), answers: [cname] };
    }
    const next = await this.resolve({ ...question, name: target }, depth + 1);
    return { ...next, answers: [cname, ...next.answers], authoritative: false, source: "ledger" };
  }

  /** A local answer, a CNAME to follow, or undefined to forward. */
  #local(question: DnsQuestion): Resolution | { cname: DnsRecord } | undefined {
    this.#refresh();
    const zone = this.#zone;
    const place = zone?.lookup(question.name) ?? { kind: "outside" as const };
    if (place.kind === "machine") {
      const types = question.type === TYPE.ANY ? [TYPE.A, TYPE.AAAA] : [question.type];
      if (types.includes(TYPE.A) || types.includes(TYPE.AAAA)) {
        const answers = this.#machineRecords(question.name, place.machine, types);
        return answers.length > 0
          ? { ...empty(RCODE.NOERROR, "zone"), answers, authoritative: true }
          : this.#negative(RCODE.NOERROR);
      }
    }
    if (question.type === TYPE.PTR && zone) {
      const machine = zone.reverse(question.name);
      if (machine) {
        const ptr = recordOf(question.name, RECORD_TTL_S, {
          type: TYPE.PTR,
          packetType: "PTR",
          data: machine.names[0],
        });
        return { ...empty(RCODE.NOERROR, "zone"), answers: [ptr], authoritative: true };
      }
    }
    const fromLedger = this.#fromLedger(question);
    if (fromLedger) return fromLedger;
    if (place.kind === "apex" && question.type === TYPE.SOA) {
      return { ...empty(RCODE.NOERROR, "zone"), answers: [this.#soa()], authoritative: true };
    }
    if (place.kind === "apex" || place.kind === "machine") return this.#negative(RCODE.NOERROR);
    if (place.kind === "none") return this.#negative(RCODE.NXDOMAIN);
    return undefined;
  }

  #fromLedger(question: DnsQuestion): Resolution | { cname: DnsRecord } | undefined {
    const snapshot = this.#snapshot!;
    if (snapshot.keys.length === 0) return undefined;
    const cacheKey = `${question.name}\u0000${question.type}`;
    let found = this.#lookups.get(cacheKey);
    if (!found) {
      let cname: string | undefined;
      const key = this.#keys.firstMatch(question.name, snapshot.keys, (k) => {
        if (this.#record(snapshot, k, question.type)) return true;
        if (question.type !== TYPE.CNAME && cname === undefined && this.#record(snapshot, k, 5)) {
          cname = k;
        }
        return false;
      });
      found = { key, cname };
      this.#lookups.set(cacheKey, found);
    }
    if (found.key !== undefined) {
      const data = this.#record(snapshot, found.key, question.type)!;
      const answer = recordOf(question.name, RECORD_TTL_S, data);
      return { ...empty(RCODE.NOERROR, "ledger"), answers: [answer] };
    }
    if (found.cname !== undefined) {
      const data = this.#record(snapshot, found.cname, TYPE.CNAME)!;
      return { cname: recordOf(question.name, RECORD_TTL_S, data) };
    }
    return undefined;
  }

  /** The parsed record of `key` for `type`, or undefined (absent, or invalid: logged once). */
  #record(snapshot: Snapshot, key: string, type: number): RecordData | undefined {
    const text = snapshot.values.get(key)?.get(type);
    if (text === undefined) return undefined;
    const id = `${key}\u0000${type}\u0000${text}`;
    let parsed = this.#parsed.get(id);
    if (parsed === undefined) {
      try {
        parsed = parseRecordData(type, text);
      } catch (e) {
        parsed = null;
        this.#invalidRecords++;
        if (!this.#loggedRecords.has(id)) {
          this.#loggedRecords.add(id);
          this.#log.warn("DNS record skipped: its data is not valid for its type", {
            key: key.slice(0, 200),
            type: dnsTypeName(type),
            error: (e as Error).message,
          });
        }
      }
      this.#parsed.set(id, parsed);
    }
    return parsed ?? undefined;
  }

  #machineRecords(name: string, machine: ZoneMachine, types: number[]): DnsRecord[] {
    const out: DnsRecord[] = [];
    if (types.includes(TYPE.A)) {
      for (const ip of machine.ipv4) {
        out.push(recordOf(name, RECORD_TTL_S, { type: TYPE.A, packetType: "A", data: ip }));
      }
    }
    if (types.includes(TYPE.AAAA)) {
      for (const ip of machine.ipv6) {
        out.push(recordOf(name, RECORD_TTL_S, { type: TYPE.AAAA, packetType: "AAAA", data: ip }));
      }
    }
    return out;
  }

  #soa(): DnsRecord {
    const zone = this.#zone!.zone;
    return recordOf(zone, NEGATIVE_TTL_S, {
      type: TYPE.SOA,
      packetType: "SOA",
      data: {
        mname: zone,
        rname: `hostmaster.${zone}`,
        serial: 1,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: NEGATIVE_TTL_S,
      },
    });
  }

  #negative(rcode: number): Resolution {
    return { ...empty(rcode, "zone"), authorities: [this.#soa()], authoritative: true };
  }

  /** Rebuilds the snapshot after a ledger change, and the zone at least every 10 s. */
  #refresh(): void {
    const now = this.#clock.now();
    const stale = this.#snapshot === undefined || now - this.#snapshot.builtAt >= ZONE_REFRESH_MS;
    if (!this.#dirty && !stale) return;
    const data = this.#ledger.currentData();
    if (this.#dirty || this.#snapshot === undefined) {
      const bucket = data.get(BUCKETS.dns) ?? new Map<string, string>();
      const keys = [...bucket.keys()].sort(compareGoStrings);
      const values = new Map(keys.map((k) => [k, dnsCodec.parse(bucket.get(k)!)]));
      this.#keys.sync(keys);
      this.#lookups.clear();
      const live = new Set<string>();
      for (const [k, types] of values) {
        for (const [t, text] of types) live.add(`${k}\u0000${t}\u0000${text}`);
      }
      for (const id of this.#parsed.keys()) if (!live.has(id)) this.#parsed.delete(id);
      for (const id of this.#loggedRecords) if (!live.has(id)) this.#loggedRecords.delete(id);
      this.#snapshot = { keys, values, builtAt: now };
    } else {
      this.#snapshot!.builtAt = now;
    }
    this.#dirty = false;
    this.#zone?.rebuild(
      data.get(BUCKETS.machines) ?? new Map(),
      (peer) => this.#ledger.isOwnerLive(peer),
    );
  }
}

function empty(rcode: number, source: AnswerSource): Resolution {
  return { rcode, answers: [], authorities: [], additionals: [], authoritative: false, source };
}
