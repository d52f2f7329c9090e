/**
 * The raw zone's rows of one raw-log record, as NDJSON lines for the
 * lake's staging file: each event of its routed batches with its series'
 * name and tags (from the record's new series, or the store's `series`
 * table for older ones) and its id and props. A series' part of the line
 * is serialised once and reused for each of its events: per event only
 * the time, the value, and props and id when present are written, and
 * no row object is built.
 *
 * @example
 *   const rows = new RawEvents(lookup);
 *   for (const rec of readRawLog(dir, from, to)) rows.lines(rec.payload, (line) => stage.addLine(line));
 */
import { Decoder } from "@msgpack/msgpack";
import { decodeIngestRecord } from "../actors/ingest-record.ts";
import type { EventBatchMessage } from "../runtime/codec.ts";

export interface SeriesRef { key: string; name: string; tags: Record<string, string> }

/** A series with its part of a row's JSON: `"name":…,"series":…,"tags":{…}`. */
interface KnownSeries extends SeriesRef { json: string }

/** The series a partition-local id names, when the record itself does not say (the store's `series` table). */
export type SeriesLookup = (partition: number, local: number) => SeriesRef | undefined;

export class RawEvents {
  private readonly dec = new Decoder();
  private readonly batchDec = new Decoder();
  // Series met in records, so the store is asked once per series at most.
  private readonly known = new Map<number, KnownSeries>();

  constructor(private readonly lookup: SeriesLookup) {}

  /** Each event of one ingest record (format ingestRecordFormat) as a JSON line (eventColumns' names), in the order the partitions got them; returns how many. */
  lines(payload: Uint8Array, emit: (line: string) => void): number {
    const r = decodeIngestRecord(this.dec, payload);
    for (const [key, name, tags, p, local] of r.s) this.known.set(pairKey(p, local), known({ key, name, tags }));
    // Ids and props by (partition, index): most events have neither, so most lookups miss at once.
    const extras = new Map<number, [string | null, Record<string, unknown> | null]>();
    for (const [p, index, id, props] of r.x) extras.set(pairKey(p, index), [id, props]);
    let n = 0;
    const seen = new Map<number, number>(); // events of each partition so far in this record
    for (const [p, bin] of r.b) {
      const m = this.batchDec.decode(bin) as EventBatchMessage;
      const sid = copyOf(m.sid, Uint32Array, m.n);
      const ts = copyOf(m.ts, Float64Array, m.n);
      const v = copyOf(m.v, Float64Array, m.n);
      let index = seen.get(p) ?? 0;
      for (let i = 0; i < m.n; i++, index++) {
        const s = this.seriesOf(p, sid[i]);
        const extra = extras.size === 0 ? undefined : extras.get(pairKey(p, index));
        const props = extra?.[1] ?? null;
        const id = extra?.[0] ?? null;
        emit(`{"ts":${ts[i]},"value":${Number.isFinite(v[i]) ? v[i] : "null"},${s.json},"props":${props === null ? "null" : JSON.stringify(props)},"id":${id === null ? "null" : JSON.stringify(id)}}`);
        n++;
      }
      seen.set(p, index);
    }
    return n;
  }

  private seriesOf(partition: number, local: number): KnownSeries {
    const k = pairKey(partition, local);
    let s = this.known.get(k);
    if (s === undefined) {
      // A series the store does not know yet was named by a record this reader has not seen: kept, not lost.
      s = known(this.lookup(partition, local) ?? { key: `unknown:${partition}:${local}`, name: "unknown", tags: {} });
      this.known.set(k, s);
    }
    return s;
  }
}

/** One number for a (partition, 32-bit index) pair: a Map key without building a string per event. */
function pairKey(partition: number, index: number): number {
  return partition * 2 ** 32 + index;
}

function known(s: SeriesRef): KnownSeries {
  return { ...s, json: `"name":${JSON.stringify(s.name)},"series":${JSON.stringify(s.key)},"tags":${JSON.stringify(s.tags)}` };
}

/** A column of a batch as its typed array (MessagePack bins are not aligned: copied). */
function copyOf<T extends Uint32Array | Float64Array>(bin: Uint8Array, Ctor: { new (n: number): T; BYTES_PER_ELEMENT: number }, n: number): T {
  const out = new Ctor(n);
  new Uint8Array(out.buffer).set(bin.subarray(0, n * Ctor.BYTES_PER_ELEMENT));
  return out;
}
