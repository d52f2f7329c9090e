/**
 * Browsers from other origins (API.md "Security"): deny by default, an
 * exact-origin allowlist (WEIR_CORS_ORIGINS) on the API, the live socket
 * and its SSE twin. A request without an Origin header (curl, Telegraf,
 * the SDK, NATS' HTTP front) or from weir's own origin (the dashboard) is
 * not a cross-origin one and passes. A listed origin gets
 * Access-Control-Allow-Origin (with Vary: Origin, and Retry-After exposed)
 * and its preflights answered; any other is refused with 403 and a JSON
 * error before the route runs, so a page elsewhere can neither read
 * weir's answers nor post events through its visitors' browsers (a
 * `text/plain` sendBeacon needs no preflight, so the refusal is what stops it).
 *
 * @example
 *   app.use("/api/*", crossOrigin(cfg.corsOrigins)); // ["https://shop.example"]
 */
import type { MiddlewareHandler } from "hono";

const allowMethods = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
const allowHeaders = "authorization, content-type, content-encoding, idempotency-key";
const maxAgeSeconds = "600";

/** Weir's own page: the Origin's host is the request's (the scheme may differ behind a proxy that ends TLS). */
function sameHost(origin: string, url: string): boolean {
  try {
    return new URL(origin).host === new URL(url).host;
  } catch {
    return false; // "null" (a sandboxed page, a file) or garbage: cross-origin
  }
}

export function crossOrigin(allowed: readonly string[]): MiddlewareHandler {
  const list = new Set(allowed);
  return async (c, next) => {
    const origin = c.req.header("origin");
    if (origin === undefined || sameHost(origin, c.req.url)) return next();
    if (!list.has(origin)) {
      return c.json({ error: `origin: ${JSON.stringify(origin.slice(0, 200))} is not in WEIR_CORS_ORIGINS` }, 403);
    }
    c.header("Access-Control-Allow-Origin", origin);
    c.header("Vary", "Origin");
    if (c.req.method === "OPTIONS") {
      c.header("Access-Control-Allow-Methods", allowMethods);
      c.header("Access-Control-Allow-Headers", allowHeaders);
      c.header("Access-Control-Max-Age", maxAgeSeconds);
      return c.body(null, 204);
    }
    c.header("Access-Control-Expose-Headers", "Retry-After");
    return next();
  };
}
