/**
 * The dashboard in a real browser: Debian's chromium driven by playwright-core. Two nodes on
 * loopback; the page opens through the login link, shows both machines and a service, adds a
 * DNS record that the other node's API then serves, and shows a peer's throughput move during
 * a transfer. Screenshots go to test-artifacts/dashboard/. Skipped (with the reason) where
 * chromium is missing.
 */
import assert from "node:assert/strict";
import { chromium, type Page } from "playwright-core";
import { fetchText } from "../api/helpers.ts";
import { waitFor } from "../node/helpers.ts";
import { startDashboardPair } from "./helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = new URL("../../test-artifacts/dashboard/", import.meta.url).pathname;
const TRANSFER_PROTOCOL = "/edgevpn-test/transfer/1.0";

function skipReason(): string | undefined {
  try {
    Deno.statSync(CHROMIUM);
    return undefined;
  } catch {
    return `${CHROMIUM} not found (apt-get install chromium)`;
  }
}
const skip = skipReason();
if (skip) console.log(`dashboard browser test skipped: ${skip}`);

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage: true });
}

Deno.test({
  name:
    "browser: login link, both machines, a service, a DNS record added from the page, throughput moving",
  ignore: skip !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    const profile = await Deno.makeTempDir({ prefix: "edgevpn-chromium-" });
    const pair = await startDashboardPair();
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1100, height: 800 },
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    let sending = false;
    let sender: Promise<void> | undefined;
    try {
      const { a, b } = pair;
      await b.mesh.ledger.add("services", { web: { PeerID: b.mesh.peerId, Name: "web" } });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
      page.on("response", (r) => r.status() >= 400 && errors.push(`${r.status()} ${r.url()}`));

      await page.goto(a.loginLink);
      assert.equal(new URL(page.url()).pathname, "/", "the login link lands on the dashboard");
      const cookies = await context.cookies();
      const session = cookies.find((c) => c.name === "edgevpn_session");
      assert.ok(session?.httpOnly, "HttpOnly session cookie");
      assert.equal(session?.sameSite, "Strict");
      await page.waitForSelector("#count-machines");
      await waitFor(async () => (await page.textContent("#count-machines")) === "2", "2 machines");
      assert.match((await page.textContent("header"))!, /Log out/, "writable after login");
      await shot(page, "1-overview");

      await page.click('a[href="#/machines"]');
      for (const node of [a, b]) {
        await page.waitForSelector(`#machines tr[data-peer="${node.mesh.peerId}"]`);
      }
      const rows = await page.locator("#machines tbody tr").allTextContents();
      assert.ok(rows.some((r) => r.includes("node-a") && r.includes("10.1.0.1")), rows.join("|"));
      assert.ok(rows.some((r) => r.includes("node-b") && r.includes("online")), rows.join("|"));
      await shot(page, "2-machines");

      await page.click('a[href="#/services"]');
      await page.waitForSelector("#services");
      assert.match((await page.textContent("#services"))!, /web/);
      await shot(page, "3-services");

      await page.click('a[href="#/dns"]');
      await page.fill("#dns-name", "web.mesh.");
      await page.selectOption("#dns-type", "A");
      await page.fill("#dns-value", "10.1.0.2");
      await page.click("#dns-add");
      await page.waitForSelector("#dns");
      await waitFor(async () => {
        const other = (await fetchText(`${b.base}/api/dns`)).json();
        return other.some((d: { Regex: string; Records: Record<string, string> }) =>
          d.Regex === "web.mesh." && d.Records.A === "10.1.0.2"
        );
      }, "the record on the other node's API");
      assert.match((await page.textContent("#dns"))!, /web\.mesh\./);
      await shot(page, "4-dns");

      // A transfer from b to a: a's row for b shows the bytes coming in.
      await a.mesh.node.handle(TRANSFER_PROTOCOL, async (s) => {
        for await (const _ of s) { /* sink */ }
        await s.close();
      }, { membersOnly: false });
      const rateCell = `#machines td[data-rate-peer="${b.mesh.peerId}"]`;
      await page.click('a[href="#/machines"]');
      await page.waitForSelector(rateCell);
      const before = (await page.textContent(rateCell))!;
      sending = true;
      sender = (async () => {
        const s = await b.mesh.node.dialProtocol(a.mesh.peerId, TRANSFER_PROTOCOL);
        const chunk = new Uint8Array(64 * 1024);
        while (sending) {
          await s.write(chunk);
          await new Promise((r) => setTimeout(r, 5));
        }
        await s.close();
      })();
      // Gossip and ledger rounds alone stay at a few kB/s; the transfer is megabytes a second.
      assert.doesNotMatch(before, /↓ [\d.]+ (MB|GB)\/s/);
      const moving = /↓ [\d.]+ (MB|GB)\/s/;
      await waitFor(
        async () => moving.test((await page.textContent(rateCell)) ?? ""),
        () => `a kB/s figure in the throughput of b (was "${before}")`,
        20_000,
      );
      const during = (await page.textContent(rateCell))!;
      assert.notEqual(during, before);
      await shot(page, "5-throughput");
      sending = false;
      await sender;
      await page.click('a[href="#/peers"]');
      await page.waitForSelector(".graph svg line", { state: "attached" });
      await shot(page, "6-peers");
      await page.setViewportSize({ width: 390, height: 844 });
      await page.click('a[href="#/machines"]');
      await shot(page, "7-phone");
      assert.deepEqual(errors, [], "no error in the page");
    } finally {
      sending = false;
      await sender?.catch(() => {});
      await context.close();
      await pair.close();
      await Deno.remove(profile, { recursive: true });
    }
  },
});
