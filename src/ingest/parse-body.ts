/**
 * One request body to validated events (ingest-parse.ts), as an ingest
 * worker does it and as the main thread does with WEIR_INGEST_THREADS=0:
 * decode, the count bound, validation. Throws BodyError or TooLargeError.
 * Line protocol (line-protocol.ts) is the one format whose body can be
 * partly malformed: its bad lines are refused like invalid events, each
 * naming its line, and the good ones are taken (InfluxDB's partial write).
 *
 * @example
 *   const parsed = parseBody(bytes, "json", recvMs, cfg);
 *   parseBody(text("cpu usage=1\ncpu usage=x"), "line-ns", recvMs, cfg).rejects // [{ index: 1, error: 'line 2: field "usage": …' }]
 */
import { BodyError, decodeBody, decodeText, type BodyFormat, type LineFormat } from "../actors/ingest-body.ts";
import { type ParseBounds, parseEvents, type ParsedEvents } from "../actors/ingest-parse.ts";
import { TooLargeError } from "../engine/errors.ts";
import { limits } from "../runtime/limits.ts";
import { parseLines, type Precision } from "./line-protocol.ts";

export function parseBody(bytes: Uint8Array, format: BodyFormat, recvMs: number, bounds: ParseBounds): ParsedEvents {
  if (format.startsWith("line-")) return parseLineBody(bytes, format as LineFormat, recvMs, bounds);
  const items = decodeBody(bytes, format as "json" | "ndjson" | "msgpack");
  if (items.length > limits.eventsPerRequestMax) throw new TooLargeError(`body: over ${limits.eventsPerRequestMax} events`);
  return parseEvents(items, recvMs, bounds);
}

/** Line protocol: a reject's index is its line (from 0) and its error starts with "line N:"; rejects in line order. */
function parseLineBody(bytes: Uint8Array, format: LineFormat, recvMs: number, bounds: ParseBounds): ParsedEvents {
  if (bytes.byteLength === 0) throw new BodyError("body: empty");
  const lines = parseLines(decodeText(bytes), format.slice("line-".length) as Precision);
  if (lines.events.length > limits.eventsPerRequestMax) throw new TooLargeError(`body: over ${limits.eventsPerRequestMax} events`);
  const parsed = parseEvents(lines.events, recvMs, bounds);
  const rejects = parsed.rejects.map((r) => ({ ...r, index: lines.lines[r.index], error: `line ${lines.lines[r.index] + 1}: ${r.error}` }));
  for (const e of lines.errors) rejects.push({ index: e.line, event: e.text, error: e.error, reason: "invalid" });
  parsed.rejects = rejects.sort((a, b) => a.index - b.index);
  return parsed;
}
