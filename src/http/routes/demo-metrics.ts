/**
 * The demo's metrics as a dashboard user expects them (issue 18 item 10):
 * thin views over the general read model, shaped by what the simulators
 * make (src/sim/iot.ts: sensor.<metric>{device, site}; src/sim/activity.ts:
 * shop.view / shop.click / shop.purchase{page, segment, user}). Nothing here
 * is stored or computed apart: each answer is the same figures
 * /api/v1/series, /api/v1/windows and /api/v1/top give.
 *
 * Without the simulators (WEIR_DEMO unset) every route is a 404 naming
 * WEIR_DEMO: the names would answer empty lists for a producer's own data.
 *
 * @example
 *   GET /api/v1/metrics/iot/latest               → {"devices": [{"device", "site", "ts", "temperature", "humidity", "pressure"}]}
 *   GET /api/v1/metrics/iot/history?device=dev-01 → {"device", "site", "window", "metrics": {"temperature": [{"start", "end", "count", "avg", "min", "max"}], …}}
 *   GET /api/v1/metrics/activity/latest           → {"window", "end", "views", "clicks", "purchases", "revenue", "conversion", "segments": {…}}
 *   GET /api/v1/metrics/activity/leaderboard?by=page&metric=revenue&k=10 → {"window", "end", "by", "metric", "items": [{"key", "value"}]}
 */
import { Hono } from "hono";
import { z } from "zod";
import { limits } from "../../runtime/limits.ts";
import type { SeriesEntry, WindowRow } from "../../engine/ports.ts";
import type { AppDeps } from "../app.ts";
import { requireRole } from "../auth.ts";
import { HttpError } from "../errors.ts";
import { intParam, parseQuery, timeParam } from "../params.ts";

/** The simulators' names (src/sim/iot.ts, src/sim/activity.ts): the one place this route spells them. */
const iotMetrics = ["temperature", "humidity", "pressure"] as const;
const iotPrefix = "sensor.";
const shop = { views: "shop.view", clicks: "shop.click", purchases: "shop.purchase" } as const;
const leaderboardTags = ["page", "segment", "user"] as const;
const leaderboardMetrics = { revenue: [shop.purchases, "sum"], purchases: [shop.purchases, "count"], views: [shop.views, "count"], clicks: [shop.clicks, "count"] } as const;

const token = z.string().optional();
type IotMetric = (typeof iotMetrics)[number];
type Read = AppDeps["read"];

export function demoMetricsRoutes(deps: Pick<AppDeps, "read" | "cfg" | "doc">): Hono {
  const app = new Hono();
  const read = requireRole(deps.cfg.tokens, "read");
  const specs = deps.read.specs;
  const windowParam = z.string().default(specs[0]).refine((w) => specs.includes(w), { message: `must be one of ${specs.join(", ")}` });

  // The token first (a stranger learns nothing, not even whether the demo runs), then the demo's presence.
  app.use("/api/v1/metrics/*", read, async (_c, next) => {
    if (!deps.cfg.demo) throw new HttpError(404, "path: the demo's metrics need the simulators: start weir with WEIR_DEMO=1 (bun run demo)");
    await next();
  });

  app.get("/api/v1/metrics/iot/latest", (c) => {
    parseQuery(z.strictObject({ token }), c.req.query());
    return c.json({ devices: latestByDevice(deps.read) });
  });

  const historyQuery = z.strictObject({
    device: z.string().min(1).max(limits.tagValueCharsMax),
    metric: z.enum(iotMetrics).optional(),
    window: windowParam,
    from: timeParam.optional(),
    to: timeParam.optional(),
    limit: intParam(1, limits.queryRowsMax).default(360),
    token,
  }).refine((q) => q.from === undefined || q.to === undefined || q.from <= q.to, { message: "must not be after to", path: ["from"] });
  app.get("/api/v1/metrics/iot/history", (c) => {
    const q = parseQuery(historyQuery, c.req.query());
    const series = deviceSeries(deps.read, q.device);
    if (series.length === 0) throw new HttpError(404, `device: no such device "${q.device}" (GET /api/v1/metrics/iot/latest lists them)`);
    const metrics: Partial<Record<IotMetric, unknown[]>> = {};
    for (const s of series) {
      const metric = s.name.slice(iotPrefix.length) as IotMetric;
      if (q.metric !== undefined && metric !== q.metric) continue;
      const rows = deps.read.windows({ series: s.key, window: q.window, from: q.from ?? 0, to: q.to ?? Number.MAX_SAFE_INTEGER, limit: q.limit });
      metrics[metric] = rows.map(historyPoint);
    }
    return c.json({ device: q.device, site: series[0].tags.site ?? null, window: q.window, metrics });
  });

  app.get("/api/v1/metrics/activity/latest", (c) => {
    const q = parseQuery(z.strictObject({ window: windowParam, token }), c.req.query());
    return c.json(activityLatest(deps.read, q.window));
  });

  const leaderboardQuery = z.strictObject({
    by: z.enum(leaderboardTags).default("page"),
    metric: z.enum(["revenue", "purchases", "views", "clicks"]).default("revenue"),
    k: intParam(1, 100).default(10),
    window: windowParam,
    token,
  });
  app.get("/api/v1/metrics/activity/leaderboard", (c) => {
    const q = parseQuery(leaderboardQuery, c.req.query());
    const [name, agg] = leaderboardMetrics[q.metric];
    const got = deps.read.top({ name, by: q.by, k: q.k, window: q.window, agg, windowsMax: limits.topWindowsMax });
    if ("over" in got) throw new Error("a ranking of the latest window has no windows bound to pass"); // programmer error
    return c.json({ window: got.window, end: got.end, by: q.by, metric: q.metric, items: got.items });
  });
  const notDemo = "the simulators are off (WEIR_DEMO)";
  deps.doc?.add({ method: "GET", path: "/api/v1/metrics/iot/latest", role: "read", summary: "The demo: each device's latest readings", query: z.strictObject({ token }), responses: { 200: "{devices}", 404: notDemo } });
  deps.doc?.add({ method: "GET", path: "/api/v1/metrics/iot/history", role: "read", summary: "The demo: one device's windows", query: historyQuery, responses: { 200: "the windows", 400: "a bad parameter, named", 404: `${notDemo}, or no such device` } });
  deps.doc?.add({ method: "GET", path: "/api/v1/metrics/activity/latest", role: "read", summary: "The demo: the shop's latest activity figures", query: z.strictObject({ window: windowParam, token }), responses: { 200: "the figures", 400: "a bad parameter", 404: notDemo } });
  deps.doc?.add({ method: "GET", path: "/api/v1/metrics/activity/leaderboard", role: "read", summary: "The demo: top pages or users", query: leaderboardQuery, responses: { 200: "the ranking", 400: "a bad parameter", 404: notDemo } });
  return app;
}

/** Every device's latest reading of each metric, by device id. */
function latestByDevice(read: Read): Array<Record<string, unknown>> {
  const byDevice = new Map<string, Record<string, unknown> & { device: string; ts: number | null }>();
  for (const s of read.series(/^sensor\./, limits.seriesListMax)) {
    const metric = s.name.slice(iotPrefix.length);
    const device = s.tags.device;
    if (device === undefined || !(iotMetrics as readonly string[]).includes(metric)) continue;
    let d = byDevice.get(device);
    if (d === undefined) {
      d = { device, site: s.tags.site ?? null, ts: null, temperature: null, humidity: null, pressure: null };
      byDevice.set(device, d);
    }
    if (s.last !== null) {
      d[metric] = s.last.value;
      d.ts = Math.max(d.ts ?? -Infinity, s.last.ts);
    }
  }
  return [...byDevice.values()].sort((a, b) => (a.device < b.device ? -1 : 1));
}

/** The sensor series of one device (at most one a metric). */
function deviceSeries(read: Read, device: string): SeriesEntry[] {
  return read.series(/^sensor\./, limits.seriesListMax).filter((s) => s.tags.device === device && (iotMetrics as readonly string[]).includes(s.name.slice(iotPrefix.length)));
}

const historyPoint = (r: WindowRow) => ({ start: r.start, end: r.end, count: r.count, avg: r.avg, min: r.min, max: r.max });

/** The shop's funnel over the latest closed window: totals, and per user segment. */
function activityLatest(read: Read, window: string) {
  const bySegment = (name: string, agg: "sum" | "count") =>
    read.top({ name, by: "segment", k: 1000, window, agg, windowsMax: limits.topWindowsMax });
  const parts = { views: bySegment(shop.views, "count"), clicks: bySegment(shop.clicks, "count"), purchases: bySegment(shop.purchases, "count"), revenue: bySegment(shop.purchases, "sum") };
  const segments: Record<string, { views: number; clicks: number; purchases: number; revenue: number }> = {};
  const totals = { views: 0, clicks: 0, purchases: 0, revenue: 0 };
  let end: number | null = null;
  for (const [field, got] of Object.entries(parts) as Array<[keyof typeof totals, ReturnType<typeof bySegment>]>) {
    if ("over" in got) throw new Error("a ranking of the latest window has no windows bound to pass"); // programmer error
    if (got.end !== null) end = Math.max(end ?? -Infinity, got.end);
    for (const { key, value } of got.items) {
      segments[key] ??= { views: 0, clicks: 0, purchases: 0, revenue: 0 };
      segments[key][field] += value;
      totals[field] += value;
    }
  }
  const conversion = totals.views > 0 ? totals.purchases / totals.views : null;
  return { window, end, ...totals, conversion, segments };
}
