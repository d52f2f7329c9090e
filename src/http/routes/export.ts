/**
 * GET /api/v1/export?table=&from=&to=&format=parquet|ndjson (role read): a
 * table or metric view between two times (on its time column; the whole
 * of a table that has none), streamed as Parquet or NDJSON; pii tokens
 * masked for a token without the `pii` grant.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { LakePort } from "../../lake/lake.ts";
import type { AppDeps } from "../app.ts";
import { readsPii, requireRole } from "../auth.ts";
import { HttpError } from "../errors.ts";
import { parseQuery, timeParam } from "../params.ts";

const exportQuery = z.strictObject({
  table: z.string().min(1).max(128),
  from: timeParam.default(0),
  to: timeParam.default(Number.MAX_SAFE_INTEGER),
  format: z.enum(["parquet", "ndjson"]).default("parquet"),
  token: z.string().optional(),
}).refine((q) => q.from <= q.to, { message: "must not be after to", path: ["from"] });

const contentTypes = { parquet: "application/vnd.apache.parquet", ndjson: "application/x-ndjson" } as const;

export function exportRoutes(deps: AppDeps, lake: LakePort): Hono {
  const app = new Hono();
  const pii = readsPii(deps.cfg.tokens);
  app.get("/api/v1/export", requireRole(deps.cfg.tokens, "read"), async (c) => {
    const q = parseQuery(exportQuery, c.req.query());
    const t = lake.exportable(q.table);
    if (t === undefined) throw new HttpError(400, `table: no table or metric view "${q.table}" (see GET /api/v1/catalog)`);
    const stream = await lake.export({ table: q.table, from: q.from, to: q.to, timeColumn: t.timeColumn, format: q.format }, !pii(c)); // masked unless granted
    return new Response(stream, {
      headers: { "content-type": contentTypes[q.format], "content-disposition": `attachment; filename="${q.table}.${q.format}"` },
    });
  });
  deps.doc?.add({ method: "GET", path: "/api/v1/export", role: "read", summary: "A table of the lake as Parquet or NDJSON, streamed", query: exportQuery, responses: { 200: "the file", 400: "a bad parameter, named", 404: "no such table" } });
  return app;
}
