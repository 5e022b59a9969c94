/** DNS resource record type numbers and names, as miekg/dns v1.1.72 `TypeToString` lists them. */

/**
 * Type number → name, exactly miekg/dns `TypeToString` (what Go EdgeVPN's API prints).
 *
 * @example
 * ```ts
 * DNS_TYPE_NAMES.get(28); // "AAAA"
 * ```
 */
export const DNS_TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [0, "None"],
  [1, "A"],
  [2, "NS"],
  [3, "MD"],
  [4, "MF"],
  [5, "CNAME"],
  [6, "SOA"],
  [7, "MB"],
  [8, "MG"],
  [9, "MR"],
  [10, "NULL"],
  [12, "PTR"],
  [13, "HINFO"],
  [14, "MINFO"],
  [15, "MX"],
  [16, "TXT"],
  [17, "RP"],
  [18, "AFSDB"],
  [19, "X25"],
  [20, "ISDN"],
  [21, "RT"],
  [23, "NSAP-PTR"],
  [24, "SIG"],
  [25, "KEY"],
  [26, "PX"],
  [27, "GPOS"],
  [28, "AAAA"],
  [29, "LOC"],
  [30, "NXT"],
  [31, "EID"],
  [32, "NIMLOC"],
  [33, "SRV"],
  [34, "ATMA"],
  [35, "NAPTR"],
  [36, "KX"],
  [37, "CERT"],
  [39, "DNAME"],
  [41, "OPT"],
  [42, "APL"],
  [43, "DS"],
  [44, "SSHFP"],
  [45, "IPSECKEY"],
  [46, "RRSIG"],
  [47, "NSEC"],
  [48, "DNSKEY"],
  [49, "DHCID"],
  [50, "NSEC3"],
  [51, "NSEC3PARAM"],
  [52, "TLSA"],
  [53, "SMIMEA"],
  [55, "HIP"],
  [56, "NINFO"],
  [57, "RKEY"],
  [58, "TALINK"],
  [59, "CDS"],
  [60, "CDNSKEY"],
  [61, "OPENPGPKEY"],
  [62, "CSYNC"],
  [63, "ZONEMD"],
  [64, "SVCB"],
  [65, "HTTPS"],
  [99, "SPF"],
  [100, "UINFO"],
  [101, "UID"],
  [102, "GID"],
  [103, "UNSPEC"],
  [104, "NID"],
  [105, "L32"],
  [106, "L64"],
  [107, "LP"],
  [108, "EUI48"],
  [109, "EUI64"],
  [128, "NXNAME"],
  [249, "TKEY"],
  [250, "TSIG"],
  [251, "IXFR"],
  [252, "AXFR"],
  [253, "MAILB"],
  [254, "MAILA"],
  [255, "ANY"],
  [256, "URI"],
  [257, "CAA"],
  [258, "AVC"],
  [260, "AMTRELAY"],
  [261, "RESINFO"],
  [32768, "TA"],
  [32769, "DLV"],
  [65535, "Reserved"],
]);

const NUMBERS: ReadonlyMap<string, number> = new Map(
  [...DNS_TYPE_NAMES].map(([n, name]) => [name.toUpperCase(), n]),
);

/**
 * The name of a type number: the miekg/dns name, else the RFC 3597 form `TYPE<n>` (where Go
 * EdgeVPN prints an empty string).
 *
 * @example
 * ```ts
 * dnsTypeName(1); // "A"
 * dnsTypeName(65280); // "TYPE65280"
 * ```
 */
export function dnsTypeName(type: number): string {
  return DNS_TYPE_NAMES.get(type) ?? `TYPE${type}`;
}

/**
 * The number of a type name, case-insensitively, also accepting the RFC 3597 form `TYPE<n>`;
 * undefined when unknown (where Go EdgeVPN silently uses 0).
 *
 * @example
 * ```ts
 * dnsTypeNumber("aaaa"); // 28
 * dnsTypeNumber("TYPE65280"); // 65280
 * dnsTypeNumber("BOGUS"); // undefined
 * ```
 */
export function dnsTypeNumber(name: string): number | undefined {
  const upper = name.toUpperCase();
  const known = NUMBERS.get(upper);
  if (known !== undefined) return known;
  const m = /^TYPE([0-9]{1,5})$/.exec(upper);
  if (!m) return undefined;
  const n = Number(m[1]);
  return n <= 0xffff ? n : undefined;
}
