/**
 * The raw-log record of one accepted request: what replay needs to feed the
 * partitions exactly what they were fed, and what the raw zone keeps. Each
 * event is in it once:
 *
 *   { v: 2,
 *     s: [[key, name, tags, partition, local], …]   series this request introduced,
 *     b: [[partition, bin], …]                      the ring messages, byte for byte (series, ts, value per event),
 *     x: [[partition, index, id, props], …],        the id and props of the events that carry one (null for the other)
 *     o: [key, …] }                                 where the request came from, when it can come again (optional):
 *                                                   a NATS message's stream sequence and Nats-Msg-Id
 *
 * Replay decodes `b` instead of re-validating a body: validation depends on
 * the series registry and the de-duplication set as they were, so the
 * routed batches are the only exact record of what was accepted. An event
 * of the raw zone is its batch row (its series' name and tags from `s` or
 * the store) plus its id and props: `index` counts the partition's events
 * of the record across its messages. The ids de-duplication remembers are
 * those of `x` and the origin keys of `o`. Version 1 records held the whole body as received (`raw`),
 * a second copy of every event, and the ids as a list; they are still read.
 *
 * @example
 *   const bytes = encodeIngestRecord(enc, { s: [], b: [[0, msg]], x: [[0, 0, "id-1", null]] });
 *   decodeIngestRecord(dec, bytes).ids // ["id-1"]
 */
import { WeirError } from "../runtime/errors.ts";
import type { Decoder, Encoder } from "@msgpack/msgpack";
import type { SeriesInfo } from "./series-registry.ts";

/** Raw-log format code of an ingest record (the body codes 1–3 are those of ingest-body.ts). */
export const ingestRecordFormat = 16;
/** A record with no events, marking a place in the raw log (cluster mode: where a partition taken over starts); readers skip it. */
export const markRecordFormat = 17;

/** [key, name, tags, partition, local] */
export type SeriesRow = [string, string, Record<string, string>, number, number];

/** [partition, index among the partition's events of the record, id, props] of an event with an id or props. */
export type ExtraRow = [number, number, string | null, Record<string, unknown> | null];

export interface IngestRecord {
  s: SeriesRow[];
  b: Array<[number, Uint8Array]>;
  x: ExtraRow[];
  /** Origin keys (de-duplicated like event ids): a redelivered message is not logged twice. */
  o?: string[];
}

/** A record as read: also the ids it committed for de-duplication, in order. */
export interface ReadIngestRecord extends IngestRecord {
  ids: string[];
}

export function encodeIngestRecord(enc: Encoder, r: IngestRecord): Uint8Array {
  return enc.encode(r.o !== undefined && r.o.length > 0 ? { v: 2, s: r.s, b: r.b, x: r.x, o: r.o } : { v: 2, s: r.s, b: r.b, x: r.x });
}

export class IngestRecordError extends WeirError {
  override name = "IngestRecordError";
  constructor(message: string) {
    super("raw_record", message);
  }
}

export function decodeIngestRecord(dec: Decoder, bytes: Uint8Array): ReadIngestRecord {
  const r = dec.decode(bytes) as Partial<ReadIngestRecord> & { v?: number };
  if (r === null || typeof r !== "object" || !Array.isArray(r.b) || !Array.isArray(r.s)) throw notARecord();
  if (r.v === 2 && Array.isArray(r.x)) {
    const ids: string[] = [];
    for (const row of r.x) if (row[2] !== null) ids.push(row[2]);
    if (Array.isArray(r.o)) ids.push(...r.o);
    return { s: r.s, b: r.b, x: r.x, ...(Array.isArray(r.o) ? { o: r.o } : {}), ids };
  }
  // Version 1 kept the body (`raw`) and the ids as a list; the raw zone reads neither props nor ids from it.
  if (r.v === 1 && Array.isArray(r.ids)) return { s: r.s, b: r.b, x: [], ids: r.ids };
  throw notARecord();
}

function notARecord(): IngestRecordError {
  return new IngestRecordError("raw log: not a version-1 or version-2 ingest record");
}

export function seriesRowOf(s: SeriesInfo): SeriesRow {
  return [s.key, s.name, s.tags, s.partition, s.local];
}

export function seriesInfoOf(row: SeriesRow): SeriesInfo {
  return { key: row[0], name: row[1], tags: row[2], partition: row[3], local: row[4] };
}
