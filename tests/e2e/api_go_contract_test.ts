/**
 * The same API requests answered by Go EdgeVPN and by us, in one network across two network
 * namespaces: equal statuses and equal JSON shapes (Go's field names). Runs when EDGEVPN_GO
 * names a Go EdgeVPN v0.35.4 binary; skipped with the reason otherwise.
 */
import assert from "node:assert/strict";
import type { Namespace } from "../../scripts/netns.ts";
import { withNodePair } from "../helpers/node_pair.ts";
import { CliProcess } from "../helpers/process.ts";
import { GoProcess, interopGoBinary } from "../interop/go_edgevpn.ts";

const go = interopGoBinary("Go API contract test");

const TOOL = new URL("./api_load_tool.ts", import.meta.url).pathname;
const API = "http://127.0.0.1:8080";

async function call(ns: Namespace, method: string, path: string, body?: string) {
  const out = await ns.run(Deno.execPath(), [
    "run",
    "-A",
    TOOL,
    "call",
    method,
    API + path,
    ...(body === undefined ? [] : [body]),
  ]);
  const { status, body: text } = JSON.parse(out);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: status as number, json };
}

/** The shape of a JSON value: types, and the field names of struct-like objects. */
function shape(value: unknown, dynamicKeys = false): unknown {
  if (Array.isArray(value)) return value.length ? [shape(value[0])] : [];
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>);
    if (dynamicKeys) return entries.length ? { "*": shape(entries[0][1]) } : {};
    return Object.fromEntries(entries.map(([k, v]) => [k, shape(v)]).sort());
  }
  return value === null ? "null" : typeof value;
}

Deno.test({
  name: "Go EdgeVPN and we answer the same API requests with the same statuses and shapes",
  ignore: go === undefined,
  fn: () =>
    withNodePair({ prefix: "evg", subnet: 238, tempPrefix: "evgo" }, async (p) => {
      const { a: goSide, b: ourSide, processes } = p;
      const node = new CliProcess([
        "api",
        "--token",
        p.token,
        "--listen",
        "127.0.0.1:8080",
        "--api-auth=false",
        "--privkey-cache",
        "--privkey-cache-dir",
        ourSide.dir,
        "--listen-maddrs",
        ourSide.listen,
        "--dht=false",
        "--mdns=false",
        "--ledger-synchronization-interval",
        "1",
      ], { netns: ourSide.ns.name });
      processes.push(node);
      await node.waitFor(/API listening/);
      // Go dials its bootstrap peers only at start-up: ours must already listen. Go is
      // configured by its environment variables here.
      processes.push(
        new GoProcess(go!.path, ["api", "--listen", "127.0.0.1:8080"], {
          netns: goSide.ns.name,
          home: goSide.dir,
          env: {
            EDGEVPNTOKEN: p.token,
            EDGEVPNLISTENMADDRS: goSide.listen,
            EDGEVPNBOOTSTRAPPEERS: ourSide.peer,
            EDGEVPNDHT: "false",
            EDGEVPNMDNS: "false",
            EDGEVPNLEDGERSYNCINTERVAL: "1",
          },
        }),
      );
      const both = async (method: string, path: string, body?: string) => {
        const [g, d] = [
          await call(goSide.ns, method, path, body),
          await call(ourSide.ns, method, path, body),
        ];
        return { g, d };
      };
      // Wait for Go's API and for the two nodes to meet.
      const deadline = Date.now() + 30_000;
      for (;;) {
        const { g, d } = await both("GET", "/api/summary").catch(() => ({
          g: undefined,
          d: undefined,
        }));
        if (g?.status === 200 && d && (d.json as { OnChainNodes: number }).OnChainNodes >= 1) break;
        if (Date.now() > deadline) throw new Error("Go and our node never met");
        await new Promise((r) => setTimeout(r, 500));
      }
      const writes: [string, string, string?][] = [
        ["PUT", "/api/ledger/tests/greeting/hello"],
        ["POST", "/api/dns", JSON.stringify({ Regex: "web.mesh.", Records: { A: "10.1.0.2" } })],
        ["DELETE", "/api/ledger/tests/nothing"],
      ];
      for (const [method, path, body] of writes) {
        const { g, d } = await both(method, path, body);
        assert.equal(d.status, g.status, `${method} ${path}`);
        assert.deepEqual(d.json, g.json, `${method} ${path}`);
      }
      await new Promise((r) => setTimeout(r, 6_000)); // an announce round of the writes
      const reads: [string, boolean?][] = [
        ["/api/summary"],
        ["/api/machines"],
        ["/api/nodes"],
        ["/api/peerstore"],
        ["/api/users"],
        ["/api/services"],
        ["/api/files"],
        ["/api/dns"],
        ["/api/blockchain"],
        ["/api/ledger", true],
        ["/api/ledger/tests", true],
        ["/api/ledger/tests/greeting"],
        ["/api/ledger/nothing"],
        ["/api/ledger/tests/nothing"],
        ["/api/metrics"],
        ["/api/metrics/protocol", true],
        ["/api/metrics/peer", true],
        ["/api/metrics/peer/12D3KooWNobody"],
      ];
      for (const [path, dynamic] of reads) {
        const { g, d } = await both("GET", path);
        assert.equal(d.status, g.status, `GET ${path}`);
        if (path !== "/api/blockchain") {
          assert.deepEqual(shape(d.json, dynamic), shape(g.json, dynamic), `GET ${path}`);
        } else {
          assert.deepEqual(Object.keys(d.json as object), Object.keys(g.json as object));
        }
      }
      const missing = await both("GET", "/api/nothing");
      assert.equal(missing.d.status, missing.g.status);
      assert.equal(typeof (missing.d.json as { message: string }).message, "string");
    }),
});
