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
  return app;
}
