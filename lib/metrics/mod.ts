/** Prometheus metrics of a node. */
export * from "./prometheus.ts";
