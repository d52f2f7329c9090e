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
  // What the page shows, condition by condition: the wait is on all of them, a timeout names the missing ones.
  const seen = () => {
    const charts = [...document.querySelectorAll<HTMLElement>('[data-testid="chart"]')];
    const kpi = (id: string) => document.querySelector(`[data-kpi="${id}"] .kpi-value`)?.textContent ?? "–";
    const gauges = [...document.querySelectorAll('[data-testid="gauge"] .gauge-value')].map((g) => g.textContent ?? "");
    return {
      "3 charts of ≥ 2 points": charts.length === 3 && charts.every((c) => Number(c.dataset.points) >= 2),
      "events/s": Number(kpi("rate").replace(/\D/g, "")) > 0,
      "latest and avg": kpi("last") !== "–" && kpi("avg") !== "–",
      "3 gauges": gauges.length >= 3 && gauges.every((g) => g !== ""),
      "an alert": document.querySelectorAll('[data-testid="alert-item"]').length >= 1,
      "live": document.querySelector('[data-testid="conn-state"]')?.getAttribute("data-state") === "live",
    };
  };
  try {
    await page.waitForFunction((f) => Object.values((0, eval)(f)()).every(Boolean), seen.toString(), { timeout: left(), polling: 50 });
  } catch (e) {
    const state = await page.evaluate((f) => (0, eval)(f)(), seen.toString()).catch(() => ({}));
    const missing = Object.entries(state).filter(([, ok]) => !ok).map(([what]) => what);
    throw new Error(`not on screen ${promiseMs / 1000} s after start: ${missing.join(", ") || "(page did not answer)"}; ${(e as Error).message}`);
  }
  console.log(`newcomer: charts, KPIs, gauges and an alert on screen ${((performance.now() - t0) / 1000).toFixed(1)} s after start`);
  expect(await page.textContent('[data-testid="window-spec"]')).toBe("window 10s");
  expect(consoleErrors).toEqual([]);
}, 60_000);
