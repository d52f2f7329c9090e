/**
 * The reference tables' routes (API.md "Views and reference tables"): the
 * tables (role read), one table's rows (read), a table replaced or made
 * (PUT, admin), rows upserted by key (PATCH, admin), a table deleted
 * (DELETE, admin). A body is text/csv, application/json (an array of
 * objects) or application/x-ndjson, at most limits.tableBodyBytesMax bytes;
 * bad rows are a 400 naming the line or row and column at fault, a table
 * past a bound a 413 naming the bound (TableError, actors/views/table.ts).
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { formatOfContentType, isColumnName, isTableName, type TableFormat } from "../../actors/views/table.ts";
import { limits } from "../../runtime/limits.ts";
import type { AppDeps } from "../app.ts";
import { requireRole } from "../auth.ts";
import { HttpError } from "../errors.ts";
import { intParam, parseQuery } from "../params.ts";

const listQuery = z.strictObject({ token: z.string().optional() });
const rowsQuery = z.strictObject({
  limit: intParam(1, limits.queryRowsMax).default(limits.tableRowsListedDefault),
  offset: intParam(0, limits.tableRowsMax).default(0),
  token: z.string().optional(),
});
const changeQuery = z.strictObject({
  key: z.string().refine(isColumnName, "must be a column name (letters, digits and _, not starting with a digit)").optional(),
  token: z.string().optional(),
});

export function tablesRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  const read = requireRole(deps.cfg.tokens, "read");
  const admin = requireRole(deps.cfg.tokens, "admin");
  const limit = bodyLimit({
    maxSize: limits.tableBodyBytesMax,
    onError: () => {
      throw new HttpError(413, `body: a table is at most ${limits.tableBodyBytesMax} bytes (tableBodyBytesMax)`);
    },
  });

  app.get("/api/v1/tables", read, (c) => {
    parseQuery(listQuery, c.req.query());
    return c.json({ tables: deps.tables.list() });
  });

  app.get("/api/v1/tables/:name", read, (c) => {
    const name = nameOf(c.req.param("name"));
    const q = parseQuery(rowsQuery, c.req.query());
    const page = deps.tables.get(name, q.offset, q.limit);
    if (page === undefined) throw new HttpError(404, `name: no table "${name}"`);
    return c.json(page);
  });

  app.put("/api/v1/tables/:name", admin, limit, async (c) => {
    const name = nameOf(c.req.param("name"));
    const q = parseQuery(changeQuery, c.req.query());
    const body = { format: formatOf(c.req.header("content-type"), c.req.header("content-encoding")), text: await c.req.text() };
    const { created, table } = await deps.tables.put(name, body, q.key);
    return c.json(table, created ? 201 : 200);
  });

  app.patch("/api/v1/tables/:name", admin, limit, async (c) => {
    const name = nameOf(c.req.param("name"));
    const q = parseQuery(changeQuery, c.req.query());
    const body = { format: formatOf(c.req.header("content-type"), c.req.header("content-encoding")), text: await c.req.text() };
    const out = await deps.tables.patch(name, body, q.key);
    if (out === undefined) throw new HttpError(404, `name: no table "${name}" (PUT makes one)`);
    return c.json(out);
  });

  app.delete("/api/v1/tables/:name", admin, async (c) => {
    const name = nameOf(c.req.param("name"));
    parseQuery(listQuery, c.req.query());
    if (!(await deps.tables.delete(name))) throw new HttpError(404, `name: no table "${name}"`);
    return c.body(null, 204);
  });
  const tableBody = { types: ["text/csv", "application/json", "application/x-ndjson"], description: "rows: CSV with a header, a JSON array of objects, or NDJSON" };
  deps.doc?.add({ method: "GET", path: "/api/v1/tables", role: "read", summary: "The reference tables", query: listQuery, responses: { 200: "{tables}" } });
  deps.doc?.add({ method: "GET", path: "/api/v1/tables/:name", role: "read", summary: "A page of one table's rows", query: rowsQuery, responses: { 200: "the summary and rows", 404: "no such table" } });
  deps.doc?.add({ method: "PUT", path: "/api/v1/tables/:name", role: "admin", summary: "Replaces a table's rows, or makes the table", query: changeQuery, body: tableBody, responses: { 200: "replaced", 201: "made", 400: "a bad row or column, named", 413: "past a bound, named", 415: "another content type", 503: "changes wait for full partition queues" } });
  deps.doc?.add({ method: "PATCH", path: "/api/v1/tables/:name", role: "admin", summary: "Upserts rows by key", query: changeQuery, body: tableBody, responses: { 200: "{…summary, inserted, updated}", 400: "a bad row, named", 404: "no such table", 413: "past a bound", 503: "changes wait for full partition queues" } });
  deps.doc?.add({ method: "DELETE", path: "/api/v1/tables/:name", role: "admin", summary: "Removes a table", query: listQuery, responses: { 204: "removed", 404: "no such table" } });
  return app;
}

function nameOf(raw: string): string {
  if (!isTableName(raw)) {
    throw new HttpError(400, `name: not a table name (letters, digits and _, not starting with a digit, at most ${limits.tableNameCharsMax} characters)`);
  }
  return raw;
}

function formatOf(contentType: string | undefined, encoding: string | undefined): TableFormat {
  const format = formatOfContentType(contentType);
  if (format === null) throw new HttpError(415, "content-type: a table is text/csv, application/json or application/x-ndjson");
  const enc = (encoding ?? "").trim().toLowerCase();
  if (enc !== "" && enc !== "identity") throw new HttpError(415, "content-encoding: a table is sent as it is (no gzip or deflate)");
  return format;
}
