import assert from "node:assert/strict";
import {
  checkArchitecture,
  type ModuleFacts,
  moduleFacts,
  type Violation,
} from "./helpers/architecture.ts";

const ROOT = new URL("../", import.meta.url);

async function sourceTree(): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for await (const entry of Deno.readDir(new URL(dir, ROOT))) {
      const path = `${dir}${entry.name}`;
      if (entry.isDirectory) {
        // Vendored browser code is not ours to layer.
        if (path === "lib/dashboard/assets/vendor") continue;
        await walk(`${path}/`);
      } else if (entry.isFile && /\.tsx?$/.test(entry.name) && !entry.name.endsWith(".d.ts")) {
        files.set(path, await Deno.readTextFile(new URL(path, ROOT)));
      }
    }
  };
  for (const file of ["mod.ts", "cli.ts"]) {
    files.set(file, await Deno.readTextFile(new URL(file, ROOT)));
  }
  for (const dir of ["lib/", "ffi/", "scripts/", "tests/"]) await walk(dir);
  return files;
}

function factsOf(files: Record<string, string>): Map<string, ModuleFacts> {
  return new Map(Object.entries(files).map(([path, text]) => [path, moduleFacts(text)]));
}

function rules(violations: Violation[]): string[] {
  return violations.map((v) => `${v.rule} ${v.file}:${v.line}`);
}

Deno.test("the source tree keeps its layers: ffi below lib, lib below the CLI, no cycle between areas, one address parser, libp2p only in lib/node, internals cast only in the workaround file", async () => {
  const files = await sourceTree();
  assert.ok(files.size > 100, `expected the whole tree, read ${files.size} files`);
  const tree = new Map([...files].map(([path, text]) => [path, moduleFacts(text)]));
  const violations = checkArchitecture(tree);
  assert.deepEqual(violations.map((v) => v.message), []);
});

Deno.test("import specifiers are read from static, type-only, re-export and dynamic imports, not from comments or strings", () => {
  const facts = moduleFacts(`
/**
 * @example
 * \`\`\`ts
 * import { x } from "../commented.ts";
 * \`\`\`
 */
import { a } from "./a.ts";
import type { B } from "../b.ts";
import "./side_effect.ts";
export { c } from "./c.ts";
export * from "./d.ts";
export * as e from "./e.ts";
const text = 'import { z } from "./in_a_string.ts"';
type T = import("./type_import.ts").T;
async function load() {
  const m = await import("./dynamic.ts");
  const n = await import(\`./template.ts\`);
  const computed = await import(text);
  return [m, n, computed];
}
`);
  assert.deepEqual(facts.imports.map((i) => `${i.kind} ${i.specifier}`), [
    "static ./a.ts",
    "static ../b.ts",
    "static ./side_effect.ts",
    "static ./c.ts",
    "static ./d.ts",
    "static ./e.ts",
    "static ./type_import.ts",
    "dynamic ./dynamic.ts",
    "dynamic ./template.ts",
  ]);
});

Deno.test("ffi/ importing anything of lib/ breaks the layering, packages and node: builtins do not", () => {
  const violations = checkArchitecture(factsOf({
    "ffi/tun.ts": `
      import { setImmediate } from "node:timers";
      import { libc } from "./libc.ts";
      import { x } from "../lib/vpn/gso.ts";
      export async function f() { return await import("../lib/util/errors.ts"); }
    `,
    "ffi/libc.ts": `export const libc = 1;`,
  }));
  assert.deepEqual(rules(violations), [
    "ffi-imports-lib ffi/tun.ts:4",
    "ffi-imports-lib ffi/tun.ts:5",
  ]);
});

Deno.test("lib/ importing cli.ts breaks the layering, statically or lazily", () => {
  const violations = checkArchitecture(factsOf({
    "lib/commands/join.ts": `import type { CommandContext } from "../../cli.ts";`,
    "lib/commands/api.ts": `export const load = () => import("../../cli.ts");`,
    "lib/commands/context.ts": `export interface CommandContext {}`,
    "cli.ts": `import { runJoin } from "./lib/commands/join.ts";`,
  }));
  assert.deepEqual(rules(violations), [
    "lib-imports-cli lib/commands/join.ts:1",
    "lib-imports-cli lib/commands/api.ts:1",
  ]);
});

Deno.test("CIDR or address parsers defined in two modules are reported in both, one module may hold several", () => {
  const one = {
    "lib/net/ip.ts": `
      export function parseCidr(text: string) { return text; }
      export function parseIP(text: string) { return text; }
      export function parseIPv4Header(packet: Uint8Array) { return packet; }`,
  };
  assert.deepEqual(checkArchitecture(factsOf(one)), []);
  for (
    const second of [
      `function parseCidr(t: string) { return t; }`,
      `export const parseCIDRs = (t: string) => t.split(",");`,
      `class Gater { parseIpv6(t: string) { return t; } }`,
      `const helpers = { cidrFromText: function (t: string) { return t; } };`,
    ]
  ) {
    const violations = checkArchitecture(factsOf({ ...one, "lib/node/gater.ts": second }));
    assert.deepEqual(
      violations.map((v) => `${v.rule} ${v.file}`).sort(),
      ["cidr-parser-twice lib/net/ip.ts", "cidr-parser-twice lib/node/gater.ts"],
      second,
    );
  }
});

Deno.test("libp2p packages imported outside lib/node are reported, multiformats codecs are not", () => {
  const violations = checkArchitecture(factsOf({
    "lib/node/node.ts": `import { createLibp2p } from "libp2p"; import { tcp } from "@libp2p/tcp";`,
    "tests/node/muxer_test.ts": `import { multiaddrConnectionPair } from "@libp2p/utils";`,
    "lib/vpn/config.ts": `import { base58btc } from "multiformats/bases/base58";`,
    "lib/mesh/mesh.ts": `import type { PeerId } from "@libp2p/interface";`,
    "lib/api/peers.ts": `import { multiaddr } from "@multiformats/multiaddr";`,
    "lib/hub/hub.ts": `import { noise } from "@chainsafe/libp2p-noise";`,
    "scripts/x.ts": `const m = await import("npm:libp2p@3.3.11");`,
  }));
  assert.deepEqual(rules(violations), [
    "libp2p-outside-node lib/mesh/mesh.ts:1",
    "libp2p-outside-node lib/api/peers.ts:1",
    "libp2p-outside-node lib/hub/hub.ts:1",
    "libp2p-outside-node scripts/x.ts:1",
  ]);
});

Deno.test("two areas importing each other are a cycle, reported at one import of each direction", () => {
  const violations = checkArchitecture(factsOf({
    "lib/crypto/derive.ts": `import type { NetworkConfig } from "../config/network.ts";`,
    "lib/config/token.ts": `\nimport { MAX_OTP_LENGTH } from "../crypto/otp.ts";`,
    "lib/config/load.ts": `import { decodeToken } from "./token.ts";`,
    "lib/ledger/ledger.ts": `import { sha256 } from "../crypto/hash.ts";`,
    "lib/version.ts": `export const VERSION = "1";`,
    "lib/vpn/vpn.ts": `import { VERSION } from "../version.ts"; import "../../ffi/tun.ts";`,
    "ffi/tun.ts": `import { X } from "../lib/vpn/gso.ts";`,
  }));
  assert.deepEqual(rules(violations.filter((v) => v.rule === "area-cycle")), [
    "area-cycle lib/crypto/derive.ts:1",
    "area-cycle lib/config/token.ts:2",
    "area-cycle lib/vpn/vpn.ts:1",
    "area-cycle ffi/tun.ts:1",
  ]);
});

Deno.test("casts through unknown outside the workaround file are reported, in lib/ and ffi/ only", () => {
  const cast = `const m = muxer as unknown as { _newStream(): void };`;
  const violations = checkArchitecture(factsOf({
    "lib/node/workarounds.ts": cast,
    "lib/node/muxer.ts": `\n${cast}`,
    "ffi/tun.ts": `const x = (y as unknown as number) + 1;`,
    "lib/node/fine.ts": `const a = b as unknown; const c = d as string; const e = <unknown> f;`,
    "tests/node/muxer_test.ts": cast,
  }));
  assert.deepEqual(rules(violations), [
    "cast-outside-workarounds lib/node/muxer.ts:2",
    "cast-outside-workarounds ffi/tun.ts:1",
  ]);
});
