/** Go `time` text forms EdgeVPN puts on the wire: `Time.String()` in UTC and RFC 3339. */

const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;

/**
 * Converts epoch milliseconds (possibly fractional) to epoch nanoseconds.
 *
 * @example
 * ```ts
 * msToNs(1.5); // 1500000n
 * ```
 */
export function msToNs(ms: number): bigint {
  const whole = Math.floor(ms);
  return BigInt(whole) * NS_PER_MS + BigInt(Math.round((ms - whole) * 1e6));
}

/**
 * Go's `t.UTC().String()`: `2006-01-02 15:04:05.999999999 +0000 UTC`, the fraction trimmed of
 * trailing zeros and omitted when zero.
 *
 * @example
 * ```ts
 * goTimeString(1767225600_123000000n); // "2026-01-01 00:00:00.123 +0000 UTC"
 * ```
 */
export function goTimeString(epochNs: bigint): string {
  let seconds = epochNs / NS_PER_S;
  let frac = epochNs % NS_PER_S;
  if (frac < 0n) {
    frac += NS_PER_S;
    seconds -= 1n;
  }
  const d = new Date(Number(seconds) * 1000);
  const date = `${goYear(d.getUTCFullYear())}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`;
  const time = `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`;
  const fraction = frac === 0n ? "" : "." + frac.toString().padStart(9, "0").replace(/0+$/, "");
  return `${date} ${time}${fraction} +0000 UTC`;
}

/**
 * Go's `t.UTC().Format(time.RFC3339)` (whole seconds), the heartbeat value format.
 *
 * @example
 * ```ts
 * formatRfc3339Seconds(Date.UTC(2026, 0, 1)); // "2026-01-01T00:00:00Z"
 * ```
 */
export function formatRfc3339Seconds(epochMs: number): string {
  const d = new Date(Math.floor(epochMs / 1000) * 1000);
  return `${goYear(d.getUTCFullYear())}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}T` +
    `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}Z`;
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{1,2}):(\d{2}):(\d{2})(?:[.,](\d+))?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Parses text the way Go's `time.Parse(time.RFC3339, s)` accepts it; returns epoch nanoseconds,
 * or undefined when Go would return an error.
 *
 * @example
 * ```ts
 * parseRfc3339("2026-01-01T00:00:00Z"); // 1767225600000000000n
 * ```
 */
export function parseRfc3339(text: string): bigint | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  if (month < 1 || month > 12 || day < 1 || day > daysIn(month, year)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetSeconds = 0;
  if (m[8] !== "Z") {
    const zh = Number(m[8].slice(1, 3));
    const zm = Number(m[8].slice(4, 6));
    if (zh > 23 || zm > 59) return undefined;
    offsetSeconds = (zh * 60 + zm) * 60 * (m[8][0] === "-" ? -1 : 1);
  }
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, 0);
  const nanos = m[7] ? BigInt(m[7].slice(0, 9).padEnd(9, "0")) : 0n;
  return (BigInt(d.getTime() / 1000) - BigInt(offsetSeconds)) * NS_PER_S + nanos;
}

function daysIn(month: number, year: number): number {
  if (month === 2) return (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)) ? 29 : 28;
  return [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

function goYear(year: number): string {
  return year < 0 ? `-${String(-year).padStart(4, "0")}` : String(year).padStart(4, "0");
}
