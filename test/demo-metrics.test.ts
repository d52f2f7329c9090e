/**
 * The demo's metrics routes (src/http/routes/demo-metrics.ts) against a real
 * weir running the simulators with 2 s windows and a minute of back-fill, so
 * closed windows exist at once; and against one without the demo, where
 * every route is a 404 naming WEIR_DEMO. Exact statuses and body shapes;
 * the figures are checked against the general API they are views of.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestWeir, type TestWeir } from "./helpers/weir.ts";
import { waitFor } from "./helpers/wait.ts";

let demo: TestWeir;
let plain: TestWeir;
const get = async (w: TestWeir, path: string) => {
  const res = await fetch(`${w.url}${path}`);
  return { status: res.status, body: await res.json() as any };
};

beforeAll(async () => {
  [demo, plain] = await Promise.all([
    startTestWeir({ WEIR_DEMO: "1", WEIR_DEMO_RATE: "400", WEIR_DEMO_BACKFILL: "60s", WEIR_LATENESS: "500ms", WEIR_WINDOWS: "2s" }),
    startTestWeir({ WEIR_WINDOWS: "2s" }),
  ]);
  // The back-fill's windows are closed once its series have moved on: wait for the shop's and a device's.
  await waitFor(async () => (await get(demo, "/api/v1/top?name=shop.view&by=page&agg=count")).body.items.length > 0, 20_000, "shop windows");
  await waitFor(async () => {
    const h = await get(demo, "/api/v1/metrics/iot/history?device=dev-01");
    return h.status === 200 && Object.values(h.body.metrics as Record<string, unknown[]>).every((rows) => rows.length > 0);
  }, 20_000, "dev-01's windows of each metric");
}, 60_000);

afterAll(async () => {
  await Promise.all([demo?.stop(), plain?.stop()]);
});

describe("demo metrics", () => {
  test("demo metrics - iot/latest lists every device with its latest reading of each metric", async () => {
    const { status, body } = await get(demo, "/api/v1/metrics/iot/latest");
    expect(status).toBe(200);
    expect(Object.keys(body)).toEqual(["devices"]);
    expect(body.devices.map((d: any) => d.device)).toEqual(["dev-01", "dev-02", "dev-03", "dev-04", "dev-05", "dev-06", "dev-07", "dev-08"]);
    for (const d of body.devices) {
      expect(Object.keys(d)).toEqual(["device", "site", "ts", "temperature", "humidity", "pressure"]);
      expect(["north", "south", "east", "west"]).toContain(d.site);
      for (const k of ["ts", "temperature", "humidity", "pressure"]) expect(typeof d[k]).toBe("number");
    }
    // The same figure /api/v1/series gives (it may move on between the two reads: same series, a number).
    const s = await get(demo, `/api/v1/series?match=${encodeURIComponent('sensor.temperature{device="dev-01",*')}`);
    expect(s.body.series.length).toBe(1);
    expect(s.body.series[0].tags).toEqual({ device: "dev-01", site: body.devices[0].site });
  });

  test("demo metrics - iot/history gives a device's windows per metric, one metric on request", async () => {
    const all = await get(demo, "/api/v1/metrics/iot/history?device=dev-01");
    expect(all.status).toBe(200);
    expect(Object.keys(all.body)).toEqual(["device", "site", "window", "metrics"]);
    expect([all.body.device, all.body.window]).toEqual(["dev-01", "2s"]);
    expect(Object.keys(all.body.metrics).sort()).toEqual(["humidity", "pressure", "temperature"]);
    const t = all.body.metrics.temperature;
    expect(t.length).toBeGreaterThan(0);
    for (const p of t) expect(Object.keys(p)).toEqual(["start", "end", "count", "avg", "min", "max"]);
    for (let i = 1; i < t.length; i++) expect(t[i].start).toBeGreaterThan(t[i - 1].start); // oldest first

    const one = await get(demo, "/api/v1/metrics/iot/history?device=dev-01&metric=pressure&limit=3");
    expect(one.status).toBe(200);
    expect(Object.keys(one.body.metrics)).toEqual(["pressure"]);
    expect(one.body.metrics.pressure.length).toBeLessThanOrEqual(3);
    // A view of /api/v1/windows: the same rows for the same series.
    const key = `sensor.pressure{device="dev-01",site="${one.body.site}"}`;
    const points = one.body.metrics.pressure;
    const w = await get(demo, `/api/v1/windows?series=${encodeURIComponent(key)}&window=2s&limit=3&to=${points.at(-1).end}`);
    expect(w.body.windows.map((r: any) => [r.start, r.avg])).toEqual(points.map((p: any) => [p.start, p.avg]));
  });

  test("demo metrics - iot/history refuses a missing device, an unknown device and bad parameters", async () => {
    expect(await get(demo, "/api/v1/metrics/iot/history")).toEqual({ status: 400, body: { error: "device: required" } });
    expect(await get(demo, "/api/v1/metrics/iot/history?device=dev-99")).toEqual({
      status: 404, body: { error: 'device: no such device "dev-99" (GET /api/v1/metrics/iot/latest lists them)' },
    });
    expect(await get(demo, "/api/v1/metrics/iot/history?device=dev-01&metric=wind")).toEqual({
      status: 400, body: { error: "metric: must be one of temperature, humidity, pressure" },
    });
    expect(await get(demo, "/api/v1/metrics/iot/history?device=dev-01&limit=abc")).toEqual({ status: 400, body: { error: "limit: must be a whole number" } });
    expect(await get(demo, "/api/v1/metrics/iot/history?device=dev-01&window=7s")).toEqual({ status: 400, body: { error: "window: must be one of 2s" } });
    expect(await get(demo, "/api/v1/metrics/iot/latest?x=1")).toEqual({ status: 400, body: { error: "x: unknown field" } });
  });

  test("demo metrics - activity/latest gives the shop's funnel of the latest window, totals the sum of the segments", async () => {
    const { status, body } = await get(demo, "/api/v1/metrics/activity/latest");
    expect(status).toBe(200);
    expect(Object.keys(body)).toEqual(["window", "end", "views", "clicks", "purchases", "revenue", "conversion", "segments"]);
    expect(body.window).toBe("2s");
    expect(typeof body.end).toBe("number");
    expect(body.views).toBeGreaterThan(0);
    expect(body.conversion).toBeCloseTo(body.purchases / body.views, 12);
    for (const seg of Object.keys(body.segments)) expect(["new", "returning", "vip"]).toContain(seg);
    for (const f of ["views", "clicks", "purchases", "revenue"]) {
      const sum = Object.values(body.segments).reduce((a: number, s: any) => a + s[f], 0);
      expect(sum).toBeCloseTo(body[f], 6);
    }
  });

  test("demo metrics - activity/leaderboard ranks pages by revenue by default, as /api/v1/top does", async () => {
    const { status, body } = await get(demo, "/api/v1/metrics/activity/leaderboard?k=5");
    expect(status).toBe(200);
    expect(Object.keys(body)).toEqual(["window", "end", "by", "metric", "items"]);
    expect([body.window, body.by, body.metric]).toEqual(["2s", "page", "revenue"]);
    expect(body.items.length).toBeLessThanOrEqual(5);
    for (let i = 1; i < body.items.length; i++) expect(body.items[i - 1].value).toBeGreaterThanOrEqual(body.items[i].value);
    const byUser = await get(demo, "/api/v1/metrics/activity/leaderboard?by=user&metric=views&k=3");
    expect(byUser.status).toBe(200);
    expect([byUser.body.by, byUser.body.metric]).toEqual(["user", "views"]);
    for (const it of byUser.body.items) expect(it.key).toMatch(/^u\d+$/);
    expect(await get(demo, "/api/v1/metrics/activity/leaderboard?by=country")).toEqual({
      status: 400, body: { error: "by: must be one of page, segment, user" },
    });
    expect(await get(demo, "/api/v1/metrics/activity/leaderboard?k=0")).toEqual({ status: 400, body: { error: "k: must be ≥ 1" } });
  });

  test("demo metrics - without the simulators every route is a 404 naming WEIR_DEMO", async () => {
    const error = "path: the demo's metrics need the simulators: start weir with WEIR_DEMO=1 (bun run demo)";
    for (const path of ["/api/v1/metrics/iot/latest", "/api/v1/metrics/iot/history?device=dev-01", "/api/v1/metrics/activity/latest", "/api/v1/metrics/activity/leaderboard"]) {
      expect(await get(plain, path)).toEqual({ status: 404, body: { error } });
    }
    // Other routes under /api/v1 are untouched by it.
    expect((await get(plain, "/api/v1/series")).status).toBe(200);
  });
});
