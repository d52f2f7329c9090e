/**
 * The raw zone's rows of one raw-log record: each event of its routed
 * batches with its series' name and tags (from the record's new series, or
 * the store's `series` table for older ones) and its id and props.
 *
 * @example
 *   const rows = new RawEvents(lookup);
 *   for (const rec of readRawLog(dir, from, to)) for (const e of rows.of(rec.payload)) write(e);
 */
import { Decoder } from "@msgpack/msgpack";
import { decodeIngestRecord } from "../actors/ingest-record.ts";
import type { EventBatchMessage } from "../runtime/codec.ts";

export interface RawEvent { ts: number; name: string; series: string; value: number; tags: Record<string, string>; props: Record<string, unknown> | null; id: string | null }

export interface SeriesRef { key: string; name: string; tags: Record<string, string> }

/** The series a partition-local id names, when the record itself does not say (the store's `series` table). */
export type SeriesLookup = (partition: number, local: number) => SeriesRef | undefined;

export class RawEvents {
  private readonly dec = new Decoder();
  private readonly batchDec = new Decoder();
  // Series met in records, so the store is asked once per series at most.
  private readonly known = new Map<string, SeriesRef>();

  constructor(private readonly lookup: SeriesLookup) {}

  /** The events of one ingest record (format ingestRecordFormat), in the order the partitions got them. */
  of(payload: Uint8Array): RawEvent[] {
    const r = decodeIngestRecord(this.dec, payload);
    for (const [key, name, tags, p, local] of r.s) this.known.set(`${p}:${local}`, { key, name, tags });
    const extras = new Map<string, [string | null, Record<string, unknown> | null]>();
    for (const [p, index, id, props] of r.x) extras.set(`${p}:${index}`, [id, props]);
    const out: RawEvent[] = [];
    const seen = new Map<number, number>(); // events of each partition so far in this record
    for (const [p, bin] of r.b) {
      const m = this.batchDec.decode(bin) as EventBatchMessage;
      const sid = copyOf(m.sid, Uint32Array, m.n);
      const ts = copyOf(m.ts, Float64Array, m.n);
      const v = copyOf(m.v, Float64Array, m.n);
      let index = seen.get(p) ?? 0;
      for (let i = 0; i < m.n; i++, index++) {
        const s = this.seriesOf(p, sid[i]);
        const extra = extras.get(`${p}:${index}`);
        out.push({ ts: ts[i], name: s.name, series: s.key, value: v[i], tags: s.tags, props: extra?.[1] ?? null, id: extra?.[0] ?? null });
      }
      seen.set(p, index);
    }
    return out;
  }

  private seriesOf(partition: number, local: number): SeriesRef {
    const k = `${partition}:${local}`;
    let s = this.known.get(k);
    if (s === undefined) {
      // A series the store does not know yet was named by a record this reader has not seen: kept, not lost.
      s = this.lookup(partition, local) ?? { key: `unknown:${k}`, name: "unknown", tags: {} };
      this.known.set(k, s);
    }
    return s;
  }
}

/** A column of a batch as its typed array (MessagePack bins are not aligned: copied). */
function copyOf<T extends Uint32Array | Float64Array>(bin: Uint8Array, Ctor: { new (n: number): T; BYTES_PER_ELEMENT: number }, n: number): T {
  const out = new Ctor(n);
  new Uint8Array(out.buffer).set(bin.subarray(0, n * Ctor.BYTES_PER_ELEMENT));
  return out;
}
