/**
 * GET /api/v1/openapi.json (API.md "Queries"): the OpenAPI 3.1 document of
 * every route, made from what the route modules recorded (../openapi.ts).
 * Built at the first request, when every module has added its own.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AppDeps } from "../app.ts";
import { requireRole } from "../auth.ts";
import { type ApiDoc, openApiDocument } from "../openapi.ts";
import { parseQuery } from "../params.ts";
import pkg from "../../../package.json" with { type: "json" };

const query = z.strictObject({ token: z.string().optional() });

export function openApiRoutes(deps: Pick<AppDeps, "cfg">, doc: ApiDoc): Hono {
  const app = new Hono();
  let body: string | null = null;
  doc.add({ method: "GET", path: "/api/v1/openapi.json", role: "read", summary: "This document: every route, its parameters, bodies and statuses", query, responses: { 200: "the OpenAPI 3.1 document", 400: "an unknown parameter" } });
  app.get("/api/v1/openapi.json", requireRole(deps.cfg.tokens, "read"), (c) => {
    parseQuery(query, c.req.query());
    body ??= JSON.stringify(openApiDocument(doc, pkg.version));
    return c.body(body, 200, { "Content-Type": "application/json" });
  });
  return app;
}
