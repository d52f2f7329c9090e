/**
 * The dashboard on a producer's own data (issue 18 item 11), in a real
 * headless Chromium against a real weir without the demo: 2 s windows, a
 * config file whose `dashboard:` holds one gauge and one card and no
 * charts, fed 50 series (`shop.orders{region}`, `app.latency{host}`) every
 * 250 ms plus one rare series. The page charts the 6 busiest by itself and
 * says so, finds the rare one by glob on the server, keeps the choice in its
 * link across a reload, and shows the configured gauge and card. Every wait
 * is on a condition in the page, never a fixed sleep.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { chromiumArgs, chromiumPath } from "../scripts/screenshot.ts";
import { startTestWeir, type TestWeir } from "./helpers/weir.ts";

const waitMs = 30_000;
const testMs = 60_000;
const tickMs = 250;
const busyPerTick = 10; // events a tick of each busy series; the others send 1
const region = (i: number) => `r${String(i).padStart(2, "0")}`;
const host = (i: number) => `h${String(i).padStart(2, "0")}`;
const busyKeys = [0, 1, 2, 3, 4, 5].map((i) => `shop.orders{region="${region(i)}"}`);
const rareKey = 'app.latency{host="rare-7"}';

const dir = mkdtempSync(join(tmpdir(), "weir-anydata-"));
let weir: TestWeir | undefined;
let browser: Browser | undefined;
let page: Page | undefined;
let feeding: ReturnType<typeof setInterval> | undefined;
let ticks = 0;
const consoleErrors: string[] = [];
const seriesQueries: string[] = [];

/** One tick of the producer: 24 order series (6 of them busy), 25 latency series, and every 8th tick the rare one. */
function tickEvents(nowMs: number): object[] {
  const out: object[] = [];
  for (let i = 0; i < 24; i++) {
    const n = i < 6 ? busyPerTick : 1;
    for (let j = 0; j < n; j++) out.push({ name: "shop.orders", value: 20 + i + j, ts: nowMs - j, tags: { region: region(i) } });
  }
  for (let i = 0; i < 25; i++) out.push({ name: "app.latency", value: 100 + 4 * i, ts: nowMs, tags: { host: host(i) } });
  if (ticks % 8 === 0) out.push({ name: "app.latency", value: 900, ts: nowMs, tags: { host: "rare-7" } });
  ticks++;
  return out;
}

async function feed(): Promise<void> {
  const res = await fetch(`${weir!.url}/api/v1/events`, { method: "POST", body: JSON.stringify(tickEvents(Date.now())), headers: { "content-type": "application/json" } });
  if (res.status !== 202) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
}

const chartKeys = (p: Page) => p.$$eval('[data-testid="chart"]', (els) => els.map((e) => (e as HTMLElement).dataset.series ?? ""));

beforeAll(async () => {
  if (!existsSync(chromiumPath)) throw new Error("install Chromium: apt-get install -y chromium");
  const config = join(dir, "weir.yaml");
  writeFileSync(config, [
    "dashboard:",
    "  gauges:",
    '    - {series: app.latency, label: latency, unit: ms, min: 0, max: 1000}',
    "  cards:",
    '    - {series: "shop.orders{*", label: orders/s, agg: rate}',
    "",
  ].join("\n"));
  weir = await startTestWeir({ WEIR_CONFIG: config, WEIR_WINDOWS: "2s", WEIR_LATENESS: "500ms" }, join(dir, "data"));
  await feed();
  feeding = setInterval(() => void feed().catch((e) => consoleErrors.push(`producer: ${e.message}`)), tickMs);
  browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(`pageerror: ${e.message}`));
  page.on("request", (r) => { if (r.url().includes("/api/v1/series?match=")) seriesQueries.push(decodeURIComponent(new URL(r.url()).searchParams.get("match") ?? "")); });
}, testMs);

afterAll(async () => {
  clearInterval(feeding);
  await browser?.close();
  await weir?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("dashboard anydata - the config's dashboard is served: one gauge, one card, no charts, no board", async () => {
  const res = await fetch(`${weir!.url}/api/v1/dashboard`);
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({
    source: "config", charts: [],
    gauges: [{ series: "app.latency", label: "latency", unit: "ms", min: 0, max: 1000 }],
    cards: [{ series: "shop.orders{*", label: "orders/s", agg: "rate", unit: "" }],
    top: null,
  });
});

test("dashboard anydata - with nothing picked it charts the 6 busiest series by itself and says so", async () => {
  const p = page!;
  await p.goto(`${weir!.url}/`);
  await p.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: waitMs });
  await p.waitForFunction((want) => {
    const got = [...document.querySelectorAll('[data-testid="chart"]')].map((e) => (e as HTMLElement).dataset.series).sort();
    return JSON.stringify(got) === JSON.stringify(want);
  }, [...busyKeys].sort(), { timeout: waitMs });
  expect(await p.textContent('[data-testid="charts-note"]')).toBe("Showing the 6 busiest series (events in the latest 2s window); pick others below.");
  expect(await p.getAttribute('[data-testid="charts-note"]', "data-mode")).toBe("busiest");
  // Nothing picked by the user: the link stays as it was.
  expect(new URL(p.url()).search).toBe("");
  // The charts fill from the store and the live windows.
  await p.waitForFunction(() => [...document.querySelectorAll('[data-testid="chart"]')].every((e) => Number((e as HTMLElement).dataset.points) >= 1),
    undefined, { timeout: waitMs });
  expect(consoleErrors).toEqual([]);
}, testMs);

test("dashboard anydata - the configured gauge and card show the data; the board with no config stays hidden", async () => {
  const p = page!;
  await p.waitForSelector('[data-testid="gauges-panel"]:not([hidden]) [data-testid="gauge"][data-series="app.latency"]', { timeout: waitMs });
  expect(await p.$$eval('[data-testid="gauge"]', (gs) => gs.length)).toBe(1);
  expect(await p.textContent('[data-testid="gauge"] figcaption')).toBe("latency (ms)");
  // The mean of the 25 hosts' averages (100 + 4 i) and, in windows where it sent, the rare host's 900: at least 148.
  await p.waitForFunction(() => Number(document.querySelector('[data-testid="gauge"] .gauge-value')?.textContent?.replace(/,/g, "")) >= 148,
    undefined, { timeout: waitMs });
  const card = '[data-testid="kpi"][data-kpi="card"][data-series="shop.orders{*"]';
  expect(await p.textContent(`${card} .kpi-label`)).toBe("orders/s");
  // 6 × 10 + 18 × 1 events a 250 ms tick: 312/s; a 2 s window holds 7 to 9 ticks.
  await p.waitForFunction((sel) => {
    const v = Number(document.querySelector(`${sel} .kpi-value`)?.textContent?.replace(/,/g, ""));
    return v >= 200 && v <= 400;
  }, card, { timeout: waitMs });
  expect(await p.isHidden('[data-testid="top-panel"]')).toBe(true);
}, testMs);

test("dashboard anydata - a glob finds the rare series on the server; picked, it is charted and kept in the link", async () => {
  const p = page!;
  await p.fill('[data-testid="filter-input"]', "*rare*");
  await p.waitForFunction((key) => {
    const list = document.getElementById("picker-list")!;
    const titles = [...list.querySelectorAll("label")].map((l) => l.getAttribute("title"));
    return list.dataset.state === "found" && JSON.stringify(titles) === JSON.stringify([key]);
  }, rareKey, { timeout: waitMs });
  expect(seriesQueries).toContain("*rare*"); // asked the server, not a list held by the page
  expect(await p.textContent("#picker-count")).toBe("1 matching *rare* · 6/6 charted");
  await p.check(`[data-testid="series-picker"] label[title='${rareKey}'] input`);
  await p.waitForSelector(`[data-testid="chart"][data-series='${rareKey}']`, { timeout: waitMs });
  const charted = await chartKeys(p);
  expect(charted.length).toBe(6); // the page's last own chart made room for the user's pick
  expect(charted).toContain(rareKey);
  expect(await p.getAttribute('[data-testid="charts-note"]', "data-mode")).toBe("picked");
  expect(await p.textContent('[data-testid="charts-note"]')).toBe("Showing the 6 series picked (kept in this page's link); pick others below.");
  const link = new URL(p.url()).searchParams;
  expect(link.getAll("chart")).toEqual(charted);
  expect(link.get("q")).toBe("*rare*");
  expect(consoleErrors).toEqual([]);
}, testMs);

test("dashboard anydata - reloading the link shows the same charts and filter", async () => {
  const p = page!;
  const before = await chartKeys(p);
  await p.reload();
  await p.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: waitMs });
  await p.waitForFunction((want) => {
    const got = [...document.querySelectorAll('[data-testid="chart"]')].map((e) => (e as HTMLElement).dataset.series);
    return JSON.stringify(got) === JSON.stringify(want);
  }, before, { timeout: waitMs });
  expect(await p.inputValue('[data-testid="filter-input"]')).toBe("*rare*");
  await p.waitForSelector(`#picker-list[data-state="found"] label[title='${rareKey}'] input:checked`, { timeout: waitMs });
  expect(await p.getAttribute('[data-testid="charts-note"]', "data-mode")).toBe("picked");
  // The rare series' chart back-fills from the store: its points arrive without a pick.
  await p.waitForSelector(`[data-testid="chart"][data-series='${rareKey}']:not([data-points="0"])`, { timeout: waitMs });
  // A link shared to a fresh page shows the same.
  const other = await browser!.newPage({ viewport: { width: 1280, height: 800 } });
  try {
    await other.goto(p.url());
    await other.waitForFunction((want) => {
      const got = [...document.querySelectorAll('[data-testid="chart"]')].map((e) => (e as HTMLElement).dataset.series);
      return JSON.stringify(got) === JSON.stringify(want);
    }, before, { timeout: waitMs });
  } finally {
    await other.close();
  }
  expect(consoleErrors).toEqual([]);
}, testMs);
