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
