/**
 * GET /api/v1/stream?topic=<topic>[&topic=…] — the live messages of
 * /ws/live as Server-Sent Events (API.md "Live"). Each client is one fanout
 * client: same topics, throttle, conflation and bounds; a comment line every
 * limits.sseHeartbeatMs keeps proxies (and the client) sure the stream is
 * alive, and Bun's idle timeout is lifted for this request only.
 */
import { z } from "zod";
import type { Server } from "bun";
import { Hono } from "hono";
import { limits } from "../../runtime/limits.ts";
import type { AppDeps } from "../app.ts";
import { requireRole } from "../auth.ts";
import { HttpError } from "../errors.ts";

const encoder = new TextEncoder();

export function streamRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  const fanout = deps.live;
  app.get("/api/v1/stream", requireRole(deps.cfg.tokens, "read"), (c) => {
    const topics = c.req.queries("topic") ?? [];
    if (topics.length === 0) throw new HttpError(400, "topic: required (e.g. topic=windows:10s:*)");
    if (topics.length > limits.wsTopicsPerClientMax) throw new HttpError(400, `topic: at most ${limits.wsTopicsPerClientMax}`);
    (c.env as Server<unknown> | undefined)?.timeout?.(c.req.raw, 0); // a quiet stream is not idle
    let id = -1;
    let beat: ReturnType<typeof setInterval> | undefined;
    let pending: ReadableStreamDefaultController<Uint8Array> | undefined;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        pending = controller;
        const write = (text: string) => controller.enqueue(encoder.encode(text));
        id = fanout.add({
          send: (json) => write(`data: ${json}\n\n`),
          close: (code, reason) => {
            write(`event: close\ndata: ${JSON.stringify({ code, reason })}\n\n`);
            cleanup();
            controller.close();
          },
          // Bytes enqueued and not yet taken by the socket (the strategy counts bytes).
          bufferedAmount: () => Math.max(0, -(pending?.desiredSize ?? 0)),
        });
        if (id < 0) return;
        const error = fanout.subscribe(id, topics);
        if (error !== null) {
          write(`event: error\ndata: ${JSON.stringify({ error })}\n\n`);
          cleanup();
          controller.close();
          return;
        }
        beat = setInterval(() => write(": ping\n\n"), limits.sseHeartbeatMs);
      },
      cancel() {
        cleanup();
      },
    }, { highWaterMark: 0, size: (chunk) => chunk?.byteLength ?? 0 });
    function cleanup(): void {
      if (beat) clearInterval(beat);
      fanout.remove(id);
    }
    return new Response(stream, {
      headers: { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache", "X-Accel-Buffering": "no" },
    });
  });
  deps.doc?.add({
    method: "GET", path: "/api/v1/stream", role: "read", summary: "The live topics as Server-Sent Events (text/event-stream)",
    query: z.strictObject({ topic: z.array(z.string()).describe("one or more: windows:<spec>:<glob>, updates:<spec>:<glob>, anomalies[:<glob>], trends[:<glob>], alerts, stats"), token: z.string().optional() }),
    responses: { 200: "the event stream", 400: "no topic, or too many" },
  });
  return app;
}
