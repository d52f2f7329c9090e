/**
 * The dashboard's side of the alert rules (issue 15), in a real (headless)
 * Chromium against a real weir: rules from a config file, judged in the
 * partitions on windows a delayed producer closes by event time (its events
 * stamped minutes back, in order, WEIR_LATENESS=0). The page shows the
 * threshold line on the watched series' chart, the rule transitions in the
 * alert feed (open ones first, with their advice) and the rules panel; with
 * no rules the panel says so, and for a token without the admin role it is
 * hidden. Every wait is on a condition in the page, never a fixed sleep.
 */
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { chromiumArgs, chromiumPath } from "../scripts/screenshot.ts";
import { type Receiver, reply, startReceiver } from "./helpers/receiver.ts";
import { postEvents, startTestWeir, type TestWeir } from "./helpers/weir.ts";

const waitMs = 30_000;
const testMs = 90_000;
const home = 'page.load{page="/"}';
const cart = 'page.load{page="/cart"}';
// Chromium's own line for a fetch answered 403; the page cannot keep it out of the console.
const refusedLoad = /^Failed to load resource: the server responded with a status of 403/;

const cleanups: Array<() => Promise<void> | void> = [];
let browser: Browser | undefined;

afterAll(async () => {
  await browser?.close();
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A new page of the shared Chromium, its console errors and page errors collected. */
async function openPage(url: string): Promise<{ page: Page; errors: string[] }> {
  if (!existsSync(chromiumPath)) throw new Error("install Chromium: apt-get install -y chromium");
  browser ??= await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const errors: string[] = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  await page.goto(url);
  await page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: waitMs });
  return { page, errors };
}

async function weirWith(env: Record<string, string>, config?: object): Promise<TestWeir> {
  const dir = mkdtempSync(join(tmpdir(), "weir-dash-rules-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const extra: Record<string, string> = {};
  if (config !== undefined) {
    extra.WEIR_CONFIG = join(dir, "weir.json");
    writeFileSync(extra.WEIR_CONFIG, JSON.stringify(config));
  }
  const w = await startTestWeir({ WEIR_LATENESS: "0", WEIR_CHECKPOINT_INTERVAL: "200ms", ...env, ...extra });
  cleanups.push(() => w.stop());
  return w;
}

/** 10 s windows k = 0..3, one event each, stamped five minutes back: "/" stays over 3000 from k = 0, "/cart" only in k = 1. */
function pageLoads(t0: number): object[] {
  const out: object[] = [];
  const homeMs = [4000, 4100, 4200, 4300];
  const cartMs = [100, 5000, 100, 100];
  for (let k = 0; k < 4; k++) {
    out.push({ name: "page.load", tags: { page: "/" }, value: homeMs[k], ts: t0 + k * 10_000 + 1, id: `h${k}` });
    out.push({ name: "page.load", tags: { page: "/cart" }, value: cartMs[k], ts: t0 + k * 10_000 + 2, id: `c${k}` });
  }
  return out;
}

test("dashboard rules - a firing rule: its threshold line on the watched chart, a firing alert with its advice first in the feed, the rule and its instances in the panel", async () => {
  const hook: Receiver = startReceiver(() => reply(200, {}));
  cleanups.push(() => hook.stop());
  const w = await weirWith({}, {
    rules: [
      // No data is false: once the quiet rule closes "/"'s windows after its data ends (minutes later here: its
      // jitter is unknown after 4 events), slow would resolve. keep_firing_for keeps it firing past any slow run.
      { name: "slow", expr: `avg(${home}) > 3000`, keep_firing_for: "10m", severity: "critical", advice: "scale the UI tier", actions: ["hook"] },
      { name: "cart-slow", expr: `avg(${cart}) > 3000`, advice: "look at the cart service" },
    ],
    actions: { hook: { type: "webhook", url: `${hook.url}/hook` } },
  });
  const { page: p, errors } = await openPage(`${w.url}/`);
  // Before any event: both rules listed, no instance yet.
  await p.waitForSelector('[data-testid="rules-panel"]:not([hidden]) [data-testid="rule"][data-rule="slow"]', { timeout: waitMs });
  expect(await p.$$eval('[data-testid="rule"]', (ls) => ls.map((l) => (l as HTMLElement).dataset.rule))).toEqual(["cart-slow", "slow"]);
  expect(await p.textContent('[data-rule="slow"] [data-testid="rule-watch"]')).toBe("avg > 3,000");
  expect(await p.isVisible('[data-testid="rules-empty"]')).toBe(false);

  const t0 = Math.floor((Date.now() - 300_000) / 10_000) * 10_000;
  expect((await postEvents(w.url, JSON.stringify(pageLoads(t0)))).status).toBe(202);

  // The feed: slow's firing (the older transition, still open) above cart-slow's newer resolved and firing.
  const ruleItems = '[data-testid="alert-item"][data-kind="rule"]';
  await p.waitForSelector(`${ruleItems}[data-rule="cart-slow"][data-state="resolved"]`, { timeout: waitMs });
  await p.waitForSelector(`${ruleItems}[data-rule="slow"][data-state="firing"]`, { timeout: waitMs });
  const feed = await p.$$eval(ruleItems, (ls) => ls.map((l) => `${(l as HTMLElement).dataset.rule} ${(l as HTMLElement).dataset.state}`));
  expect(feed).toEqual(["slow firing", "cart-slow resolved", "cart-slow firing"]);
  const firing = await p.textContent(`${ruleItems}[data-rule="slow"][data-state="firing"]`);
  for (const part of ["firing", "slow", home, "value 4,000", "threshold 3,000", "scale the UI tier"]) expect(firing).toContain(part);
  expect(await p.textContent(`${ruleItems}[data-rule="slow"] .state-badge`)).toBe("firing");

  // The panel: slow first (it fires), each instance with its state; the webhook's delivery counted.
  const instance = (rule: string, series: string) => `[data-testid="rule"][data-rule="${rule}"] [data-testid="rule-instance"][data-series='${series}']`;
  await p.waitForSelector(`${instance("slow", home)}[data-state="firing"]`, { timeout: waitMs });
  expect(await p.getAttribute('[data-testid="rule"][data-rule="slow"]', "data-state")).toBe("firing");
  await p.waitForSelector(`${instance("cart-slow", cart)}[data-state="resolved"]`, { timeout: waitMs });
  expect(await p.$$eval('[data-testid="rule"]', (ls) => ls.map((l) => (l as HTMLElement).dataset.rule))).toEqual(["slow", "cart-slow"]);
  await p.waitForFunction(() => {
    const row = document.querySelector<HTMLElement>('[data-testid="action-row"][data-action="hook"]');
    return row !== null && row.children[1]?.textContent === "1" && row.children[3]?.textContent === "closed";
  }, undefined, { timeout: waitMs });

  // A series clicked in the panel is charted, with slow's line (and not cart-slow's) drawn on it.
  await p.click(`${instance("slow", home)} button`);
  const homeChart = `[data-testid="chart"][data-series='${home}']`;
  await p.waitForSelector(`${homeChart}[data-thresholds="slow"]`, { timeout: waitMs });
  expect(Number(await p.getAttribute(homeChart, "data-points"))).toBeGreaterThanOrEqual(3);
  expect(await p.getAttribute(`.chart-card[title='${home}']`, "data-rule-state")).toBe("firing");
  await p.click(`${instance("cart-slow", cart)} button`);
  await p.waitForSelector(`[data-testid="chart"][data-series='${cart}'][data-thresholds="cart-slow"]`, { timeout: waitMs });
  expect(errors).toEqual([]);
}, testMs);

test("dashboard rules - no rules: the panel says so; a token without the admin role: the panel hidden, the page working", async () => {
  const w = await weirWith({ WEIR_TOKENS: "readtoken1:read,admintoken1:admin" });
  const admin = await openPage(`${w.url}/?token=admintoken1`);
  await admin.page.waitForSelector('[data-testid="rules-panel"]:not([hidden]) [data-testid="rules-empty"]:not([hidden])', { timeout: waitMs });
  expect(await admin.page.textContent('[data-testid="rules-empty"]')).toContain("No rules");
  expect(await admin.page.$$('[data-testid="rule"]')).toEqual([]);
  expect(admin.errors).toEqual([]);

  const reader = await openPage(`${w.url}/?token=readtoken1`);
  // The refusal arrives after the page went live: wait until it has been logged, then look.
  await reader.page.waitForFunction(() => ["/api/v1/rules", "/api/v1/views"].every((path) => performance.getEntriesByType("resource").some((e) => e.name.endsWith(path))),
    undefined, { timeout: waitMs });
  await postEvents(w.url, JSON.stringify({ name: "page.load", value: 1 }), "application/json", { Authorization: "Bearer admintoken1" });
  await reader.page.waitForSelector('[data-testid="series-picker"] label[title="page.load"]', { timeout: waitMs });
  expect(await reader.page.isHidden('[data-testid="rules-panel"]')).toBe(true);
  expect(reader.errors.filter((e) => !refusedLoad.test(e))).toEqual([]);
  expect(reader.errors.filter((e) => refusedLoad.test(e)).length).toBe(2); // GET /api/v1/rules and /api/v1/views, each asked once
}, testMs);
