/**
 * The one HTTP error: thrown anywhere in a route, mapped to JSON in one place
 * (app.onError). Bodies are `{"error": "..."}` plus optional fields.
 *
 * @example
 *   throw new HttpError(400, "limit: must be a whole number between 1 and 10000");
 */
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
