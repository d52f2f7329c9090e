/**
 * The operating errors of weir's NATS link, each with its code
 * (runtime/errors.ts). NATS being away is expected weather, not a bug: the
 * caller answers 503 and retries; a stream with other settings needs a
 * person, so its error lists every difference.
 *
 * @example
 *   try { await ensureIngestStream(jsm, want); }
 *   catch (e) { if (e instanceof IngestStreamError) log.error(e.message, { differences: e.differences }); throw e; }
 */
import { ClosedConnectionError, ConnectionError, TimeoutError } from "@nats-io/transport-node";
import { WeirError } from "../runtime/errors.ts";

/** NATS cannot be reached now: at connect, or a request that timed out or found the link closed. */
export class NatsUnavailableError extends WeirError {
  override name = "NatsUnavailableError";
  constructor(message: string, options?: ErrorOptions) {
    super("nats_unavailable", message, options);
  }
}

/** One setting of a stream as it is (`have`) and as weir asks (`want`), both as a person writes them. */
export interface StreamDifference { field: string; have: string; want: string }

/** A stream weir needs exists with other settings (each listed), or cannot be created as asked. */
export class IngestStreamError extends WeirError {
  override name = "IngestStreamError";
  constructor(readonly stream: string, message: string, readonly differences: readonly StreamDifference[] = [], options?: ErrorOptions) {
    super("nats_stream", message, options);
  }
}

/** Weir processes on one NATS that would split WEIR_INGEST between them: not all in cluster mode. */
export class NatsModeError extends WeirError {
  override name = "NatsModeError";
  constructor(message: string) {
    super("nats_mode", message);
  }
}

/**
 * The client's failure as a NatsUnavailableError when it means the link is
 * down (a timeout, a closed or failed connection); any other error as it is.
 * @example catch (e) { throw asUnavailable(e, "nats: stream info WEIR_INGEST"); }
 */
export function asUnavailable(e: unknown, doing: string): unknown {
  const down = e instanceof TimeoutError || e instanceof ClosedConnectionError || e instanceof ConnectionError;
  return down ? new NatsUnavailableError(`${doing}: ${(e as Error).message}`, { cause: e }) : e;
}
