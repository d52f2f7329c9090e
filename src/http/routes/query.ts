/**
 * Read routes over series and stored windows (API.md "Queries").
 */
import type { Database, Statement } from "bun:sqlite";
import { Hono } from "hono";
import { z } from "zod";
import { anomalyDefaults, isAnomalyOpen } from "../../actors/anomaly.ts";
import { limits } from "../../runtime/limits.ts";
import { globToRegExp } from "../../runtime/series.ts";
import type { AppDeps } from "../app.ts";
import { requireRole } from "../auth.ts";
import { HttpError } from "../errors.ts";
import { intParam, parseQuery, timeParam } from "../params.ts";
import { mergeWindows, type WindowRow } from "../staged-merge.ts";

const aggregates = ["count", "sum", "min", "max", "avg", "p50", "p95", "p99", "first", "last"] as const;

export function queryRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  const read = requireRole(deps.cfg.tokens, "read");
  const specs = deps.engine.labels; // the configured specs, then the 1m and 1h rollups

  const seriesQuery = z.strictObject({
    match: z.string().min(1).max(512).default("*"),
    limit: intParam(1, limits.seriesListMax).default(1000),
    token: z.string().optional(),
  });
  app.get("/api/v1/series", read, (c) => {
    const q = parseQuery(seriesQuery, c.req.query());
    const re = globToRegExp(q.match);
    const reg = deps.engine.registry;
    const series = [];
    for (let id = 0; id < reg.size && series.length < q.limit; id++) {
      const s = reg.info(id);
      if (!re.test(s.key)) continue;
      const ts = reg.lastTs[id];
      const trend = deps.engine.latestTrends.get(s.key)?.class ?? "unknown";
      const a = deps.engine.openAnomalies.get(s.key);
      const anomaly = a !== undefined && isAnomalyOpen(a.ts, ts, anomalyDefaults.cooldownMs) ? a : null;
      series.push({ key: s.key, name: s.name, tags: s.tags, last: Number.isNaN(ts) ? null : { ts, value: reg.lastValue[id] }, trend, anomaly });
    }
    return c.json({ series });
  });

  const windowsQuery = z.strictObject({
    series: z.string().min(1).max(4096),
    window: z.string().default(specs[0]).refine((w) => specs.includes(w), { message: `must be one of ${specs.join(", ")}` }),
    from: timeParam.optional(),
    to: timeParam.optional(),
    limit: intParam(1, limits.queryRowsMax).default(1000),
    format: z.enum(["rows", "columns"]).default("rows"),
    token: z.string().optional(),
  }).refine((q) => q.from === undefined || q.to === undefined || q.from <= q.to, { message: "must not be after to", path: ["from"] });
  const windowsStmt = prepareWindows(deps.reader);
  app.get("/api/v1/windows", read, (c) => {
    const q = parseQuery(windowsQuery, c.req.query());
    const [from, to] = [q.from ?? 0, q.to ?? Number.MAX_SAFE_INTEGER];
    const stored = windowsStmt.all(q.series, q.window, from, to, q.limit) as WindowRow[];
    const staged = deps.engine.uncommittedWindows((r) => r.series === q.series && r.window === q.window && r.start >= from && r.start < to, q.series);
    const rows = mergeWindows(stored, staged, q.limit); // newest `limit` in range, answered oldest first
    if (q.format === "rows") return c.json({ series: q.series, window: q.window, windows: rows });
    const cols: Record<string, unknown> = { series: q.series, window: q.window, start: rows.map((r) => r.start), end: rows.map((r) => r.end) };
    for (const a of aggregates) cols[a] = rows.map((r) => r[a]);
    return c.json(cols);
  });

  app.get("/api/v1/*", () => {
    throw new HttpError(404, "path: no such route");
  });
  return app;
}

function prepareWindows(db: Database): Statement {
  return db.prepare(
    `SELECT start, "end", count, sum, min, max, avg, p50, p95, p99, first, last FROM windows
     WHERE series = ? AND window = ? AND start >= ? AND start < ? ORDER BY start DESC LIMIT ?`,
  );
}
