/** Reading Prometheus exposition text in tests, with an npm text-format parser. */
import parsePrometheusTextFormat from "parse-prometheus-text-format";

/** One parsed metric family. */
interface Family {
  name: string;
  type: string;
  metrics: { value: string; labels?: Record<string, string> }[];
}

/** Parses exposition text into name → family. */
export function parseMetrics(text: string): Map<string, Family> {
  const families = parsePrometheusTextFormat(text) as Family[];
  return new Map(families.map((f) => [f.name, f]));
}

/** The value of `name` whose labels include `labels` (0 when absent). */
export function valueOf(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const m = families.get(name)?.metrics.find((m) =>
    Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)
  );
  return m ? Number(m.value) : 0;
}

/** Cumulative bucket counts of a histogram without labels: upper bound (s) → count, sorted by bound. */
export function histogramBuckets(text: string, name: string): [number, number][] {
  const re = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`, "gm");
  return [...text.matchAll(re)]
    .map((m): [number, number] => [m[1] === "+Inf" ? Infinity : Number(m[1]), Number(m[2])])
    .sort((a, b) => a[0] - b[0]);
}

/**
 * The `q` quantile (0–1), in seconds, of the samples a histogram took between two scrapes, from
 * the differences of their bucket counts, interpolated within a bucket as Prometheus's
 * `histogram_quantile` does (the highest finite bound when the quantile falls past it; 0 without
 * samples).
 */
export function histogramQuantile(
  before: [number, number][],
  after: [number, number][],
  q: number,
): number {
  const at = new Map(before);
  const delta = after.map(([le, n]): [number, number] => [le, n - (at.get(le) ?? 0)]);
  const total = delta.at(-1)?.[1] ?? 0;
  if (total === 0) return 0;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, n] of delta) {
    if (n >= rank) {
      if (le === Infinity) return lower;
      return lower + (le - lower) * (n === below ? 0 : (rank - below) / (n - below));
    }
    lower = le;
    below = n;
  }
  return lower;
}
