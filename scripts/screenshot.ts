/**
 * Saves a screenshot of a running weir's dashboard with Debian's Chromium:
 *   bun scripts/screenshot.ts http://127.0.0.1:8080/ docs/dashboard.png [waitMs]
 */
import { chromium } from "playwright-core";

export const chromiumPath = "/usr/bin/chromium";
export const chromiumArgs = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

if (import.meta.main) {
  const [url = "http://127.0.0.1:8080/", out = "docs/dashboard.png", waitMs = "0"] = process.argv.slice(2);
  const browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(url);
    await page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 10_000 });
    await page.waitForTimeout(Number(waitMs)); // let live rows arrive: a picture, not a test
    await page.screenshot({ path: out, fullPage: false });
    console.log(`saved ${out}`);
  } finally {
    await browser.close();
  }
}
