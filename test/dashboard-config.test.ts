/**
 * The config file's `dashboard:` (src/http/dashboard-def.ts): validated with
 * errors naming the path, the demo's when WEIR_DEMO has none, empty
 * otherwise; and served as is at GET /api/v1/dashboard, read role.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../src/config.ts";
import { dashboardRoutes } from "../src/http/routes/dashboard.ts";
import { toHttpError } from "../src/http/errors.ts";

const dir = mkdtempSync(join(tmpdir(), "weir-dash-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function withFile(dashboard: unknown, env: Record<string, string> = {}) {
  const path = join(dir, `c${n++}.json`);
  writeFileSync(path, JSON.stringify({ dashboard }));
  return loadConfig({ WEIR_DATA_DIR: dir, WEIR_CONFIG: path, ...env });
}

function configError(dashboard: unknown): string {
  try {
    withFile(dashboard);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error("no ConfigError");
}

describe("dashboard config", () => {
  test("dashboard config - a file's dashboard is kept with its defaults filled in", () => {
    const cfg = withFile({ charts: ["app.*"], gauges: [{ series: "app.cpu", unit: "%", min: 0, max: 100 }], cards: [{ series: "shop.orders" }], top: { name: "shop.orders", by: "region" } });
    expect(cfg.dashboard).toEqual({
      source: "config", charts: ["app.*"],
      gauges: [{ series: "app.cpu", label: "app.cpu", unit: "%", min: 0, max: 100 }],
      cards: [{ series: "shop.orders", label: "shop.orders count", agg: "count", unit: "" }],
      top: { name: "shop.orders", by: "region", agg: "sum", label: "shop.orders sum by region" },
    });
  });

  test("dashboard config - a bad dashboard stops start-up naming the path at fault", () => {
    expect(configError({ gauges: [{ series: "x", min: 5, max: 1 }] })).toBe("config dashboard.gauges.0.max: must be above min");
    expect(configError({ gauges: [{ series: "x", min: 0 }] })).toBe("config dashboard.gauges.0.max: required");
    expect(configError({ cards: [{ series: "x", agg: "median" }] })).toBe("config dashboard.cards.0.agg: must be one of count, rate, sum, avg, min, max");
    expect(configError({ charts: ["a", "b", "c", "d", "e", "f", "g"] })).toBe("config dashboard.charts: at most 6 items");
    expect(configError({ gauge: [] })).toBe("config dashboard.gauge: unknown field");
  });

  test("dashboard config - without one: the demo's under WEIR_DEMO, else nothing (the page charts the busiest)", () => {
    const demo = loadConfig({ WEIR_DATA_DIR: dir, WEIR_DEMO: "1" }).dashboard;
    expect(demo.source).toBe("demo");
    expect(demo.charts).toEqual(["sensor.temperature", "sensor.humidity", "sensor.pressure"]);
    expect(demo.gauges.map((g) => [g.series, g.label, g.unit, g.min, g.max])).toEqual([
      ["sensor.temperature", "temperature", "°C", -10, 40], ["sensor.humidity", "humidity", "%", 0, 100], ["sensor.pressure", "pressure", "hPa", 960, 1060],
    ]);
    expect(demo.top).toEqual({ name: "shop.purchase", by: "page", agg: "sum", label: "top pages" });
    expect(loadConfig({ WEIR_DATA_DIR: dir }).dashboard).toEqual({ source: "none", charts: [], gauges: [], cards: [], top: null });
    // A file's own dashboard wins over the demo's.
    expect(withFile({ gauges: [] }, { WEIR_DEMO: "1" }).dashboard.source).toBe("config");
  });

  test("dashboard config - GET /api/v1/dashboard serves it, to the read role", async () => {
    const cfg = withFile({ gauges: [{ series: "app.cpu", min: 0, max: 1 }] }, { WEIR_TOKENS: "reader-token:read,ingest-token:ingest" });
    const app = dashboardRoutes({ cfg });
    app.onError((err, c) => {
      const h = toHttpError(err)!;
      return c.json({ error: h.message }, h.status);
    });
    const ok = await app.request("/api/v1/dashboard", { headers: { Authorization: "Bearer reader-token" } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ source: "config", charts: [], gauges: [{ series: "app.cpu", label: "app.cpu", unit: "", min: 0, max: 1 }], cards: [], top: null });
    expect((await app.request("/api/v1/dashboard", { headers: { Authorization: "Bearer ingest-token" } })).status).toBe(403);
    expect((await app.request("/api/v1/dashboard")).status).toBe(401);
  });
});
