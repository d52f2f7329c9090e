/**
 * createApp(deps) returns the Hono app: every route, one error mapping.
 *
 * @example
 *   const app = createApp({ ingest: engine, read: engine.readModel(reader), live: engine.fanout, ops: engine, cfg, log });
 *   Bun.serve({ fetch: app.fetch, websocket, port: 0 });
 */
import { Hono } from "hono";
import type { IngestPort, LivePort, OpsPort, ReadModel, RulesPort, ViewsPort, TablesPort } from "../engine/ports.ts";
import type { Config } from "../config.ts";
import type { Log } from "../runtime/log.ts";
import { tokenGate } from "./auth.ts";
import { crossOrigin } from "./cors.ts";
import { ApiDoc } from "./openapi.ts";
import { openApiRoutes } from "./routes/openapi.ts";
import { toHttpError } from "./errors.ts";
import { analyticsRoutes } from "./routes/analytics.ts";
import { ingestRoutes } from "./routes/ingest.ts";
import { liveRoutes } from "./routes/live.ts";
import { wsIngestRoutes } from "./routes/ws-ingest.ts";
import { opsRoutes } from "./routes/ops.ts";
import { queryRoutes } from "./routes/query.ts";
import { rulesRoutes } from "./routes/rules.ts";
import { viewsRoutes } from "./routes/views.ts";
import { rulesTestRoutes } from "./routes/rules-test.ts";
import { staticRoutes } from "./routes/static.ts";
import { dashboardRoutes } from "./routes/dashboard.ts";
import { demoMetricsRoutes } from "./routes/demo-metrics.ts";
import { streamRoutes } from "./routes/stream.ts";
import { tablesRoutes } from "./routes/tables.ts";
import type { LakePort } from "../lake/lake.ts";
import { catalogRoutes } from "./routes/catalog.ts";
import { exportRoutes } from "./routes/export.ts";
import { metricViewRoutes } from "./routes/metric-views.ts";
import { sqlRoutes } from "./routes/sql.ts";

/** What the routes reach: the engine's narrow ports (engine/ports.ts), never the engine itself. */
export interface AppDeps {
  ingest: IngestPort; read: ReadModel; live: LivePort; ops: OpsPort; rules: RulesPort; views: ViewsPort; tables: TablesPort; cfg: Config; log: Log; lake?: LakePort;
  /** Where each route module records its operations for the OpenAPI document (createApp makes it). */
  doc?: ApiDoc;
}

export function createApp(given: AppDeps): Hono {
  const deps: AppDeps = { ...given, doc: new ApiDoc() };
  const app = new Hono();
  const cors = crossOrigin(deps.cfg.corsOrigins);
  for (const path of ["/api/*", "/ws/*"]) app.use(path, cors);
  app.route("/", staticRoutes());
  app.route("/", opsRoutes(deps));
  app.route("/", ingestRoutes(deps));
  app.route("/", liveRoutes(deps));
  app.route("/", wsIngestRoutes(deps));
  app.route("/", streamRoutes(deps));
  app.route("/", analyticsRoutes(deps));
  app.route("/", rulesTestRoutes(deps)); // before rulesRoutes: POST /api/v1/rules/test is not a rule named "test"
  app.route("/", rulesRoutes(deps));
  app.route("/", viewsRoutes(deps));
  app.route("/", tablesRoutes(deps));
  if (deps.lake !== undefined) {
    // The lake (SQL, catalog, export, metric views): absent when a test builds the app without one.
    for (const routes of [sqlRoutes, catalogRoutes, exportRoutes, metricViewRoutes]) app.route("/", routes(deps, deps.lake));
  }
  app.route("/", dashboardRoutes(deps));
  app.route("/", demoMetricsRoutes(deps)); // 404 naming WEIR_DEMO without the simulators
  app.route("/", openApiRoutes(deps, deps.doc!));
  app.route("/", queryRoutes(deps)); // last: it answers any other GET /api/v1/* with a 404
  const gate = tokenGate(deps.cfg.tokens); // with tokens set, a stranger learns nothing of the routes: 401 before 404
  app.notFound((c) => {
    gate(c);
    return c.json({ error: `path: no such route ${c.req.method} ${c.req.path}` }, 404);
  });
  app.onError((err, c) => {
    const h = toHttpError(err);
    if (h !== null) {
      for (const [k, v] of Object.entries(h.headers)) c.header(k, v);
      return c.json({ error: h.message, ...h.extra }, h.status);
    }
    deps.log.error("unhandled error", { path: c.req.path, error: err.message, stack: err.stack });
    return c.json({ error: "internal error" }, 500);
  });
  return app;
}
