/**
 * The metric views' admin API: GET /api/v1/metric-views (read), GET / PUT /
 * DELETE /api/v1/metric-views/{name} (GET read; PUT and DELETE admin). A
 * PUT body is {"sql", "description"?}; SQL that is not one read-only SELECT
 * DuckDB can bind is 400 naming why.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { LakePort } from "../../lake/lake.ts";
import { metricViewName, metricViewSchema } from "../../lake/metric-view-def.ts";
import type { AppDeps } from "../app.ts";
import { requireRole } from "../auth.ts";
import { HttpError } from "../errors.ts";
import { parseJsonBody, parseQuery } from "../params.ts";

const tokenQuery = z.strictObject({ token: z.string().optional() });
const putBody = metricViewSchema.omit({ name: true });

export function metricViewRoutes(deps: AppDeps, lake: LakePort): Hono {
  const app = new Hono();
  const read = requireRole(deps.cfg.tokens, "read");
  const admin = requireRole(deps.cfg.tokens, "admin");

  app.get("/api/v1/metric-views", read, (c) => {
    parseQuery(tokenQuery, c.req.query());
    return c.json({ metric_views: lake.metricViews.list() });
  });
  app.get("/api/v1/metric-views/:name", read, (c) => {
    parseQuery(tokenQuery, c.req.query());
    const v = lake.metricViews.get(nameOf(c.req.param("name")));
    if (v === undefined) throw new HttpError(404, `name: no metric view "${c.req.param("name")}"`);
    return c.json(v);
  });
  app.put("/api/v1/metric-views/:name", admin, async (c) => {
    parseQuery(tokenQuery, c.req.query());
    const name = nameOf(c.req.param("name"));
    const b = await parseJsonBody(putBody, () => c.req.json(), '{"sql": "SELECT …", "description": "…"}');
    const created = await lake.metricViews.put({ name, ...b });
    return c.json(lake.metricViews.get(name), created ? 201 : 200);
  });
  app.delete("/api/v1/metric-views/:name", admin, async (c) => {
    parseQuery(tokenQuery, c.req.query());
    if (!(await lake.metricViews.delete(nameOf(c.req.param("name"))))) throw new HttpError(404, `name: no metric view "${c.req.param("name")}"`);
    return c.body(null, 204);
  });
  deps.doc?.add({ method: "GET", path: "/api/v1/metric-views", role: "read", summary: "The metric views", query: tokenQuery, responses: { 200: "{metricViews}" } });
  deps.doc?.add({ method: "GET", path: "/api/v1/metric-views/:name", role: "read", summary: "One metric view", query: tokenQuery, responses: { 200: "the view", 404: "no such view" } });
  deps.doc?.add({ method: "PUT", path: "/api/v1/metric-views/:name", role: "admin", summary: "Makes or replaces a metric view (one SELECT)", query: tokenQuery, body: { types: ["application/json"], schema: putBody }, responses: { 200: "replaced", 201: "made", 400: "not one SELECT, or a bad field, named" } });
  deps.doc?.add({ method: "DELETE", path: "/api/v1/metric-views/:name", role: "admin", summary: "Removes a metric view", query: tokenQuery, responses: { 204: "removed", 404: "no such view" } });
  return app;
}

function nameOf(raw: string): string {
  const r = metricViewName.safeParse(raw);
  if (!r.success) throw new HttpError(400, `name: ${r.error.issues[0].message}`);
  return r.data;
}
