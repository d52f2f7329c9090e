/**
 * The dashboard's views section (issue 16, deliverable 7) in a real
 * (headless) Chromium against a real weir running the demo: its built-in
 * users table and three views (sim/demo-scenario.ts), fed by the shop
 * simulator at a modest rate after the default 5-minute back-fill. The
 * page shows events per minute by segment as a chart with data, revenue
 * cards whose values move while their minute is open, and the heavy users
 * in the high-activity list; for a token without the admin role the
 * section stays hidden. Every wait is on a condition, never a fixed sleep.
 */
import { afterAll, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { type Browser, chromium, type Page } from "playwright-core";
import { chromiumArgs, chromiumPath } from "../scripts/screenshot.ts";
import { seriesKey } from "../src/runtime/series.ts";
import { activitySegments, createUserPool } from "../src/sim/shop-users.ts";
import { startTestWeir, type TestWeir } from "./helpers/weir.ts";

// 100 events/s: 50 of them shop, about one purchase every 1.5 s. A heavy user
// sends ~2 events a second, so it passes 100 in the 5-minute window within a minute
// (the back-fill alone gives one window at least 150 s of history); an ordinary user
// gets ~26 in 5 minutes and never does (src/sim/shop-users.ts).
const env = { WEIR_DEMO: "1", WEIR_DEMO_RATE: "100" };
const waitMs = 30_000;
const testMs = 90_000;
const refusedLoad = /^Failed to load resource: the server responded with a status of 403/;

let weir: TestWeir | undefined;
let browser: Browser | undefined;
let page: Page | undefined;
const consoleErrors: string[] = [];
const cleanups: Array<() => Promise<void> | void> = [];

afterAll(async () => {
  await browser?.close();
  for (const c of cleanups.splice(0).reverse()) await c();
  await weir?.stop();
});

/** A page of the shared Chromium at `url`, live; `before` runs before it loads (to wait for a response it will ask for). */
async function newPage(url: string, errors: string[], before?: (p: Page) => void): Promise<Page> {
  if (!existsSync(chromiumPath)) throw new Error("install Chromium: apt-get install -y chromium");
  browser ??= await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
  const p = await browser.newPage({ viewport: { width: 1280, height: 1200 } });
  p.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  p.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  before?.(p);
  await p.goto(url);
  await p.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: waitMs });
  return p;
}

async function openPage(): Promise<Page> {
  if (page) return page;
  weir = await startTestWeir(env);
  page = await newPage(`${weir.url}/`, consoleErrors);
  return page;
}

const getJson = async (path: string) => (await fetch(`${weir!.url}${path}`)).json();
const view = (name: string) => `[data-testid="view"][data-view="${name}"]`;

test("dashboard views - the section shows events per minute by segment as a chart with data", async () => {
  const p = await openPage();
  await p.waitForSelector('[data-testid="views-panel"]:not([hidden])', { timeout: waitMs });
  const chart = `${view("events_per_minute_by_segment")} [data-testid="view-chart"]`;
  // A line per segment of the users table, summed over the event names, with the back-fill's minutes and the open one.
  await p.waitForFunction((sel) => {
    const e = document.querySelector<HTMLElement>(sel);
    return e !== null && Number(e.dataset.points) >= 3 && ["new", "returning", "vip"].every((s) => e.dataset.lines!.split(",").includes(s));
  }, chart, { timeout: waitMs });
  expect(await p.$eval(`${chart} canvas`, (c) => (c as HTMLCanvasElement).width)).toBeGreaterThan(0);
  // The lines are the segments the view's series hold (group tags segment and name).
  const listed = (await getJson(`/api/v1/series?match=${encodeURIComponent("view.events_per_minute_by_segment{*")}`)).series as Array<{ key: string }>;
  const segments = new Set(listed.map((s) => /segment="([^"]+)"/.exec(s.key)![1]));
  const names = new Set(listed.map((s) => /name="([^"]+)"/.exec(s.key)![1]));
  expect(names).toEqual(new Set(["shop.view", "shop.click", "shop.purchase"]));
  const lines = (await p.$eval(chart, (e) => (e as HTMLElement).dataset.lines!)).split(",");
  expect(new Set(lines)).toEqual(segments);
  for (const s of activitySegments) expect(lines).toContain(s);
  expect(consoleErrors).toEqual([]);
}, testMs);

test("dashboard views - revenue cards per segment move while their minute is open, as the API reads it", async () => {
  const p = await openPage();
  const cards = `${view("revenue_per_minute")} [data-testid="view-card"]`;
  await p.waitForFunction((sel) => document.querySelectorAll(sel).length >= 3, cards, { timeout: waitMs });
  expect(new Set(await p.$$eval(cards, (els) => els.map((e) => (e as HTMLElement).dataset.group)))).toEqual(new Set(activitySegments));
  // Two different sums of one card for one and the same minute, the second while that minute is still open.
  const moved = await p.waitForFunction((sel) => {
    const seen = ((window as unknown as { seenSums?: Map<string, Set<string>> }).seenSums ??= new Map());
    for (const c of document.querySelectorAll<HTMLElement>(sel)) {
      const { group, start, sum, open } = c.dataset;
      if (start === undefined || sum === undefined) continue;
      const k = `${group}|${start}`;
      const sums = seen.get(k) ?? new Set<string>();
      sums.add(sum);
      seen.set(k, sums);
      if (sums.size >= 2 && open === "true") return { group, start: Number(start), sums: [...sums] };
    }
    return false;
  }, cards, { timeout: 2 * 60_000, polling: 100 });
  const { group, start, sums } = (await moved.jsonValue()) as { group: string; start: number; sums: string[] };
  expect(new Set(sums).size).toBeGreaterThanOrEqual(2);
  expect(start % 60_000).toBe(0);
  // The card shows what the API has for that minute, or what it had a moment before (the API may have merged more since).
  const card = await p.$eval(`${cards}[data-group="${group}"]`, (e) => ({ ...(e as HTMLElement).dataset, text: e.textContent ?? "" }) as Record<string, string>);
  const series = seriesKey("view.revenue_per_minute", { segment: group });
  const body = await getJson(`/api/v1/windows?series=${encodeURIComponent(series)}&window=1m&from=${start}&to=${start + 1}`);
  const w = body.windows.find((r: { start: number }) => r.start === Number(card.start));
  expect(w).toBeDefined();
  expect(w.count).toBeGreaterThanOrEqual(Number(card.count));
  expect(w.sum).toBeGreaterThanOrEqual(Number(card.sum) - 1e-6);
  expect(Number(card.avg)).toBeCloseTo(Number(card.sum) / Number(card.count), 6);
  expect(card.text).toContain("sum");
  expect(consoleErrors).toEqual([]);
}, 3 * 60_000);

test("dashboard views - the high-activity list shows the heavy users, each hit an alert of kind view", async () => {
  const p = await openPage();
  const hits = `${view("high_activity_users")} [data-testid="view-hit"]`;
  await p.waitForSelector(hits, { timeout: waitMs });
  const heavy = createUserPool().heavy.map((u) => seriesKey("view.high_activity_users", { user: u }));
  const shown = await p.$$eval(hits, (els) => els.map((e) => ({ series: (e as HTMLElement).dataset.series!, start: Number((e as HTMLElement).dataset.start), text: e.textContent ?? "" })));
  for (const h of shown) {
    expect(heavy).toContain(h.series); // an ordinary user never passes 100 at this rate
    expect(h.start % 300_000).toBe(0);
    expect(h.text).toContain(/user="(u\d+)"/.exec(h.series)![1]);
  }
  const alerts = (await getJson("/api/v1/alerts?kind=view&rule=high_activity_users&limit=100")).alerts as Array<{ series: string; ts: number; value: number; threshold: number }>;
  for (const h of shown) expect(alerts.some((a) => a.series === h.series && a.ts === h.start)).toBe(true);
  for (const a of alerts) expect(a.value).toBeGreaterThan(a.threshold);
  // The same hit in the alert feed, as a view's.
  await p.waitForSelector(`[data-testid="alert-item"][data-kind="view"][data-series="${shown[0].series.replaceAll('"', '\\"')}"]`, { timeout: waitMs });
  expect(consoleErrors).toEqual([]);
}, testMs);

test("dashboard views - hidden for a token without the admin role", async () => {
  const other = await startTestWeir({ WEIR_DEMO: "1", WEIR_DEMO_RATE: "20", WEIR_DEMO_BACKFILL: "0s", WEIR_TOKENS: "reader-token:read" });
  cleanups.push(() => other.stop());
  const errors: string[] = [];
  let asked: Promise<{ status(): number }> | undefined;
  const p = await newPage(`${other.url}/?token=reader-token`, errors, (q) => {
    asked = q.waitForResponse((r) => r.url().includes("/api/v1/views"), { timeout: waitMs });
  });
  expect((await asked!).status()).toBe(403);
  expect(await p.$eval('[data-testid="views-panel"]', (e) => (e as HTMLElement).hidden)).toBe(true);
  expect(errors.filter((e) => !refusedLoad.test(e))).toEqual([]);
}, testMs);
