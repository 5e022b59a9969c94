/** The web dashboard served by the node: page, embedded assets, live state. */
export * from "./dashboard.ts";
export * from "./embed.ts";
