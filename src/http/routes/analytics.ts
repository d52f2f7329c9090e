/**
 * Analytics read routes (API.md "Queries"): dead letters, anomalies, alerts,
 * trends and top-k. Lists are newest first and bounded by `limit`. The
 * answers come from the read model (engine/read-model.ts). Top-k over a
 * from/to range reads at most limits.topWindowsMax windows; past it a 400
 * naming the bound, never a cut ranking.
 */
import { Hono } from "hono";
import { z } from "zod";
import { limits } from "../../runtime/limits.ts";
import { compileGlob } from "../../runtime/series.ts";
import type { AppDeps } from "../app.ts";
import { requireRole } from "../auth.ts";
import { HttpError } from "../errors.ts";
import { intParam, parseQuery, timeParam } from "../params.ts";

const limitParam = intParam(1, limits.queryRowsMax).default(100);
const token = z.string().optional();

/** The ranking's bound; tests pass a smaller one. */
export interface AnalyticsOptions { topWindowsMax: number }

/** @example app.route("/", analyticsRoutes({ read, cfg }, { topWindowsMax: 10 })); // a smaller ranking bound, for a test */
export function analyticsRoutes(deps: Pick<AppDeps, "read" | "cfg" | "doc">, opts: Partial<AnalyticsOptions> = {}): Hono {
  const o: AnalyticsOptions = { topWindowsMax: limits.topWindowsMax, ...opts };
  const app = new Hono();
  const read = requireRole(deps.cfg.tokens, "read");
  const specs = deps.read.specs;

  const deadQuery = z.strictObject({ since: timeParam.default(0), limit: limitParam, token });
  app.get("/api/v1/deadletters", read, (c) => {
    const q = parseQuery(deadQuery, c.req.query());
    return c.json({ deadletters: deps.read.deadletters(q.since, q.limit) });
  });

  const severity = z.enum(["warning", "critical"]);
  const anomalyQuery = z.strictObject({ series: z.string().min(1).max(4096).optional(), since: timeParam.default(0), severity: severity.optional(), limit: limitParam, token });
  app.get("/api/v1/anomalies", read, (c) => {
    const q = parseQuery(anomalyQuery, c.req.query());
    return c.json({ anomalies: deps.read.anomalies(q) });
  });

  const alertQuery = z.strictObject({
    since: timeParam.default(0),
    state: z.enum(["pending", "firing", "resolved", "inactive"]).optional(),
    kind: z.enum(["rule", "view", "anomaly"]).optional(),
    rule: z.string().min(1).max(limits.ruleNameCharsMax).optional(),
    limit: limitParam,
    token,
  });
  app.get("/api/v1/alerts", read, (c) => {
    const q = parseQuery(alertQuery, c.req.query());
    // Anomaly alerts carry no state and no rule: a state or rule filter selects rule transitions and view hits only.
    const rules = q.kind === "anomaly" ? [] : deps.read.ruleAlerts({ since: q.since, state: q.state, rule: q.rule, kind: q.kind, limit: q.limit });
    const anomalies = q.kind === "rule" || q.kind === "view" || q.state !== undefined || q.rule !== undefined
      ? []
      : deps.read.anomalies({ since: q.since, limit: q.limit }).map((r) => ({ kind: "anomaly" as const, ...r }));
    const alerts = [...rules, ...anomalies].sort((a, b) => b.ts - a.ts).slice(0, q.limit);
    return c.json({ alerts });
  });

  const trendQuery = z.strictObject({ match: z.string().min(1).max(512).default("*"), token });
  app.get("/api/v1/trends", read, (c) => {
    const q = parseQuery(trendQuery, c.req.query());
    return c.json({ trends: deps.read.trends(compileGlob(q.match)) });
  });

  const topQuery = z.strictObject({
    name: z.string().min(1).max(limits.nameCharsMax),
    by: z.string().min(1).max(limits.tagKeyCharsMax),
    k: intParam(1, 1000).default(10),
    window: z.string().default(specs[0]).refine((w) => specs.includes(w), { message: `must be one of ${specs.join(", ")}` }),
    agg: z.enum(["sum", "count", "avg", "min", "max", "p99"]).default("sum"),
    from: timeParam.optional(),
    to: timeParam.optional(),
    token,
  }).refine((q) => q.from === undefined || q.to === undefined || q.from <= q.to, { message: "must not be after to", path: ["from"] });
  app.get("/api/v1/top", read, (c) => {
    const { token: _t, ...q } = parseQuery(topQuery, c.req.query());
    const got = deps.read.top({ ...q, windowsMax: o.topWindowsMax });
    if ("over" in got) {
      throw new HttpError(400, `from: the range holds more than ${got.max} windows of ${q.window} for the series of ${q.name} with tag ${q.by}, the most one ranking reads (topWindowsMax): narrow the range`);
    }
    return c.json({ window: got.window, ...(q.from === undefined ? {} : { from: q.from }), ...(q.to === undefined ? {} : { to: q.to }), end: got.end, items: got.items });
  });
  for (const [path, summary, query] of [
    ["/api/v1/deadletters", "Rejected and late events, newest first, with their reasons", deadQuery],
    ["/api/v1/anomalies", "Anomalies, newest first", anomalyQuery],
    ["/api/v1/alerts", "Alerts: anomalies, rule transitions and view hits, newest first", alertQuery],
    ["/api/v1/trends", "The latest trend of each matching series", trendQuery],
    ["/api/v1/top", "Top-k values of a tag over the last closed window or a range", topQuery],
  ] as const) deps.doc?.add({ method: "GET", path, role: "read", summary, query, responses: { 200: "the answer", 400: "a bad parameter, named" } });
  return app;
}
