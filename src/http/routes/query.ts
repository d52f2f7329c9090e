/**
 * Read routes over series and stored windows (API.md "Queries").
 */
import { Hono } from "hono";
import { z } from "zod";
import { limits } from "../../runtime/limits.ts";
import { compileGlob } from "../../runtime/series.ts";
import type { AppDeps } from "../app.ts";
import { requireRole, requireToken } from "../auth.ts";
import { HttpError } from "../errors.ts";
import { intParam, parseQuery, timeParam } from "../params.ts";

const aggregates = ["count", "sum", "min", "max", "avg", "p50", "p95", "p99", "first", "last"] as const;

export function queryRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  const read = requireRole(deps.cfg.tokens, "read");
  const specs = deps.read.labels; // the configured specs, then the 1m and 1h rollups

  const seriesQuery = z.strictObject({
    match: z.string().min(1).max(512).default("*"),
    limit: intParam(1, limits.seriesListMax).default(1000),
    after: intParam(-1, limits.seriesMaxCeiling).default(-1).describe("the `next` of the previous page"),
    token: z.string().optional(),
  });
  app.get("/api/v1/series", read, (c) => {
    const q = parseQuery(seriesQuery, c.req.query());
    const page = deps.read.series(compileGlob(q.match), q.limit, q.after);
    return c.json({ series: [...page], ...(page.next === undefined ? {} : { next: page.next }) });
  });

  const windowsQuery = z.strictObject({
    series: z.string().min(1).max(4096),
    // The configured specs and rollups, or the window of a view (its results are series of that label).
    window: z.string().default(specs[0]).refine((w) => specs.includes(w) || deps.views.list().some((v) => v.window === w), {
      message: `must be one of ${specs.join(", ")}, or a view's window`,
    }),
    from: timeParam.optional(),
    to: timeParam.optional(),
    limit: intParam(1, limits.queryRowsMax).default(1000),
    format: z.enum(["rows", "columns"]).default("rows"),
    token: z.string().optional(),
  }).refine((q) => q.from === undefined || q.to === undefined || q.from <= q.to, { message: "must not be after to", path: ["from"] });
  app.get("/api/v1/windows", read, (c) => {
    const q = parseQuery(windowsQuery, c.req.query());
    const rows = deps.read.windows({ series: q.series, window: q.window, from: q.from ?? 0, to: q.to ?? Number.MAX_SAFE_INTEGER, limit: q.limit });
    if (q.format === "rows") return c.json({ series: q.series, window: q.window, windows: rows });
    const cols: Record<string, unknown> = { series: q.series, window: q.window, start: rows.map((r) => r.start), end: rows.map((r) => r.end) };
    for (const a of aggregates) cols[a] = rows.map((r) => r[a]);
    return c.json(cols);
  });

  app.get("/api/v1/*", requireToken(deps.cfg.tokens), () => {
    throw new HttpError(404, "path: no such route");
  });
  deps.doc?.add({ method: "GET", path: "/api/v1/series", role: "read", summary: "Series with their latest value, trend and open anomaly", query: seriesQuery, responses: { 200: "the series", 400: "a bad parameter, named" } });
  deps.doc?.add({ method: "GET", path: "/api/v1/windows", role: "read", summary: "Windows of one series and spec, oldest first (rows or columns)", query: windowsQuery, responses: { 200: "the windows", 400: "a bad parameter, named" } });
  return app;
}
