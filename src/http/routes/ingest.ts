/**
 * POST /api/v1/events (API.md "Ingest"): JSON, NDJSON, MessagePack and
 * text/plain holding JSON, plain or gzip/deflate (content-encoding.ts). 202
 * means the accepted events are in the raw log.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { formatOf } from "../../actors/ingest-body.ts";
import type { AppDeps } from "../app.ts";
import { requireRole } from "../auth.ts";
import { decodeContentEncoding } from "../content-encoding.ts";
import { HttpError } from "../errors.ts";

export function ingestRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  const maxBody = deps.cfg.maxBodyBytes;
  app.post(
    "/api/v1/events",
    requireRole(deps.cfg.tokens, "ingest"),
    bodyLimit({ maxSize: maxBody, onError: () => { throw new HttpError(413, `body: over WEIR_MAX_BODY (${maxBody} bytes)`); } }),
    async (c) => {
      const format = formatOf(c.req.header("content-type"));
      if (format === null) {
        throw new HttpError(415, "content-type: use application/json, application/x-ndjson, application/msgpack or text/plain");
      }
      const bytes = decodeContentEncoding(new Uint8Array(await c.req.arrayBuffer()), c.req.header("content-encoding"), maxBody);
      const outcome = await ingestOrThrow(deps, bytes, format);
      const body = { accepted: outcome.accepted, rejected: outcome.rejected, errors: outcome.errors };
      if (outcome.accepted === 0) return c.json({ error: "no event valid", errors: outcome.errors }, 400);
      return c.json(body, 202);
    },
  );
  return app;
}

/** The outcome once it may be acknowledged (under `durable`, after its group's fsync); the engine's errors reach app.onError. */
async function ingestOrThrow(deps: AppDeps, bytes: Uint8Array, format: NonNullable<ReturnType<typeof formatOf>>) {
  const outcome = await deps.ingest.ingestBytes(bytes, format);
  if (outcome.durable) await outcome.durable;
  return outcome;
}
