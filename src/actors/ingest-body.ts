/**
 * Request bodies → lists of raw events, for the four ingest content types.
 * Shared by POST /api/v1/events, the WebSocket ingest and raw-log replay.
 *
 * @example
 *   decodeBody(new TextEncoder().encode('{"name":"a"}'), "json") // [{ name: "a" }]
 */
import { WeirError } from "../runtime/errors.ts";
import { decode } from "@msgpack/msgpack";

export type BodyFormat = "json" | "ndjson" | "msgpack";

/** Raw-log format codes; stable on disk. */
export const formatCode: Record<BodyFormat, number> = { json: 1, ndjson: 2, msgpack: 3 };
export const formatOfCode: Record<number, BodyFormat> = { 1: "json", 2: "ndjson", 3: "msgpack" };

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
  return null;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Parses a body; throws BodyError naming what is wrong. */
export function decodeBody(bytes: Uint8Array, format: BodyFormat): unknown[] {
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

function decodeText(bytes: Uint8Array): string {
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
