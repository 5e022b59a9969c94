/** Which build this is: the release and the git commit it was built from. */
import { VERSION } from "./version.ts";

/** Name of the file `scripts/compile.ts` writes and embeds into the compiled binary. */
export const BUILD_INFO_FILE = "dist/build_info.json";

/** Release and commit of this build. */
export interface BuildInfo {
  version: string;
  /** Full commit hash, with `-dirty` when built from uncommitted changes; "unknown" if not known. */
  commit: string;
}

/**
 * The release and commit: a compiled binary reads the commit embedded by `scripts/compile.ts`;
 * a source checkout asks git (`git rev-parse HEAD`, plus `-dirty` for uncommitted changes).
 *
 * @example
 * ```ts ignore
 * const info = await buildInfo();
 * console.log(`edgevpn ${info.version} (commit ${info.commit})`);
 * ```
 */
export async function buildInfo(): Promise<BuildInfo> {
  const root = new URL("../", import.meta.url);
  if (!/(^|\/)deno$/.test(Deno.execPath())) {
    try {
      const embedded = JSON.parse(await Deno.readTextFile(new URL(BUILD_INFO_FILE, root)));
      if (typeof embedded.commit === "string") return { version: VERSION, commit: embedded.commit };
    } catch {
      // not embedded: fall through to git
    }
  }
  return { version: VERSION, commit: await gitCommit(root.pathname) };
}

/**
 * The commit of the checkout at `dir`, with `-dirty` when it has uncommitted changes to
 * tracked files; "unknown" when git or the repository is missing.
 *
 * @example
 * ```ts ignore
 * await gitCommit("."); // "5de074c…" or "unknown"
 * ```
 */
export async function gitCommit(dir: string): Promise<string> {
  const git = async (...args: string[]) => {
    const out = await new Deno.Command("git", {
      args: ["-C", dir, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  };
  try {
    const head = await git("rev-parse", "HEAD");
    if (!head) return "unknown";
    const status = await git("status", "--porcelain", "--untracked-files=no");
    return status ? `${head}-dirty` : head;
  } catch {
    return "unknown";
  }
}
