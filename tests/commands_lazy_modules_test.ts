/**
 * `join` loads at start only what every node needs: the API, metrics and dashboard modules
 * (7 MB of RSS) come with `--api`, Kademlia (3 MB) with `--dht`, DNS with `--dns`. Read from the
 * module graph `deno info` reports, so a new static import that undoes it fails here.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

interface InfoDependency {
  specifier: string;
  code?: { specifier: string };
  isDynamic?: boolean;
}
interface Info {
  modules: { specifier: string; dependencies?: InfoDependency[] }[];
  redirects: Record<string, string>;
}

async function moduleGraph(entry: string): Promise<Info> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** Modules reached from `entry` by static value imports (not type-only, not dynamic). */
function staticClosure(info: Info, entry: string): Set<string> {
  const bySpecifier = new Map(info.modules.map((m) => [m.specifier, m]));
  const resolve = (s: string) => info.redirects[s] ?? s;
  const seen = new Set<string>();
  const queue = [resolve(entry)];
  while (queue.length > 0) {
    const specifier = queue.pop()!;
    if (seen.has(specifier)) continue;
    seen.add(specifier);
    for (const dep of bySpecifier.get(specifier)?.dependencies ?? []) {
      if (dep.code === undefined || dep.isDynamic) continue;
      queue.push(resolve(dep.code.specifier));
    }
  }
  return seen;
}

/** Dynamic imports written in `file`, resolved. */
function dynamicImports(info: Info, file: string): string[] {
  const module = info.modules.find((m) => m.specifier === file);
  return (module?.dependencies ?? [])
    .filter((d) => d.isDynamic && d.code !== undefined)
    .map((d) => info.redirects[d.code!.specifier] ?? d.code!.specifier);
}

Deno.test("join statically loads neither the API, metrics, dashboard, DNS nor Kademlia modules; they are imported when enabled", async () => {
  const entry = new URL("lib/commands/join.ts", ROOT).href;
  const info = await moduleGraph(entry);
  const loaded = [...staticClosure(info, entry)];
  assert.ok(
    loaded.some((s) => s.includes("/lib/node/node.ts")),
    "the closure walk reaches the node",
  );
  assert.ok(loaded.some((s) => s.includes("@libp2p/gossipsub")), "and its npm packages");
  const unwanted = [
    "/lib/commands/api_server.ts",
    "/lib/api/",
    "/lib/dashboard/",
    "/lib/metrics/",
    "/lib/dns/",
    "@libp2p/kad-dht",
    "/hono@",
    "/prom-client@",
  ];
  for (const part of unwanted) {
    assert.deepEqual(loaded.filter((s) => s.includes(part)), [], `${part} is loaded at start`);
  }
  assert.ok(
    dynamicImports(info, entry).some((s) => s.endsWith("/lib/commands/api_server.ts")),
    "join imports the API when asked for",
  );
  const host = new URL("lib/node/libp2p_config.ts", ROOT).href;
  assert.ok(
    dynamicImports(info, host).some((s) => s.includes("@libp2p/kad-dht")),
    "the host imports Kademlia when the DHT is on",
  );
});
