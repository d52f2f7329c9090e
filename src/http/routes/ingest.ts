/**
 * POST /api/v1/events (API.md "Ingest"): JSON, NDJSON, MessagePack and
 * text/plain holding JSON, plain or gzip/deflate (content-encoding.ts). 202
 * means the accepted events are in the raw log.
 *
 * POST /write and /api/v1/write: InfluxDB 1.x line protocol, as Telegraf's
 * `influxdb` output sends it (any Content-Type; `?precision=`, default ns;
 * `db`, `rp`, `consistency` accepted and ignored). 204 once every line's
 * events are durable; 400 naming each bad line, the good lines' events
 * still written (InfluxDB's partial write).
 */
import { type Context, Hono } from "hono";
import { z } from "zod";
import { bodyLimit } from "hono/body-limit";
import { type BodyFormat, formatOf } from "../../actors/ingest-body.ts";
import { eventSchema } from "../../actors/ingest-validate.ts";
import type { AppDeps } from "../app.ts";
import { requireRole } from "../auth.ts";
import { decodeContentEncoding } from "../content-encoding.ts";
import { HttpError } from "../errors.ts";
import { parseQuery } from "../params.ts";

export function ingestRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  const maxBody = deps.cfg.maxBodyBytes;
  app.post(
    "/api/v1/events",
    requireRole(deps.cfg.tokens, "ingest"),
    bodyLimit({ maxSize: maxBody, onError: () => { throw new HttpError(413, `body: over WEIR_MAX_BODY (${maxBody} bytes)`); } }),
    async (c) => {
      const format = formatOf(c.req.header("content-type"));
      if (format === null || format.startsWith("line-")) { // line protocol: POST /write
        throw new HttpError(415, "content-type: use application/json, application/x-ndjson, application/msgpack or text/plain");
      }
      deps.ingest.shedEarly?.(); // before the body is read: a refused request costs no body's memory
      const bytes = decodeContentEncoding(new Uint8Array(await c.req.arrayBuffer()), c.req.header("content-encoding"), maxBody);
      const outcome = await ingestOrThrow(deps, bytes, format);
      const body = { accepted: outcome.accepted, rejected: outcome.rejected, errors: outcome.errors };
      if (outcome.accepted === 0) return c.json({ error: "no event valid", errors: outcome.errors }, 400);
      return c.json(body, 202);
    },
  );
  const write = async (c: Context) => {
    const q = parseQuery(writeQuery, c.req.query());
    deps.ingest.shedEarly?.();
    const bytes = decodeContentEncoding(new Uint8Array(await c.req.arrayBuffer()), c.req.header("content-encoding"), maxBody);
    const outcome = await ingestOrThrow(deps, bytes, `line-${q.precision === "u" ? "us" : q.precision}`);
    if (outcome.rejected === 0) return c.body(null, 204);
    return c.json({ error: outcome.errors[0]?.error ?? "invalid lines", accepted: outcome.accepted, rejected: outcome.rejected, errors: outcome.errors }, 400);
  };
  for (const path of ["/write", "/api/v1/write"]) {
    app.post(path, requireRole(deps.cfg.tokens, "ingest"), bodyLimit({ maxSize: maxBody, onError: () => { throw new HttpError(413, `body: over WEIR_MAX_BODY (${maxBody} bytes)`); } }), write);
  }
  deps.doc?.add({
    method: "POST", path: "/api/v1/events", role: "ingest", summary: "Events: one or an array (JSON, NDJSON, MessagePack, text/plain holding JSON; gzip or deflate)",
    body: { types: ["application/json", "application/x-ndjson", "application/msgpack", "text/plain"], schema: z.union([eventSchema, z.array(eventSchema)]) },
    responses: { 202: "accepted (durable): {accepted, rejected, errors}", 400: "unparseable, empty, or no event valid: {error, errors}", 413: "over WEIR_MAX_BODY or 100,000 events", 415: "another content type or encoding", 429: "overloaded: nothing taken, Retry-After", 503: "overloaded: nothing taken, Retry-After" },
  });
  for (const path of ["/write", "/api/v1/write"]) {
    deps.doc?.add({
      method: "POST", path, role: "ingest", summary: "InfluxDB 1.x line protocol (Telegraf): each numeric field an event measurement.field",
      query: writeQuery, body: { types: ["text/plain"], description: "lines: measurement[,tag=value…] field=value[,…] [timestamp]" },
      responses: { 204: "every line's events durable", 400: "bad lines named (the good ones written): {error, accepted, rejected, errors}", 413: "over WEIR_MAX_BODY", 503: "overloaded: nothing taken, Retry-After" },
    });
  }
  return app;
}

/** /write's query: InfluxDB 1.x's `u` is microseconds too; its `m` and `h` are not taken (Telegraf never sends them). */
const writeQuery = z.object({
  precision: z.enum(["ns", "us", "u", "ms", "s"]).default("ns"),
  db: z.string().optional(), rp: z.string().optional(), consistency: z.string().optional(),
}).strict();

/** The outcome once it may be acknowledged (under `durable`, after its group's fsync); the engine's errors reach app.onError. */
async function ingestOrThrow(deps: AppDeps, bytes: Uint8Array, format: BodyFormat) {
  const outcome = await deps.ingest.ingestBytes(bytes, format);
  if (outcome.durable) await outcome.durable;
  return outcome;
}
