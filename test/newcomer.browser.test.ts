/**
 * What a newcomer sees (issue 6, "Done when"): `bun run demo` on a fresh
 * data directory, default settings (10 s windows, 2 s lateness), and a
 * browser opened at once. Within 10 s of the start the page shows live
 * charts with points, the KPI cards, the sensor gauges and at least one
 * alert: the simulators generate the last WEIR_DEMO_BACKFILL (5 min) of
 * history first, so windows, anomalies and trends exist before the first
 * live window closes. The 10 s is the promise under test, a deadline on
 * conditions in the page; how long it took is printed, not asserted.
 */
import { afterAll, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";
import { chromiumArgs, chromiumPath } from "../scripts/screenshot.ts";
import { startTestWeir, type TestWeir } from "./helpers/weir.ts";

const promiseMs = 10_000;
let weir: TestWeir | undefined;
let browser: Browser | undefined;

afterAll(async () => {
  await browser?.close();
  await weir?.stop();
});

test("newcomer - a fresh demo shows charts, KPIs, gauges and an alert within 10 s of start", async () => {
  if (!existsSync(chromiumPath)) throw new Error("install Chromium: apt-get install -y chromium");
  // The browser starts first: it is already open when a newcomer runs the command.
  browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const consoleErrors: string[] = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(`pageerror: ${e.message}`));

  const t0 = performance.now();
  weir = await startTestWeir({ WEIR_DEMO: "1" }); // a fresh data directory, everything else default
  await page.goto(`${weir.url}/`);
  const left = () => Math.max(1, promiseMs - (performance.now() - t0));
  await page.waitForFunction(() => {
    const charts = [...document.querySelectorAll<HTMLElement>('[data-testid="chart"]')];
    const kpi = (id: string) => document.querySelector(`[data-kpi="${id}"] .kpi-value`)?.textContent ?? "–";
    const gauges = [...document.querySelectorAll('[data-testid="gauge"] .gauge-value')].map((g) => g.textContent ?? "");
    return charts.length === 3 && charts.every((c) => Number(c.dataset.points) >= 2)
      && Number(kpi("rate").replace(/\D/g, "")) > 0 && kpi("last") !== "–" && kpi("avg") !== "–"
      && gauges.length >= 3 && gauges.every((g) => g !== "")
      && document.querySelectorAll('[data-testid="alert-item"]').length >= 1
      && document.querySelector('[data-testid="conn-state"]')?.getAttribute("data-state") === "live";
  }, undefined, { timeout: left(), polling: 50 });
  console.log(`newcomer: charts, KPIs, gauges and an alert on screen ${((performance.now() - t0) / 1000).toFixed(1)} s after start`);
  expect(await page.textContent('[data-testid="window-spec"]')).toBe("window 10s");
  expect(consoleErrors).toEqual([]);
}, 60_000);
