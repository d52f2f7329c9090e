/**
 * GET /api/v1/dashboard: what the page shows besides the charts the user
 * picks (src/http/dashboard-def.ts), from the config file's `dashboard:`,
 * the demo's, or none. The page asks once at load; a config change needs a
 * restart, like every other setting.
 */
import { Hono } from "hono";
import type { AppDeps } from "../app.ts";
import { requireRole } from "../auth.ts";

/** @example app.route("/", dashboardRoutes({ cfg })); // GET /api/v1/dashboard → {"source", "charts", "gauges", "cards", "top"} */
export function dashboardRoutes(deps: Pick<AppDeps, "cfg" | "doc">): Hono {
  const app = new Hono();
  const body = JSON.stringify(deps.cfg.dashboard); // fixed for the process's life: built once
  app.get("/api/v1/dashboard", requireRole(deps.cfg.tokens, "read"), (c) => c.body(body, 200, { "Content-Type": "application/json" }));
  deps.doc?.add({ method: "GET", path: "/api/v1/dashboard", role: "read", summary: "The page's charts, gauges and cards (config dashboard:)", responses: { 200: "the dashboard settings" } });
  return app;
}
