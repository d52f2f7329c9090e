/**
 * Request bodies → lists of raw events, for the four ingest content types.
 * Shared by POST /api/v1/events, the WebSocket ingest and raw-log replay.
 *
 * @example
 *   decodeBody(new TextEncoder().encode('{"name":"a"}'), "json") // [{ name: "a" }]
 */
import { WeirError } from "../runtime/errors.ts";
import { decode } from "@msgpack/msgpack";

/** InfluxDB line protocol in a timestamp precision (src/ingest/line-protocol.ts; parse-body.ts decodes it, not decodeBody). */
export type LineFormat = "line-ns" | "line-us" | "line-ms" | "line-s";
export type BodyFormat = "json" | "ndjson" | "msgpack" | LineFormat;

/** Raw-log format codes; stable on disk. */
export const formatCode: Record<BodyFormat, number> = { json: 1, ndjson: 2, msgpack: 3, "line-ns": 4, "line-us": 5, "line-ms": 6, "line-s": 7 };
export const formatOfCode: Record<number, BodyFormat> = { 1: "json", 2: "ndjson", 3: "msgpack", 4: "line-ns", 5: "line-us", 6: "line-ms", 7: "line-s" };

/** The Content-Type weir gives line protocol it publishes (NATS mode), with its precision: formatOf reads it back. */
export const lineContentType = "text/vnd.influx-line";

export class BodyError extends WeirError {
  override name = "BodyError";
  constructor(message: string) {
    super("bad_body", message);
  }
}

/** The body format of a Content-Type header, or null for an unsupported one (415). */
export function formatOf(contentType: string | null | undefined): BodyFormat | null {
  const ct = (contentType ?? "").split(";")[0].trim().toLowerCase();
  if (ct === "application/json" || ct === "text/plain") return "json";
  if (ct === "application/x-ndjson" || ct === "application/ndjson") return "ndjson";
  if (ct === "application/msgpack" || ct === "application/x-msgpack") return "msgpack";
  if (ct === lineContentType) {
    const p = /;\s*precision=(ns|us|ms|s)\s*(;|$)/i.exec(contentType ?? "")?.[1]?.toLowerCase() ?? "ns";
    return `line-${p}` as LineFormat;
  }
  return null;
}

/** The Content-Type a body of `format` goes out with (NATS mode). */
export function contentTypeOf(format: BodyFormat): string {
  if (format === "json") return "application/json";
  if (format === "ndjson") return "application/x-ndjson";
  if (format === "msgpack") return "application/msgpack";
  return `${lineContentType}; precision=${format.slice("line-".length)}`;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Parses a body; throws BodyError naming what is wrong. */
export function decodeBody(bytes: Uint8Array, format: "json" | "ndjson" | "msgpack"): unknown[] {
  if (bytes.byteLength === 0) throw new BodyError("body: empty");
  if (format === "msgpack") return listOf(decodeMsgpack(bytes));
  const text = decodeText(bytes);
  if (format === "json") return listOf(parseJson(text, "body"));
  const items: unknown[] = [];
  let line = 0;
  for (const part of text.split("\n")) {
    line++;
    const t = part.trim();
    if (t.length > 0) items.push(parseJson(t, `line ${line}`));
  }
  if (items.length === 0) throw new BodyError("body: no events");
  return items;
}

/** A body's text; throws BodyError when it is not UTF-8. */
export function decodeText(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new BodyError("body: not valid UTF-8");
  }
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new BodyError(`${where}: invalid JSON`);
  }
}

function decodeMsgpack(bytes: Uint8Array): unknown {
  try {
    return decode(bytes);
  } catch (e) {
    throw new BodyError("body: invalid MessagePack");
  }
}

function listOf(v: unknown): unknown[] {
  if (Array.isArray(v)) {
    if (v.length === 0) throw new BodyError("body: empty array");
    return v;
  }
  if (typeof v === "object" && v !== null) return [v];
  throw new BodyError("body: must be an event object or an array of events");
}
