/**
 * The one HTTP error: thrown anywhere in a route, mapped to JSON in one place
 * (app.onError). Bodies are `{"error": "..."}` plus optional fields. The
 * engine's operating errors (WeirError) become HttpErrors here and only here
 * (toHttpError).
 *
 * @example
 *   throw new HttpError(400, "limit: must be a whole number between 1 and 10000");
 */
import { WeirError, type WeirErrorCode } from "../runtime/errors.ts";

export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 405 | 413 | 415 | 429 | 500 | 503,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** The status each operating error answers with; codes not listed are not a client's to see (500). */
const statusOfCode: Partial<Record<WeirErrorCode, 400 | 413 | 503>> = {
  bad_body: 400, bad_rule: 400, bad_view: 400, bad_table: 400, bad_query: 400, query_timeout: 503, lake: 503, too_large: 413, overloaded: 503, store: 503, raw_log: 503, nats_unavailable: 503,
};

/**
 * An error as the HTTP answer it is: itself if an HttpError, the mapped
 * answer of a WeirError, else null (a programmer error: a 500 that is logged).
 * Overload is 429/503 with Retry-After, and says nothing of the request was taken.
 * @example throw toHttpError(e) ?? e;
 */
export function toHttpError(e: unknown): HttpError | null {
  if (e instanceof HttpError) return e;
  if (!(e instanceof WeirError)) return null;
  if (e.code === "overloaded") {
    const o = e as WeirError & { status?: 429 | 503; retryAfterSeconds?: number };
    return new HttpError(o.status ?? 503, `overloaded: ${e.message}; nothing of this request was accepted`, {}, { "Retry-After": String(o.retryAfterSeconds ?? 1) });
  }
  const status = statusOfCode[e.code];
  return status === undefined ? null : new HttpError(status, e.message);
}
