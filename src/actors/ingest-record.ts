/**
 * The raw-log record of one accepted request: what replay needs to feed the
 * partitions exactly what they were fed, and what the raw zone keeps.
 *
 *   { v: 1, f: body format code, raw: bin (the request body as received),
 *     s: [[key, name, tags, partition, local], …]   series this request introduced,
 *     ids: [id, …]                                  event ids committed for de-duplication,
 *     b: [[partition, bin], …] }                    the ring messages, byte for byte
 *
 * Replay decodes `b` instead of re-validating `raw`: validation depends on
 * the series registry and the de-duplication set as they were, so the
 * routed batches are the only exact record of what was accepted. `raw` is
 * the raw zone (props included) for analysts and exports.
 *
 * @example
 *   const bytes = encodeIngestRecord(enc, { f: 1, raw: body, s: [], ids: [], b: [[0, msg]] });
 *   const rec = decodeIngestRecord(dec, bytes); // same fields back
 */
import { WeirError } from "../runtime/errors.ts";
import type { Decoder, Encoder } from "@msgpack/msgpack";
import type { SeriesInfo } from "./series-registry.ts";

/** Raw-log format code of an ingest record (the body codes 1–3 are those of ingest-body.ts). */
export const ingestRecordFormat = 16;

/** [key, name, tags, partition, local] */
export type SeriesRow = [string, string, Record<string, string>, number, number];

export interface IngestRecord {
  f: number;
  raw: Uint8Array;
  s: SeriesRow[];
  ids: string[];
  b: Array<[number, Uint8Array]>;
}

export function encodeIngestRecord(enc: Encoder, r: IngestRecord): Uint8Array {
  return enc.encode({ v: 1, f: r.f, raw: r.raw, s: r.s, ids: r.ids, b: r.b });
}

export class IngestRecordError extends WeirError {
  override name = "IngestRecordError";
  constructor(message: string) {
    super("raw_record", message);
  }
}

export function decodeIngestRecord(dec: Decoder, bytes: Uint8Array): IngestRecord {
  const r = dec.decode(bytes) as IngestRecord & { v?: number };
  if (r === null || typeof r !== "object" || r.v !== 1 || !Array.isArray(r.b) || !Array.isArray(r.s) || !Array.isArray(r.ids)) {
    throw new IngestRecordError("raw log: not a version-1 ingest record");
  }
  return r;
}

export function seriesRowOf(s: SeriesInfo): SeriesRow {
  return [s.key, s.name, s.tags, s.partition, s.local];
}

export function seriesInfoOf(row: SeriesRow): SeriesInfo {
  return { key: row[0], name: row[1], tags: row[2], partition: row[3], local: row[4] };
}
