/**
 * Bearer-token roles (API.md "Security"). With no tokens configured every
 * request passes (weir then binds to loopback only; config.ts enforces it).
 * admin implies every other role. WebSockets and SSE may pass ?token=.
 *
 * @example
 *   app.post("/api/v1/events", requireRole(cfg.tokens, "ingest"), handler);
 */
import type { MiddlewareHandler } from "hono";
import type { Role, Token } from "../config.ts";
import { HttpError } from "./errors.ts";

export function requireRole(tokens: readonly Token[], role: Role): MiddlewareHandler {
  const byToken = new Map(tokens.map((t) => [t.token, t.role]));
  return async (c, next) => {
    if (byToken.size > 0) {
      const header = c.req.header("authorization");
      const token = header?.startsWith("Bearer ") ? header.slice(7).trim() : c.req.query("token");
      if (!token) throw new HttpError(401, "authorization: bearer token required", {}, { "WWW-Authenticate": "Bearer" });
      const has = byToken.get(token);
      if (has === undefined) throw new HttpError(401, "authorization: unknown token", {}, { "WWW-Authenticate": "Bearer" });
      if (has !== role && has !== "admin") throw new HttpError(403, `authorization: token lacks role "${role}"`);
    }
    await next();
  };
}
