/**
 * The page-load watch of issue 15, as a newcomer would set it up: a site on
 * another origin includes weir's beacon script; real headless Chromium
 * loads a slow page (an image its server answers after 3.5 s holds the load
 * event back) and a fast one; the beacons reach weir cross-origin
 * (WEIR_CORS_ORIGINS), the 10 s averages close, and the rule
 * "avg(page.load) > 3000" (for 0 s here, a minute in the README) fires for
 * the slow page only, with its advice.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { chromiumArgs, chromiumPath } from "../scripts/screenshot.ts";
import { waitFor } from "./helpers/wait.ts";
import { startTestWeir, type TestWeir } from "./helpers/weir.ts";

let browser: Browser;
let site: ReturnType<typeof Bun.serve>;
let w: TestWeir;
let dir: string;

beforeAll(async () => {
  if (!existsSync(chromiumPath)) throw new Error("install Chromium: apt-get install -y chromium");
  browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
  let weirUrl = "";
  site = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 30,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      if (path === "/pixel.svg") {
        await Bun.sleep(3500); // the slow resource this site's slow page waits for: the page under watch, not the test
        return new Response("<svg xmlns='http://www.w3.org/2000/svg'/>", { headers: { "content-type": "image/svg+xml" } });
      }
      const slow = path === "/checkout" ? `<img src="/pixel.svg">` : "";
      const html = `<!doctype html><title>shop</title>${slow}
        <script src="${weirUrl}/beacon.js" async data-tags='{"app":"shop"}'></script>`;
      return new Response(html, { headers: { "content-type": "text/html" } });
    },
  });
  dir = mkdtempSync(join(tmpdir(), "weir-beacon-"));
  const config = join(dir, "weir.json");
  writeFileSync(config, JSON.stringify({
    rules: [{ name: "page-load", expr: "avg(page.load) > 3000", severity: "warning", advice: "{{labels.page}} loads in {{value}} ms: scale the UI tier" }],
  }));
  w = await startTestWeir({ WEIR_CONFIG: config, WEIR_LATENESS: "0", WEIR_CORS_ORIGINS: `http://127.0.0.1:${site.port}` });
  weirUrl = w.url;
});

afterAll(async () => {
  await browser?.close();
  await w?.stop();
  await site?.stop(true);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("rules - beacons from a page on another origin reach weir, and the page-load rule fires for the slow page only, with its advice", async () => {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  for (const path of ["/", "/checkout", "/"]) await page.goto(`http://127.0.0.1:${site.port}${path}`, { waitUntil: "load" });
  const alerts = async () => (await (await fetch(`${w.url}/api/v1/alerts?rule=page-load`)).json()).alerts as Array<Record<string, unknown>>;
  await waitFor(async () => (await alerts()).length > 0, 30_000, "the page-load rule's transition");
  const got = await alerts();
  expect(got.map((a) => [a.state, a.series])).toEqual([["firing", 'page.load{app="shop",page="/checkout"}']]);
  expect(got[0].value as number).toBeGreaterThan(3000);
  expect(got[0].advice).toBe(`/checkout loads in ${got[0].value} ms: scale the UI tier`);
  // The fast page was measured too, under the threshold.
  const fast = await (await fetch(`${w.url}/api/v1/series?match=${encodeURIComponent("page.load*")}`)).json();
  const keys = fast.series.map((s: { key: string }) => s.key).sort();
  expect(keys).toEqual(['page.load{app="shop",page="/"}', 'page.load{app="shop",page="/checkout"}']);
  const last = fast.series.find((s: { key: string }) => s.key === 'page.load{app="shop",page="/"}').last.value;
  expect(last).toBeLessThan(3000);
  expect(errors).toEqual([]);
  await page.close();
}, 60_000);

test("rules - a page on an origin not in WEIR_CORS_ORIGINS cannot post beacons through its visitors", async () => {
  const r = await fetch(`${w.url}/api/v1/events`, {
    method: "POST", body: JSON.stringify({ name: "page.load", value: 1 }), headers: { "content-type": "text/plain", origin: "http://evil.example" },
  });
  expect(r.status).toBe(403);
  expect(await r.json()).toEqual({ error: `origin: "http://evil.example" is not in WEIR_CORS_ORIGINS` });
});
