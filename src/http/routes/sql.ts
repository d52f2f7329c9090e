/**
 * POST /api/v1/query {"sql"} (role read): one read-only SELECT over the lake
 * (src/lake/) → {"columns", "rows", "truncated"}; pii tokens masked for a
 * token without the `pii` grant (lake/sensitivity.ts). Refused SQL is 400 naming
 * why; WEIR_QUERY_TIMEOUT is 503; past the per-token cap 429, past the
 * server's 503, both with Retry-After.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import type { LakePort } from "../../lake/lake.ts";
import { QueryGate } from "../../lake/query-gate.ts";
import { limits } from "../../runtime/limits.ts";
import type { AppDeps } from "../app.ts";
import { readsPii, requireRole } from "../auth.ts";
import { HttpError } from "../errors.ts";
import { parseJsonBody } from "../params.ts";

const body = z.strictObject({ sql: z.string().min(1).max(limits.lakeQuerySqlCharsMax) });

export function sqlRoutes(deps: AppDeps, lake: LakePort): Hono {
  const app = new Hono();
  const read = requireRole(deps.cfg.tokens, "read");
  const gate = new QueryGate();
  const pii = readsPii(deps.cfg.tokens);
  const retry = { "Retry-After": String(limits.lakeQueryRetryAfterSeconds) };
  const limit = bodyLimit({
    maxSize: limits.lakeQuerySqlCharsMax * 4,
    onError: () => {
      throw new HttpError(413, `body: a query is at most ${limits.lakeQuerySqlCharsMax} characters (lakeQuerySqlCharsMax)`);
    },
  });

  app.post("/api/v1/query", read, limit, async (c) => {
    const q = await parseJsonBody(body, () => c.req.json(), '{"sql": "SELECT …"}');
    const who = tokenOf(c.req.header("authorization"), c.req.query("token"));
    const release = gate.enter(who);
    if (release === "token") throw new HttpError(429, `query: this token already runs ${limits.lakeQueriesPerTokenMax} queries (lakeQueriesPerTokenMax); retry when one ends`, {}, retry);
    if (release === "all") throw new HttpError(503, `query: ${limits.lakeQueriesMax} queries already run (lakeQueriesMax); retry later`, {}, retry);
    try {
      return c.json(await lake.sql.query(q.sql, limits.lakeQueryRowsMax, !pii(c))); // masked unless the token holds pii
    } finally {
      release();
    }
  });
  deps.doc?.add({
    method: "POST", path: "/api/v1/query", role: "read", summary: "One read-only SELECT over the lake (DuckDB); columns tagged pii masked without the pii grant",
    body: { types: ["application/json"], schema: body },
    responses: { 200: "{columns, rows, truncated}", 400: "not one SELECT, or refused by the sandbox, naming why", 413: "over lakeQuerySqlCharsMax", 429: "this token's queries at their cap", 503: "all queries at their cap, or WEIR_QUERY_TIMEOUT" },
  });
  return app;
}

/** Who a query counts against: its bearer token (or ?token=), else one shared name when weir runs without tokens. */
function tokenOf(header: string | undefined, query: string | undefined): string {
  if (header?.startsWith("Bearer ")) return header.slice(7).trim();
  return query ?? "(no token)";
}
