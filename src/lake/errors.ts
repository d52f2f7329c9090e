/**
 * The lake's operating errors: SQL refused (400 naming why), SQL stopped by
 * WEIR_QUERY_TIMEOUT (503), and the lake's files or DuckDB failing (503).
 *
 * @example
 *   throw new LakeQueryError("sql: exactly one statement, got 2");
 */
import { WeirError } from "../runtime/errors.ts";

export class LakeQueryError extends WeirError {
  override name = "LakeQueryError";
  constructor(message: string) {
    super("bad_query", message);
  }
}

export class LakeTimeoutError extends WeirError {
  override name = "LakeTimeoutError";
  constructor(timeoutMs: number) {
    super("query_timeout", `query timed out after ${timeoutMs / 1000} s`);
  }
}

export class LakeError extends WeirError {
  override name = "LakeError";
  constructor(message: string, options?: ErrorOptions) {
    super("lake", message, options);
  }
}
