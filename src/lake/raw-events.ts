/**
 * The raw zone's rows of one raw-log record, handed to a sink one event at
 * a time as numbers: the event time, the value, and a dense index of its
 * series, plus props (as JSON text) and id for the few events that carry
 * them. A series' name and tags go to the sink once, when its index is
 * given out, not with every event (event-table.ts keeps them in a DuckDB
 * table and joins them in when it writes Parquet). No row object or text
 * is built per event: the NDJSON lines this replaced cost the tail stage
 * more CPU than anything else in it (BENCHMARKS.md "Lake").
 *
 * @example
 *   const events = new RawEvents(lookup);
 *   for (const rec of readRawLog(dir, from, to)) events.decode(rec.payload, sink);
 */
import { Decoder } from "@msgpack/msgpack";
import { decodeIngestRecord } from "../actors/ingest-record.ts";
import type { EventBatchMessage } from "../runtime/codec.ts";

export interface SeriesRef { key: string; name: string; tags: Record<string, string> }

/** The series a partition-local id names, when the record itself does not say (the store's `series` table). */
export type SeriesLookup = (partition: number, local: number) => SeriesRef | undefined;

/** Where decoded events go. `series` comes before the first event that names its index. */
export interface EventSink {
  series(index: number, s: SeriesRef): void;
  /** `value` as logged (NaN and ±Infinity included); `props` as JSON text. */
  event(ts: number, value: number, series: number, props: string | null, id: string | null): void;
}

export class RawEvents {
  private readonly dec = new Decoder();
  private readonly batchDec = new Decoder();
  // (partition, local id) → dense index and key, so the store is asked once per series at most.
  private readonly known = new Map<number, { index: number; key: string }>();
  private nextIndex = 0;

  constructor(private readonly lookup: SeriesLookup) {}

  /**
   * Each event of one ingest record (format ingestRecordFormat) to `sink`, in
   * the order the partitions got them; returns how many.
   */
  decode(payload: Uint8Array, sink: EventSink): number {
    const r = decodeIngestRecord(this.dec, payload);
    for (const [key, name, tags, p, local] of r.s) this.name(sink, p, local, { key, name, tags });
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
      let lastSid = -1;
      let s = -1;
      for (let i = 0; i < m.n; i++, index++) {
        if (sid[i] !== lastSid) { // a batch's events often name one series in a row
          lastSid = sid[i];
          s = this.indexOf(sink, p, lastSid);
        }
        const extra = extras.size === 0 ? undefined : extras.get(pairKey(p, index));
        if (extra === undefined) sink.event(ts[i], v[i], s, null, null);
        else sink.event(ts[i], v[i], s, extra[1] === null ? null : JSON.stringify(extra[1]), extra[0]);
        n++;
      }
      seen.set(p, index);
    }
    return n;
  }

  /** Forgets every series index given out: the sink lost them (event-table.ts after a failed write). */
  forget(): void {
    this.known.clear();
    this.nextIndex = 0;
  }

  private indexOf(sink: EventSink, partition: number, local: number): number {
    const k = this.known.get(pairKey(partition, local));
    if (k !== undefined) return k.index;
    // A series the store does not know yet was named by a record this reader has not seen: kept, not lost.
    return this.name(sink, partition, local, this.lookup(partition, local) ?? { key: `unknown:${partition}:${local}`, name: "unknown", tags: {} });
  }

  /** The index of (partition, local) as `s`: a new one when the pair is new or named another series before. */
  private name(sink: EventSink, partition: number, local: number, s: SeriesRef): number {
    const pk = pairKey(partition, local);
    const k = this.known.get(pk);
    if (k !== undefined && k.key === s.key) return k.index;
    const index = this.nextIndex++;
    this.known.set(pk, { index, key: s.key });
    sink.series(index, s);
    return index;
  }
}

/** One number for a (partition, 32-bit index) pair: a Map key without building a string per event. */
function pairKey(partition: number, index: number): number {
  return partition * 2 ** 32 + index;
}

/** A column of a batch as its typed array (MessagePack bins are not aligned: copied). */
function copyOf<T extends Uint32Array | Float64Array>(bin: Uint8Array, Ctor: { new (n: number): T; BYTES_PER_ELEMENT: number }, n: number): T {
  const out = new Ctor(n);
  new Uint8Array(out.buffer).set(bin.subarray(0, n * Ctor.BYTES_PER_ELEMENT));
  return out;
}
