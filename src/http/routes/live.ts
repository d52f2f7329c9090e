/**
 * GET /ws/live (API.md "Live"): hello on connect, then subscribe /
 * unsubscribe / throttle frames; results pushed by the fanout actor.
 */
import { z } from "zod";
import { Hono } from "hono";
import { upgradeWebSocket } from "hono/bun";
import type { ServerWebSocket } from "bun";
import type { AppDeps } from "../app.ts";
import { requireRole } from "../auth.ts";

export function liveRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  const fanout = deps.live;
  app.get(
    "/ws/live",
    requireRole(deps.cfg.tokens, "read"),
    upgradeWebSocket(() => {
      let id = -1;
      return {
        onOpen(_e, ws) {
          const raw = ws.raw as ServerWebSocket<unknown>;
          id = fanout.add({
            // 0: dropped, the buffer being at backpressureLimit (never an empty frame here); a socket already
            // closing answers 0 too, and is not slow: its onClose removes it.
            send: (text) => raw.send(text) !== 0 || raw.readyState !== 1,
            cork: (fn) => void raw.cork(fn),
            close: (code, reason) => raw.close(code, reason),
            bufferedAmount: () => raw.getBufferedAmount(),
          });
        },
        onMessage(e) {
          if (typeof e.data === "string") fanout.handleOp(id, e.data);
          else fanout.handleOp(id, new TextDecoder().decode(e.data as ArrayBuffer));
        },
        onClose() {
          fanout.remove(id);
        },
      };
    }),
  );
  deps.doc?.add({
    method: "GET", path: "/ws/live", role: "read", websocket: true, summary: "Live results over a WebSocket: hello, then subscribe/unsubscribe/throttle frames; pushes windows, updates, anomalies, trends, alerts, stats",
    query: z.strictObject({ token: z.string().optional() }), responses: {},
  });
  return app;
}
