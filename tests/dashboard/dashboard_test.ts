import assert from "node:assert/strict";
import { DASHBOARD_ASSETS } from "../../lib/dashboard/assets.gen.ts";
import { ASSET_TYPES } from "../../lib/dashboard/embed.ts";
import { fetchText } from "../api/helpers.ts";
import { waitFor } from "../node/helpers.ts";
import { startDashboardPair } from "./helpers.ts";

const ASSETS = new URL("../../lib/dashboard/assets/", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("the embedded assets are exactly the files in lib/dashboard/assets (run scripts/vendor_dashboard.ts embed)", async () => {
  const files: string[] = [];
  const walk = async (dir: string, prefix: string) => {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory) await walk(`${dir}/${e.name}`, `${prefix}${e.name}/`);
      else if (ASSET_TYPES[e.name.slice(e.name.lastIndexOf("."))]) files.push(prefix + e.name);
    }
  };
  await walk(ASSETS, "");
  assert.deepEqual(Object.keys(DASHBOARD_ASSETS).sort(), files.sort());
  for (const f of files) {
    assert.equal(DASHBOARD_ASSETS[f], await Deno.readTextFile(ASSETS + f), `${f} is stale`);
  }
  for (const lib of ["preact", "htm", "uPlot"]) assert.ok(files.includes(`vendor/${lib}.LICENSE`));
  for (const text of Object.values(DASHBOARD_ASSETS)) {
    assert.doesNotMatch(
      text,
      /https?:\/\/(?!www\.w3\.org)[a-z0-9.-]+\.[a-z]{2,}\/[^\s"']*\.(js|css|mjs)/i,
      "no CDN",
    );
  }
});

Deno.test("deno compile takes the assets along: they are in cli.ts's module graph", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "cli.ts"],
    cwd: ROOT,
    stderr: "null",
  }).output();
  const graph = JSON.parse(new TextDecoder().decode(out.stdout));
  const modules: string[] = graph.modules.map((m: { specifier: string }) => m.specifier);
  assert.ok(
    modules.some((m) => m.endsWith("/lib/dashboard/assets.gen.ts")),
    "assets.gen.ts reachable from cli.ts",
  );
});

Deno.test("the node serves the page with a strict CSP, its assets, a state snapshot and a live event stream", async () => {
  const pair = await startDashboardPair();
  try {
    const { a, b } = pair;
    const page = await fetchText(`${a.base}/`);
    assert.equal(page.status, 200);
    assert.match(page.text, /<title>EdgeVPN<\/title>/);
    assert.match(page.headers.get("content-security-policy")!, /script-src 'self';/);
    assert.equal(page.headers.get("x-frame-options"), "DENY");
    for (const src of page.text.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)) {
      const asset = await fetchText(a.base + src[1]);
      assert.equal(asset.status, 200, src[1]);
    }
    const app = await fetchText(`${a.base}/assets/app.js`);
    assert.equal(app.headers.get("content-type"), "text/javascript; charset=utf-8");
    assert.equal((await fetchText(`${a.base}/assets/nothing.js`)).status, 404);
    assert.equal((await fetchText(`${a.base}/assets/../deno.json`)).status, 404);

    const state = (await fetchText(`${a.base}/api/dashboard/state`)).json();
    assert.equal(state.node.id, a.mesh.peerId);
    assert.equal(state.writable, false, "no credentials: read-only");
    assert.deepEqual(state.machines.map((m: { Hostname: string }) => m.Hostname), [
      "node-a",
      "node-b",
    ]);
    assert.ok(
      state.peers.some((p: { ID: string; Connected: boolean }) =>
        p.ID === b.mesh.peerId && p.Connected
      ),
    );
    const withToken = (await fetchText(`${a.base}/api/dashboard/state`, {
      headers: { authorization: `Bearer ${a.token}` },
    })).json();
    assert.equal(withToken.writable, true);

    // The event stream pushes a snapshot at once, then on changes.
    const res = await fetch(`${a.base}/api/dashboard/events`);
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const nextState = async () => {
      for (;;) {
        const end = text.indexOf("\n\n");
        if (end >= 0) {
          const event = text.slice(0, end);
          text = text.slice(end + 2);
          const data = /^data: (.*)$/m.exec(event);
          if (data) return JSON.parse(data[1]);
        }
        const { value, done } = await reader.read();
        if (done) throw new Error("stream ended");
        text += value;
      }
    };
    assert.equal((await nextState()).node.id, a.mesh.peerId);
    const added = await fetchText(`${a.base}/api/dashboard/services`, {
      method: "POST",
      body: JSON.stringify({ Name: "web" }),
      headers: { authorization: `Bearer ${a.token}`, "content-type": "application/json" },
    });
    assert.equal(added.status, 200, added.text);
    let seen;
    do seen = await nextState(); while (seen.services.length === 0);
    assert.deepEqual(seen.services, [{ PeerID: a.mesh.peerId, Name: "web", Key: "web" }]);
    assert.ok(seen.blocks.length >= 1);
    await reader.cancel();
    await waitFor(
      () => b.mesh.ledger.currentData().get("services")?.size === 1,
      "the service on b",
    );
    const anonymous = await fetchText(`${a.base}/api/dashboard/files`, {
      method: "POST",
      body: JSON.stringify({ Name: "x" }),
    });
    assert.equal(anonymous.status, 401);
  } finally {
    await pair.close();
  }
});
