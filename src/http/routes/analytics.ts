/**
 * Analytics read routes (API.md "Queries"): dead letters, anomalies, alerts,
 * trends and top-k. Lists are newest first and bounded by `limit`.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AnomalyRecord } from "../../actors/store.ts";
import { limits } from "../../runtime/limits.ts";
import { globToRegExp } from "../../runtime/series.ts";
import type { AppDeps } from "../app.ts";
import { requireRole } from "../auth.ts";
import { intParam, parseQuery, timeParam } from "../params.ts";
import { type AnomalyRow, latestWindows, mergeAnomalies, type TopRow } from "../staged-merge.ts";

const limitParam = intParam(1, limits.queryRowsMax).default(100);
const token = z.string().optional();

export function analyticsRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  const read = requireRole(deps.cfg.tokens, "read");
  const db = deps.reader;
  const specs = deps.cfg.windows.map((w) => w.label);

  const deadQuery = z.strictObject({ since: timeParam.default(0), limit: limitParam, token });
  app.get("/api/v1/deadletters", read, (c) => {
    const q = parseQuery(deadQuery, c.req.query());
    return c.json({ deadletters: deps.engine.deadletters.list(q.since, q.limit) });
  });

  const severity = z.enum(["warning", "critical"]);
  const anomalyQuery = z.strictObject({ series: z.string().min(1).max(4096).optional(), since: timeParam.default(0), severity: severity.optional(), limit: limitParam, token });
  const anomalyStmt = db.prepare(
    `SELECT series, ts, value, z, mean, std, severity, source, baseline_n AS baselineN, baseline_from AS baselineFromTs FROM anomalies
     WHERE ts >= ?1 AND (?2 IS NULL OR series = ?2) AND (?3 IS NULL OR severity = ?3) ORDER BY ts DESC, id DESC LIMIT ?4`,
  );
  /** Stored and staged (published, not yet committed) anomalies, newest first. */
  const anomalies = (since: number, series: string | undefined, sev: string | undefined, limit: number): AnomalyRow[] => {
    const stored = anomalyStmt.all(since, series ?? null, sev ?? null, limit) as AnomalyRow[];
    const keep = (a: AnomalyRecord) => a.ts >= since && (series === undefined || a.series === series) && (sev === undefined || a.severity === sev);
    return mergeAnomalies(stored, deps.engine.uncommittedAnomalies(keep, series), limit);
  };
  app.get("/api/v1/anomalies", read, (c) => {
    const q = parseQuery(anomalyQuery, c.req.query());
    return c.json({ anomalies: anomalies(q.since, q.series, q.severity, q.limit) });
  });

  const alertQuery = z.strictObject({ since: timeParam.default(0), state: z.enum(["pending", "firing", "resolved"]).optional(), limit: limitParam, token });
  app.get("/api/v1/alerts", read, (c) => {
    const q = parseQuery(alertQuery, c.req.query());
    // Anomaly alerts carry no state; a state filter selects rule transitions, of which there are none yet.
    if (q.state !== undefined) return c.json({ alerts: [] });
    return c.json({ alerts: anomalies(q.since, undefined, undefined, q.limit).map((r) => ({ kind: "anomaly", ...r })) });
  });

  const trendQuery = z.strictObject({ match: z.string().min(1).max(512).default("*"), token });
  app.get("/api/v1/trends", read, (c) => {
    const q = parseQuery(trendQuery, c.req.query());
    const re = globToRegExp(q.match);
    const trends = [];
    for (const [series, t] of deps.engine.latestTrends) if (re.test(series)) trends.push({ series, ...t });
    trends.sort((a, b) => (a.series < b.series ? -1 : 1));
    return c.json({ trends: trends.slice(0, limits.seriesListMax) });
  });

  const topQuery = z.strictObject({
    name: z.string().min(1).max(limits.nameCharsMax),
    by: z.string().min(1).max(limits.tagKeyCharsMax),
    k: intParam(1, 1000).default(10),
    window: z.string().default(specs[0]).refine((w) => specs.includes(w), { message: `must be one of ${specs.join(", ")}` }),
    agg: z.enum(["sum", "count"]).default("sum"),
    token,
  });
  // The series of one name sort between "name{" and "name|" ('|' follows '{'), plus the untagged "name".
  const topStmt = db.prepare(
    `WITH s AS (SELECT series, "end", sum, count FROM windows WHERE window = ?1 AND (series = ?2 OR (series >= ?3 AND series < ?4)))
     SELECT series, sum, count, "end" FROM s WHERE "end" = (SELECT max("end") FROM s)`,
  );
  app.get("/api/v1/top", read, (c) => {
    const q = parseQuery(topQuery, c.req.query());
    const rows = latestWindows(topStmt.all(q.window, q.name, q.name + "{", q.name + "|") as TopRow[], deps.engine.uncommittedWindows(
      (r) => r.window === q.window && (r.series === q.name || r.series.startsWith(`${q.name}{`)),
    ));
    const groups = new Map<string, number>();
    for (const r of rows) {
      const id = deps.engine.registry.idOf(r.series);
      const key = id === undefined ? undefined : deps.engine.registry.info(id).tags[q.by];
      if (key === undefined) continue;
      groups.set(key, (groups.get(key) ?? 0) + (q.agg === "sum" ? r.sum : r.count));
    }
    const items = [...groups].map(([key, value]) => ({ key, value })).sort((a, b) => b.value - a.value || (a.key < b.key ? -1 : 1));
    return c.json({ window: q.window, end: rows[0]?.end ?? null, items: items.slice(0, q.k) });
  });
  return app;
}

