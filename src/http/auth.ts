/**
 * Bearer-token roles (API.md "Security"). With no tokens configured every
 * request passes (weir then binds to loopback only; config.ts enforces it).
 * admin implies every other role. WebSockets and SSE may pass ?token=.
 * A token may also hold the `pii` grant (`token:read+pii`; admin holds
 * it): readsPii tells the lake routes whether to unmask sensitive columns.
 *
 * @example
 *   app.post("/api/v1/events", requireRole(cfg.tokens, "ingest"), handler);
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import type { Role, Token } from "../config.ts";
import { AuthFailures } from "./auth-failures.ts";
import { HttpError } from "./errors.ts";

export function requireRole(tokens: readonly Token[], role: Role): MiddlewareHandler {
  const check = checkerOf(tokens);
  return async (c, next) => {
    const has = check(c);
    if (has !== null && has.role !== role && has.role !== "admin") throw new HttpError(403, `authorization: token lacks role "${role}"`);
    await next();
  };
}

/**
 * Any known token, whatever its role: with tokens configured, a route that
 * does not exist answers 401 to a caller without one (before 404), so the
 * API's shape is not disclosed to strangers.
 */
export function requireToken(tokens: readonly Token[]): MiddlewareHandler {
  const check = checkerOf(tokens);
  return async (c, next) => {
    check(c);
    await next();
  };
}

/** requireToken's check on its own (app.notFound runs no middleware): throws the 401 or 429. */
export function tokenGate(tokens: readonly Token[]): (c: Context) => void {
  const check = checkerOf(tokens);
  return (c) => void check(c);
}

interface Checker { (c: Context): Token | null }

/** One per token list (the config's): the failure counts are shared by every route. */
const checkers = new WeakMap<readonly Token[], Checker>();

/**
 * The request's token, or null when none are configured. Throws 401 for a
 * missing or unknown one (counted against the client's address) and 429
 * for an address past its failures. Tokens are compared by their SHA-256
 * digests in constant time, every configured one each time, so neither a
 * token's prefix nor which token matched shows in the answer's timing.
 */
function checkerOf(tokens: readonly Token[]): Checker {
  const known = checkers.get(tokens);
  if (known !== undefined) return known;
  const digests = tokens.map((t) => ({ digest: digestOf(t.token), token: t }));
  const failures = new AuthFailures();
  const check: Checker = (c) => {
    if (digests.length === 0) return null;
    const address = addressOf(c);
    const now = Date.now();
    const wait = address === null ? 0 : failures.blockedFor(address, now);
    if (wait > 0) throw new HttpError(429, "authorization: too many failed attempts from this address; try again later", {}, { "Retry-After": String(wait) });
    const presented = tokenOf(c);
    let found: Token | null = null;
    if (presented) {
      const d = digestOf(presented);
      for (const x of digests) if (timingSafeEqual(x.digest, d)) found = x.token; // no early exit
    }
    if (found === null) {
      if (address !== null) failures.fail(address, now);
      throw new HttpError(401, presented ? "authorization: unknown token" : "authorization: bearer token required", {}, { "WWW-Authenticate": "Bearer" });
    }
    return found;
  };
  checkers.set(tokens, check);
  return check;
}

function digestOf(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}

/** The client's address as Bun.serve saw it; null without one (a test's app.request(): nothing to count by). */
function addressOf(c: Context): string | null {
  const server = c.env as { requestIP?: (r: Request) => { address: string } | null } | undefined;
  return server?.requestIP?.(c.req.raw)?.address ?? null;
}

/** The request's bearer token (or ?token=), if any. */
function tokenOf(c: Context): string | undefined {
  const header = c.req.header("authorization");
  return header?.startsWith("Bearer ") ? header.slice(7).trim() : c.req.query("token");
}

/**
 * Whether a request (already past requireRole) may read sensitive columns
 * in the clear: with no tokens configured every request may (weir then
 * serves loopback only, as for the roles), else its token must hold `pii`.
 *
 * @example
 *   const pii = readsPii(cfg.tokens);
 *   await lake.sql.query(sql, rowsMax, !pii(c)); // masked unless granted
 */
export function readsPii(tokens: readonly Token[]): (c: Context) => boolean {
  const granted = new Set(tokens.filter((t) => t.pii).map((t) => t.token));
  return (c) => tokens.length === 0 || granted.has(tokenOf(c) ?? "");
}
