/**
 * The base of every operating error weir raises — bad input, overload, bad
 * settings, a damaged store or raw log — with a code that says which. It is
 * mapped in two places only: to an HTTP status and JSON body
 * (src/http/errors.ts) and to a message for a person at a terminal
 * (src/cli-messages.ts). Programmer errors are not WeirErrors: they assert
 * and crash, and the supervisor restarts the thread.
 *
 * @example
 *   throw new BodyError("body: not JSON"); // a WeirError with code "bad_body"
 *   if (e instanceof WeirError && e.code === "overloaded") ...
 */
export type WeirErrorCode =
  | "bad_body" // a request body that cannot be read as events
  | "too_large" // a body over its limits
  | "overloaded" // nothing of the request was taken: retry later
  | "bad_config" // a setting or the config file
  | "bad_rule" // an alert rule that cannot be parsed or run as written
  | "bad_view" // a continuous view that cannot be parsed or run as written
  | "bad_table" // a reference table's rows that cannot be read as written
  | "store" // the SQLite store
  | "bad_query" // SQL that is not one read-only SELECT, or that DuckDB refuses (src/lake/)
  | "query_timeout" // SQL stopped by WEIR_QUERY_TIMEOUT
  | "lake" // the lake's files or its DuckDB could not be read or written
  | "raw_log" // the raw log
  | "raw_record" // a record of the raw log that is not one weir wrote
  | "start_failed" // a partition could not recover at start-up
  | "nats_unavailable" // NATS cannot be reached now: retry later
  | "nats_stream" // a JetStream stream weir needs exists with other settings, or cannot be made as asked
  | "nats_mode" // weir processes on one NATS that do not agree on cluster mode
  | "unreachable" // a client command (weir load) could not reach weir
  | "stale_owner"; // a partition's checkpoint commit by a process whose lease was taken over

export class WeirError extends Error {
  constructor(readonly code: WeirErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}
