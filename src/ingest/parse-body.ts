/**
 * One request body to validated events (ingest-parse.ts), as an ingest
 * worker does it and as the main thread does with WEIR_INGEST_THREADS=0:
 * decode, the count bound, validation. Throws BodyError or TooLargeError.
 *
 * @example
 *   const parsed = parseBody(bytes, "json", recvMs, cfg);
 */
import { decodeBody, type BodyFormat } from "../actors/ingest-body.ts";
import { parseEvents, type ParsedEvents } from "../actors/ingest-parse.ts";
import type { TimeBounds } from "../actors/ingest-validate.ts";
import { TooLargeError } from "../engine/errors.ts";
import { limits } from "../runtime/limits.ts";

export function parseBody(bytes: Uint8Array, format: BodyFormat, recvMs: number, bounds: TimeBounds): ParsedEvents {
  const items = decodeBody(bytes, format);
  if (items.length > limits.eventsPerRequestMax) throw new TooLargeError(`body: over ${limits.eventsPerRequestMax} events`);
  return parseEvents(items, recvMs, bounds);
}
