/**
 * GET /ws/ingest (API.md "Ingest"): producers over a WebSocket. Each frame
 * is a JSON (text) or MessagePack (binary) event or array, answered by one
 * ack once durable (ws-ingest-session.ts: order, backpressure, bad frames).
 * Role `ingest` (header or ?token=); the Origin is checked by the /ws/*
 * CORS middleware (cors.ts) before the upgrade, as for /ws/live.
 */
import { z } from "zod";
import { Hono } from "hono";
import { upgradeWebSocket } from "hono/bun";
import type { ServerWebSocket } from "bun";
import { limits } from "../../runtime/limits.ts";
import type { AppDeps } from "../app.ts";
import { requireRole } from "../auth.ts";
import { HttpError, toHttpError } from "../errors.ts";
import { type FrameFailure, WsIngestSession } from "../ws-ingest-session.ts";

export function wsIngestRoutes(deps: Pick<AppDeps, "ingest" | "cfg" | "log" | "doc">): Hono {
  const app = new Hono();
  let sockets = 0;
  const describe = (e: unknown): FrameFailure => {
    const h = toHttpError(e);
    if (h === null) {
      deps.log.error("ws ingest: unhandled error", { error: (e as Error)?.message, stack: (e as Error)?.stack });
      return { error: "internal error" };
    }
    const retry = h.headers["Retry-After"];
    return retry === undefined ? { error: h.message } : { error: h.message, retryAfter: Number(retry) };
  };
  app.get("/ws/ingest", requireRole(deps.cfg.tokens, "ingest"), async (c, next) => {
    if (sockets >= limits.wsIngestClientsMax) {
      throw new HttpError(503, `ws ingest: ${limits.wsIngestClientsMax} producer sockets open (wsIngestClientsMax)`, {}, { "Retry-After": String(limits.retryAfterSeconds) });
    }
    return next();
  }, upgradeWebSocket(() => {
    let session: WsIngestSession | undefined;
    return {
      onOpen(_e, ws) {
        sockets++;
        const raw = ws.raw as ServerWebSocket<unknown>;
        session = new WsIngestSession({
          ingest: (bytes, format) => deps.ingest.ingestBytes(bytes, format),
          send: (text) => void raw.send(text),
          pause: () => raw.pause(),
          resume: () => raw.resume(),
          close: (code, reason) => raw.close(code, reason),
          describe,
        }, { framesInFlightMax: limits.wsIngestFramesInFlightMax, framesQueuedMax: limits.wsIngestFramesQueuedMax });
      },
      onMessage(e) {
        session?.frame(e.data as string | ArrayBuffer);
      },
      onClose() {
        sockets--;
        session?.close();
      },
    };
  }));
  deps.doc?.add({
    method: "GET", path: "/ws/ingest", role: "ingest", websocket: true, summary: "Events over a WebSocket: JSON or MessagePack frames, one ack per frame once durable",
    query: z.strictObject({ token: z.string().optional() }), responses: { 503: "wsIngestClientsMax sockets open" },
  });
  return app;
}
