/** Reads the import graph and parser definitions of the source tree and checks the layering rules. */
import { parse } from "@babel/parser";

/** One import or re-export of a module, with the specifier as written. */
export interface ModuleImport {
  specifier: string;
  /** `static` for `import`/`export … from`, `dynamic` for `import("…")` with a string literal. */
  kind: "static" | "dynamic";
  line: number;
}

/** What the rules need to know of one source file. */
export interface ModuleFacts {
  imports: ModuleImport[];
  /** Names of every function the file declares (at any depth), with their line. */
  functions: { name: string; line: number }[];
  /** Lines of every `x as unknown as T`: a cast past the type system, into someone's internals. */
  unknownCasts: number[];
}

/** One broken rule, as a line a developer can act on. */
export interface Violation {
  rule:
    | "ffi-imports-lib"
    | "lib-imports-cli"
    | "cidr-parser-twice"
    | "libp2p-outside-node"
    | "area-cycle"
    | "cast-outside-workarounds";
  file: string;
  line: number;
  message: string;
}

interface AstNode {
  type: string;
  loc?: { start: { line: number } };
  [key: string]: unknown;
}

/**
 * Parses TypeScript source with Babel and collects its import specifiers (static imports,
 * `export … from`, `import type`, and `import("…")` / `import(`…`)` with a constant string) and
 * the names of the functions it declares (function declarations, methods, and functions bound
 * to a variable or property). Comments and strings are not code, so JSDoc examples do not count.
 */
export function moduleFacts(source: string): ModuleFacts {
  const ast = parse(source, {
    sourceType: "module",
    plugins: ["typescript"],
    errorRecovery: false,
  }) as unknown as { program: AstNode };
  const facts: ModuleFacts = { imports: [], functions: [], unknownCasts: [] };
  const lineOf = (n: AstNode) => n.loc?.start.line ?? 0;
  const literal = (n: unknown): string | undefined => {
    const node = n as AstNode | undefined;
    if (node?.type === "StringLiteral") return node.value as string;
    if (node?.type === "TemplateLiteral" && (node.expressions as unknown[]).length === 0) {
      return ((node.quasis as AstNode[])[0].value as { cooked: string }).cooked;
    }
    return undefined;
  };
  const nameOf = (n: unknown): string | undefined => {
    const node = n as AstNode | undefined;
    if (node?.type === "Identifier") return node.name as string;
    return literal(node);
  };
  const visit = (node: AstNode): void => {
    switch (node.type) {
      case "ImportDeclaration":
      case "ExportAllDeclaration":
      case "ExportNamedDeclaration": {
        const specifier = literal(node.source);
        if (specifier !== undefined) {
          facts.imports.push({ specifier, kind: "static", line: lineOf(node) });
        }
        break;
      }
      case "ImportExpression": {
        const specifier = literal(node.source);
        if (specifier !== undefined) {
          facts.imports.push({ specifier, kind: "dynamic", line: lineOf(node) });
        }
        break;
      }
      case "CallExpression": {
        // Babel without `createImportExpressions` reports `import("x")` as a call of `Import`.
        if ((node.callee as AstNode).type === "Import") {
          const specifier = literal((node.arguments as AstNode[])[0]);
          if (specifier !== undefined) {
            facts.imports.push({ specifier, kind: "dynamic", line: lineOf(node) });
          }
        }
        break;
      }
      case "TSImportType": {
        // Babel 8 names the string `source`; Babel 7 called it `argument`.
        const specifier = literal(node.source) ?? literal(node.argument);
        if (specifier !== undefined) {
          facts.imports.push({ specifier, kind: "static", line: lineOf(node) });
        }
        break;
      }
      case "TSAsExpression": {
        const inner = node.expression as AstNode;
        if (
          inner.type === "TSAsExpression" &&
          (inner.typeAnnotation as AstNode).type === "TSUnknownKeyword"
        ) facts.unknownCasts.push(lineOf(node));
        break;
      }
      case "FunctionDeclaration":
      case "TSDeclareFunction": {
        const name = nameOf(node.id);
        if (name) facts.functions.push({ name, line: lineOf(node) });
        break;
      }
      case "VariableDeclarator": {
        const init = node.init as AstNode | undefined;
        const name = nameOf(node.id);
        if (name && isFunction(init)) facts.functions.push({ name, line: lineOf(node) });
        break;
      }
      case "ClassMethod":
      case "ClassPrivateMethod":
      case "ObjectMethod":
      case "TSDeclareMethod": {
        const name = nameOf(node.key) ?? nameOf((node.key as AstNode)?.id);
        if (name) facts.functions.push({ name, line: lineOf(node) });
        break;
      }
      case "ClassProperty":
      case "ClassPrivateProperty":
      case "ObjectProperty": {
        const name = nameOf(node.key) ?? nameOf((node.key as AstNode)?.id);
        if (name && isFunction(node.value as AstNode | undefined)) {
          facts.functions.push({ name, line: lineOf(node) });
        }
        break;
      }
    }
    for (const [key, value] of Object.entries(node)) {
      if (key === "loc" || key === "start" || key === "end" || key === "extra") continue;
      if (Array.isArray(value)) {
        for (const child of value) if (isNode(child)) visit(child);
      } else if (isNode(value)) {
        visit(value);
      }
    }
  };
  visit(ast.program);
  return facts;
}

function isNode(value: unknown): value is AstNode {
  return typeof value === "object" && value !== null &&
    typeof (value as { type?: unknown }).type === "string";
}

function isFunction(node: AstNode | undefined): boolean {
  return node?.type === "ArrowFunctionExpression" || node?.type === "FunctionExpression";
}

/**
 * A function that parses CIDR or IP-address text: its name says so (`parseCidr`,
 * `parseCIDRList`, `cidrFromText`, `parseIp`, `parseIPv6`, `decodeIpv4`, …). The tree keeps all
 * of them in one module (the IP module); a second module defining one is a second parser whose
 * behaviour will drift from the first, as the node's and the VPN's parsers once did.
 * Header parsers (`parseIPv4Header`) and formatters do not count.
 */
export const ADDRESS_PARSER_NAME =
  /^(parse|decode|read|to)(ip|ipv4|ipv6|ipaddress|ipaddr|cidrs?|cidrlist|prefix|subnet)$|^(parse|decode)\w*cidr|^cidrs?(of|from)/i;

/**
 * Packages that are libp2p itself or its transports, muxers, encryption and address types.
 * `multiformats` (CIDs and base encodings) is not one: the crypto and VPN configuration use its
 * base58 codec for peer IDs, which needs no libp2p.
 */
export const LIBP2P_SPECIFIER =
  /^(npm:\/?)?(libp2p(@|\/|$)|@libp2p\/|@chainsafe\/|@multiformats\/)/;

/** The one file of `lib/` allowed to cast through `unknown` into dependency internals. */
export const WORKAROUNDS_FILE = "lib/node/workarounds.ts";

/** Where libp2p may be imported: the node layer and its own tests. */
export function mayImportLibp2p(file: string): boolean {
  return file.startsWith("lib/node/") || file.startsWith("tests/node/");
}

/** A specifier that names no file of the tree: a package, a `node:` builtin, or a URL. */
export function isExternal(specifier: string): boolean {
  return !specifier.startsWith(".") && !specifier.startsWith("/") &&
    !specifier.startsWith("file:");
}

/** Resolves a relative specifier of `file` (both relative to the repository root). */
export function resolveSpecifier(file: string, specifier: string): string {
  return new URL(specifier, `file:///repo/${file}`).pathname.replace(/^\/repo\//, "");
}

/**
 * Checks the layering rules over a tree given as `path → facts` (paths relative to the
 * repository root, with `/`):
 * - `ffi/` imports only `ffi/`, `node:` builtins and packages (it is below `lib/`);
 * - `lib/` never imports `cli.ts` (the CLI calls the library, not the other way round);
 * - address and CIDR parsers (see {@link ADDRESS_PARSER_NAME}) live in one module only;
 * - libp2p packages (see {@link LIBP2P_SPECIFIER}) are imported only by `lib/node/`;
 * - the areas of `lib/` (one per folder) and `ffi/` import each other without a cycle, so
 *   every dependency points one way (see {@link areaOf});
 * - `as unknown as` (a cast into a dependency's internals) appears in `lib/` and `ffi/` only in
 *   {@link WORKAROUNDS_FILE}, headed by the dependency versions it was written for.
 */
export function checkArchitecture(tree: ReadonlyMap<string, ModuleFacts>): Violation[] {
  const violations: Violation[] = [];
  const parsers = new Map<string, { name: string; line: number }[]>();
  for (const [file, facts] of tree) {
    for (const imp of facts.imports) {
      const external = isExternal(imp.specifier);
      const target = external ? imp.specifier : resolveSpecifier(file, imp.specifier);
      if (file.startsWith("ffi/") && !external && !target.startsWith("ffi/")) {
        violations.push({
          rule: "ffi-imports-lib",
          file,
          line: imp.line,
          message:
            `${file}:${imp.line} imports ${imp.specifier}: ffi/ may import only ffi/, node: builtins and packages`,
        });
      }
      if (file.startsWith("lib/") && !external && target === "cli.ts") {
        violations.push({
          rule: "lib-imports-cli",
          file,
          line: imp.line,
          message:
            `${file}:${imp.line} imports ${imp.specifier}: lib/ must not depend on the command line`,
        });
      }
      if (external && LIBP2P_SPECIFIER.test(imp.specifier) && !mayImportLibp2p(file)) {
        violations.push({
          rule: "libp2p-outside-node",
          file,
          line: imp.line,
          message: `${file}:${imp.line} imports ${imp.specifier}: only lib/node/ talks to libp2p`,
        });
      }
    }
    if ((file.startsWith("lib/") || file.startsWith("ffi/")) && file !== WORKAROUNDS_FILE) {
      for (const line of facts.unknownCasts) {
        violations.push({
          rule: "cast-outside-workarounds",
          file,
          line,
          message:
            `${file}:${line} casts through unknown: reach into dependency internals only in ${WORKAROUNDS_FILE}`,
        });
      }
    }
    const defined = facts.functions.filter((f) => ADDRESS_PARSER_NAME.test(f.name));
    if (defined.length > 0) parsers.set(file, defined);
  }
  violations.push(...areaCycles(tree));
  if (parsers.size > 1) {
    const where = [...parsers].map(([file, fns]) =>
      `${file} (${fns.map((f) => `${f.name}:${f.line}`).join(", ")})`
    ).join("; ");
    for (const [file, fns] of parsers) {
      violations.push({
        rule: "cidr-parser-twice",
        file,
        line: fns[0].line,
        message: `address/CIDR parsers are defined in ${parsers.size} modules: ${where}`,
      });
    }
  }
  return violations;
}

/**
 * The area a file belongs to for the cycle rule: `lib/<folder>` for files under a folder of
 * `lib/`, `ffi` for `ffi/`, and the file itself for anything else (`lib/version.ts`, `cli.ts`).
 */
export function areaOf(file: string): string {
  const parts = file.split("/");
  if (parts[0] === "lib" && parts.length > 2) return `lib/${parts[1]}`;
  if (parts[0] === "ffi") return "ffi";
  return file;
}

// Every import between two areas of lib/ and ffi/ that lie on a cycle of areas.
function areaCycles(tree: ReadonlyMap<string, ModuleFacts>): Violation[] {
  const edges = new Map<string, Map<string, { file: string; line: number; specifier: string }>>();
  for (const [file, facts] of tree) {
    if (!file.startsWith("lib/") && !file.startsWith("ffi/")) continue;
    for (const imp of facts.imports) {
      if (isExternal(imp.specifier)) continue;
      const target = resolveSpecifier(file, imp.specifier);
      if (!target.startsWith("lib/") && !target.startsWith("ffi/")) continue;
      const from = areaOf(file);
      const to = areaOf(target);
      if (from === to) continue;
      if (!edges.has(from)) edges.set(from, new Map());
      if (!edges.get(from)!.has(to)) {
        edges.get(from)!.set(to, { file, line: imp.line, specifier: imp.specifier });
      }
    }
  }
  const reaches = (from: string, to: string): boolean => {
    const seen = new Set<string>([from]);
    const stack = [from];
    while (stack.length > 0) {
      for (const next of edges.get(stack.pop()!)?.keys() ?? []) {
        if (next === to) return true;
        if (!seen.has(next)) {
          seen.add(next);
          stack.push(next);
        }
      }
    }
    return false;
  };
  const violations: Violation[] = [];
  for (const [from, targets] of edges) {
    for (const [to, example] of targets) {
      if (!reaches(to, from)) continue;
      violations.push({
        rule: "area-cycle",
        file: example.file,
        line: example.line,
        message:
          `${example.file}:${example.line} imports ${example.specifier}: ${from} -> ${to}, while ${to} already depends on ${from}`,
      });
    }
  }
  return violations;
}
