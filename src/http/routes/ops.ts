/**
 * /health, /ready and /metrics (API.md "Operations").
 */
import { Hono } from "hono";
import type { AppDeps } from "../app.ts";
import { requireRole } from "../auth.ts";

export function opsRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  app.get("/health", (c) => c.json({ status: "ok" }));
  app.get("/ready", requireRole(deps.cfg.tokens, "read"), (c) => {
    const problems = deps.ops.notReady();
    if (problems.length === 0) return c.json({ status: "ready" });
    return c.json({ error: `not ready: ${problems.join("; ")}`, problems }, 503);
  });
  app.get("/metrics", requireRole(deps.cfg.tokens, "read"), (c) =>
    c.text(deps.ops.metricsText(), 200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" }));
  deps.doc?.add({ method: "GET", path: "/health", role: "none", summary: "Liveness", responses: { 200: '{"status":"ok"}' } });
  deps.doc?.add({ method: "GET", path: "/ready", role: "read", summary: "Readiness: every partition running, the store and disk fine", responses: { 200: '{"status":"ready"}', 503: "not ready, each problem named" } });
  deps.doc?.add({ method: "GET", path: "/metrics", role: "read", summary: "Prometheus text format", responses: { 200: "the metrics" } });
  return app;
}
