/**
 * The dashboard in a real (headless) Chromium against a real weir running the
 * demo simulator with 2 s windows, so windows close every ~2.5 s. Every wait
 * is on a condition in the page, never a fixed sleep.
 */
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { chromiumArgs, chromiumPath } from "../scripts/screenshot.ts";
import { postEvents, startTestWeir, type TestWeir } from "./helpers/weir.ts";

const env = { WEIR_DEMO: "1", WEIR_DEMO_RATE: "400", WEIR_LATENESS: "500ms", WEIR_WINDOWS: "2s,10s/2s" };
const waitMs = 30_000;
const testMs = 60_000;
// The README's picture is refreshed only on request (UPDATE_SCREENSHOT=1), so a test run leaves the tree clean.
const screenshotPath = process.env.UPDATE_SCREENSHOT === "1"
  ? join(import.meta.dir, "../docs/dashboard.png")
  : join(tmpdir(), `weir-dashboard-${process.pid}.png`);
// A server going away makes Chromium log the refused WebSocket and fetches;
// those are expected while reconnecting, and nothing else is.
const networkNoise = /WebSocket connection to|net::ERR_CONNECTION_REFUSED|Failed to load resource/;

const dataDir = mkdtempSync(join(tmpdir(), "weir-dash-"));
let weir: TestWeir | undefined;
let browser: Browser | undefined;
let page: Page | undefined;
const consoleErrors: string[] = [];

async function openPage(): Promise<Page> {
  if (page) return page;
  if (!existsSync(chromiumPath)) throw new Error("install Chromium: apt-get install -y chromium");
  weir = await startTestWeir(env, dataDir);
  browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(`pageerror: ${e.message}`));
  await page.goto(`${weir.url}/`);
  return page;
}

const chartPoints = (p: Page) =>
  p.$$eval('[data-testid="chart"]', (els) => els.map((e) => Number((e as HTMLElement).dataset.points)));

afterAll(async () => {
  await browser?.close();
  await weir?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test("dashboard - loads, goes live and shows its panels without console errors", async () => {
  const p = await openPage();
  await p.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: waitMs });
  expect(await p.textContent('[data-testid="window-spec"]')).toBe("window 2s"); // hello's first spec
  await p.waitForSelector('[data-testid="series-picker"] input[type="checkbox"]', { timeout: waitMs });
  expect((await p.$$('[data-testid="kpi"]')).length).toBeGreaterThanOrEqual(5);
  await p.waitForFunction(() => Number(document.querySelector('[data-kpi="rate"] .kpi-value')?.textContent?.replace(/\D/g, "")) > 0,
    undefined, { timeout: waitMs });
  await p.waitForSelector('[data-testid="top-row"]', { timeout: waitMs });
  expect(consoleErrors).toEqual([]);
}, testMs);

test("dashboard - draws the default sensor charts and extends them with live windows", async () => {
  const p = await openPage();
  await p.waitForFunction(() => document.querySelectorAll('[data-testid="chart"] canvas').length >= 3, undefined, { timeout: waitMs });
  const names = await p.$$eval('[data-testid="chart"]', (els) => els.map((e) => (e as HTMLElement).dataset.series ?? ""));
  expect(names.map((k) => k.slice(0, k.indexOf("{"))).sort()).toEqual(["sensor.humidity", "sensor.pressure", "sensor.temperature"]);
  const size = await p.$eval('[data-testid="chart"] canvas', (c) => [(c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height]);
  expect(size[0]).toBeGreaterThan(0);
  expect(size[1]).toBeGreaterThan(0);
  await p.waitForFunction(() => Number((document.querySelector('[data-testid="chart"]') as HTMLElement).dataset.points) >= 1,
    undefined, { timeout: waitMs });
  const before = (await chartPoints(p))[0]!;
  await p.waitForFunction((n) => Number((document.querySelector('[data-testid="chart"]') as HTMLElement).dataset.points) > n,
    before, { timeout: waitMs });
  expect(consoleErrors).toEqual([]);
}, testMs);

test("dashboard - shows an anomaly alert in the feed after an injected spike", async () => {
  const p = await openPage();
  const t0 = Date.now() - 13_000;
  // A seeded wobble around 10, past the detector's warm-up (100 values), then one value far outside it.
  const baseline = Array.from({ length: 120 }, (_, i) => ({ name: "spike.test", value: 10 + ((i * 7919) % 11) / 20 - 0.25, ts: t0 + i * 100 }));
  expect((await postEvents(weir!.url, JSON.stringify(baseline))).status).toBe(202);
  expect((await postEvents(weir!.url, JSON.stringify({ name: "spike.test", value: 1000, ts: t0 + 12_000 }))).status).toBe(202);
  await p.waitForSelector('[data-testid="alert-item"][data-series="spike.test"]', { timeout: waitMs });
  const first = await p.$eval('[data-testid="alert-item"][data-series="spike.test"]', (e) => e.textContent ?? "");
  expect(first).toContain("spike.test");
  expect(first).toContain("1,000");
  // Picked through the glob filter, its chart shows the anomaly as a marker.
  await p.fill('[data-testid="series-picker"] input[type="search"]', "spike.*");
  await p.check('[data-testid="series-picker"] label[title="spike.test"] input');
  await p.waitForSelector('[data-testid="chart"][data-series="spike.test"][data-anomalies="1"]', { timeout: waitMs });
  expect(await p.$$eval('[data-testid="series-picker"] label', (ls) => ls.map((l) => l.getAttribute("title")))).toEqual(["spike.test"]);
  await p.click('.chart-card[title="spike.test"] button');
  await p.fill('[data-testid="series-picker"] input[type="search"]', "");
  await p.waitForFunction(() => document.querySelectorAll('[data-testid="chart"]').length === 3, undefined, { timeout: waitMs });
  expect(consoleErrors).toEqual([]);
}, testMs);

test("dashboard - saves a screenshot once the charts hold a few points", async () => {
  const p = await openPage();
  await p.waitForFunction(() => [...document.querySelectorAll('[data-testid="chart"]')].every((e) => Number((e as HTMLElement).dataset.points) >= 6),
    undefined, { timeout: waitMs });
  await p.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  await p.screenshot({ path: screenshotPath, fullPage: false });
  expect(existsSync(screenshotPath)).toBe(true);
}, testMs);

test("dashboard - reconnects after the server restarts on the same port", async () => {
  const p = await openPage();
  const port = new URL(weir!.url).port;
  await weir!.stop();
  weir = undefined;
  await p.waitForSelector('[data-testid="conn-state"][data-state="reconnecting"]', { timeout: waitMs });
  weir = await startTestWeir({ ...env, WEIR_PORT: port }, dataDir);
  await p.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: waitMs });
  // Live again means live data again: the first chart keeps growing.
  const before = (await chartPoints(p))[0]!;
  await p.waitForFunction((n) => Number((document.querySelector('[data-testid="chart"]') as HTMLElement).dataset.points) > n,
    before, { timeout: waitMs });
  expect(consoleErrors.filter((e) => !networkNoise.test(e))).toEqual([]);
}, testMs);
