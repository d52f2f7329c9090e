/**
 * GET /api/v1/catalog (role read): every table SQL can read (the raw zone,
 * the curated tables, the metric views) with its columns (name, type,
 * description, sensitivity tags), retention and freshness.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { LakePort } from "../../lake/lake.ts";
import type { AppDeps } from "../app.ts";
import { requireRole } from "../auth.ts";
import { parseQuery } from "../params.ts";

const catalogQuery = z.strictObject({ token: z.string().optional() });

export function catalogRoutes(deps: AppDeps, lake: LakePort): Hono {
  const app = new Hono();
  app.get("/api/v1/catalog", requireRole(deps.cfg.tokens, "read"), async (c) => {
    parseQuery(catalogQuery, c.req.query());
    return c.json({ tables: await lake.catalog() });
  });
  deps.doc?.add({ method: "GET", path: "/api/v1/catalog", role: "read", summary: "Every table SQL can read: columns, types, sensitivity, retention", query: catalogQuery, responses: { 200: "{tables}", 400: "an unknown parameter" } });
  return app;
}
