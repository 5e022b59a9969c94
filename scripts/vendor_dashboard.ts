/**
 * Developer tooling for the dashboard's assets:
 *   deno run -A scripts/vendor_dashboard.ts vendor   → fetches Preact, htm and uPlot with `npm pack`
 *                                                      into lib/dashboard/assets/vendor/, then embeds
 *   deno run -A scripts/vendor_dashboard.ts embed    → regenerates lib/dashboard/assets.gen.ts from
 *                                                      lib/dashboard/assets/ (run after editing them)
 * The generated module is what the node serves, so `deno compile` ships the assets inside the
 * binary; tests/dashboard/assets_test.ts fails when it differs from the files.
 */
import { ASSET_TYPES, embedAssets } from "../lib/dashboard/embed.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const ASSETS = `${ROOT}lib/dashboard/assets`;

/** The npm packages vendored, and which of their files go where. */
const PACKAGES = [
  {
    spec: "preact@11.2.0",
    files: [
      ["dist/preact.mjs", "preact.mjs"],
      ["hooks/dist/hooks.mjs", "hooks.mjs"],
      ["LICENSE", "preact.LICENSE"],
    ],
  },
  { spec: "htm@3.1.1", files: [["dist/htm.mjs", "htm.mjs"], ["LICENSE", "htm.LICENSE"]] },
  {
    spec: "uplot@1.6.32",
    files: [
      ["dist/uPlot.iife.min.js", "uPlot.iife.min.js"],
      ["dist/uPlot.min.css", "uPlot.min.css"],
      ["LICENSE", "uPlot.LICENSE"],
    ],
  },
] as const;

async function run(cmd: string, args: string[], cwd: string): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, stderr: "inherit" }).output();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed`);
  return new TextDecoder().decode(out.stdout);
}

async function vendor(): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "edgevpn-vendor-" });
  try {
    for (const pkg of PACKAGES) {
      const tarball = (await run("npm", ["pack", "--silent", pkg.spec], tmp)).trim().split("\n")
        .pop()!;
      const dir = `${tmp}/${pkg.spec}`;
      await Deno.mkdir(dir);
      await run("tar", ["xzf", `${tmp}/${tarball}`, "-C", dir], tmp);
      for (const [from, to] of pkg.files) {
        let text = await Deno.readTextFile(`${dir}/package/${from}`);
        // No bundler and no import map: point bare imports at the vendored files, and drop
        // source map comments (the maps are not shipped).
        text = text.replace(/from\s*"preact"/g, 'from"./preact.mjs"')
          .replace(/\n?\/\/# sourceMappingURL=\S+\s*$/, "\n");
        await Deno.writeTextFile(`${ASSETS}/vendor/${to}`, text);
      }
      console.log(`vendored ${pkg.spec}`);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

async function embed(): Promise<void> {
  const files = new Map<string, string>();
  const walk = async (dir: string, prefix: string) => {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory) await walk(`${dir}/${e.name}`, `${prefix}${e.name}/`);
      else if (ASSET_TYPES[e.name.slice(e.name.lastIndexOf("."))]) {
        files.set(prefix + e.name, await Deno.readTextFile(`${dir}/${e.name}`));
      }
    }
  };
  await walk(ASSETS, "");
  const out = `${ROOT}lib/dashboard/assets.gen.ts`;
  await Deno.writeTextFile(out, embedAssets(files));
  await run(Deno.execPath(), ["fmt", "--quiet", out], ROOT);
  console.log(`embedded ${files.size} assets in ${out}`);
}

const mode = Deno.args[0];
if (mode === "vendor") {
  await vendor();
  await embed();
} else if (mode === "embed") {
  await embed();
} else {
  console.error("usage: vendor_dashboard.ts vendor | embed");
  Deno.exit(2);
}
