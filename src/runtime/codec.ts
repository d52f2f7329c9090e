/**
 * The one message envelope on rings and NATS subjects, MessagePack-encoded.
 * Data travels as columnar batches (typed arrays as bin fields) so a batch
 * of thousands of events is one encode and one decode, not one per event.
 *
 *   { k: "ev",  n, recv, pos, last, sid: bin(u32[n]), ts: bin(f64[n]), v: bin(f64[n]) }   events for a partition
 *   { k: "sr",  pos, rows: [[local, name, tags], …] }   series a request introduces to the partition, before its events
 *   { k: "tv",  name, version }   a reference table's new version takes effect here (its rows come as a control message)
 *   { k: "out", e, w, late, a, t, r }   a partition's results: window, late, anomaly and trend rows (partition-pipeline.ts)
 *   { k: "ck",  e, pos, i, n, total, bytes }   chunk i of n of its checkpoint (total bytes), after the results it covers
 *   { k: "sig", sig: "stop" | "checkpoint" | "tick", at: ms }                    signals
 *
 * @example
 *   const bytes = encodeEventBatch(enc, n, sid, ts, v, Date.now());
 *   const msg = decodeMessage(bytes); // { k: "ev", ... }
 */
import { Decoder, Encoder } from "@msgpack/msgpack";

/** A columnar batch of one partition's events, as the actors take it (BatchColumns.view). */
export interface EventBatch {
  n: number;
  /** Partition-local dense series id (0, 1, 2, … assigned by ingest). */
  sid: Uint32Array;
  ts: Float64Array;
  value: Float64Array;
  /** Wall ms when ingest accepted this batch. */
  recvMs: number;
}

/** pos: the raw-log position of the request's record; last: the record's final batch for this partition. */
/** `cap`: the workers' clock was held there when the request was logged (IngestClock.holdFloor; absent: not held): the watermark waits for it, live and in a replay alike. */
export interface EventBatchMessage { k: "ev"; n: number; recv: number; pos: number; last: boolean; sid: Uint8Array; ts: Uint8Array; v: Uint8Array; cap?: number }
/** Series first seen in the request of raw-log record `pos`, by partition-local id (the worker's names and tags for rules). */
export interface SeriesMessage { k: "sr"; pos: number; rows: Array<[number, string, Record<string, string>]> }
/** e: the worker incarnation (epoch) that produced the message; the rows are the partition's (PartitionOutput), opaque here. */
export type OutputMessage<Rows extends object = Record<string, unknown>> = Rows & { k: "out"; e: number };
/** Chunk i of n of a checkpoint of `total` bytes: a PipelineSnapshot (MessagePack) covering the raw log up to record `pos`. */
export interface CheckpointMessage { k: "ck"; e: number; pos: number; i: number; n: number; total: number; bytes: Uint8Array }
export interface SignalMessage { k: "sig"; sig: "stop" | "checkpoint"; at: number }
/** Where a reference table's new version takes effect among the partition's events (partition-loop.ts setTable). */
export interface TableMarkerMessage { k: "tv"; name: string; version: number }
export type Message = EventBatchMessage | SeriesMessage | TableMarkerMessage | OutputMessage | SignalMessage;

/** Bytes one series row of a SeriesMessage needs at most once encoded (3 bytes per UTF-16 unit, plus headers). */
export function seriesRowBytesMax(name: string, tags: Record<string, string>): number {
  let n = 16 + 3 * name.length;
  for (const k in tags) n += 10 + 3 * (k.length + tags[k].length);
  return n;
}

/** Bytes an event batch of n events needs at most once encoded (checked before pushing all-or-nothing). */
export function eventBatchBytesMax(n: number): number {
  return n * 20 + 128; // columns, plus the envelope with pos and last
}

/** Encodes into the encoder's shared buffer: push the returned view before the next encode. */
export function encodeEventBatch(
  enc: Encoder, n: number, sid: Uint32Array, ts: Float64Array, v: Float64Array, recvMs: number, pos = -1, last = true, capMs = Infinity,
): Uint8Array {
  const m: EventBatchMessage = {
    k: "ev",
    n,
    recv: recvMs,
    pos,
    last,
    sid: new Uint8Array(sid.buffer, sid.byteOffset, n * 4),
    ts: new Uint8Array(ts.buffer, ts.byteOffset, n * 8),
    v: new Uint8Array(v.buffer, v.byteOffset, n * 8),
  };
  if (capMs !== Infinity) m.cap = capMs;
  return enc.encodeSharedRef(m);
}

export function decodeMessage(dec: Decoder, bytes: Uint8Array): Message {
  return dec.decode(bytes) as Message;
}

/**
 * Typed-array views of a decoded batch's columns. MessagePack places bins at
 * arbitrary offsets, so a column that is not aligned is copied into the
 * caller's scratch arrays (allocated once per worker).
 */
export class BatchColumns {
  private readonly sidScratch: Uint32Array;
  private readonly tsScratch: Float64Array;
  private readonly vScratch: Float64Array;
  constructor(eventsMax: number) {
    this.sidScratch = new Uint32Array(eventsMax);
    this.tsScratch = new Float64Array(eventsMax);
    this.vScratch = new Float64Array(eventsMax);
  }
  view(m: EventBatchMessage): EventBatch {
    return {
      n: m.n,
      recvMs: m.recv,
      sid: column(m.sid, m.n, 4, this.sidScratch, Uint32Array),
      ts: column(m.ts, m.n, 8, this.tsScratch, Float64Array),
      value: column(m.v, m.n, 8, this.vScratch, Float64Array),
    };
  }
}

type Typed = Uint32Array | Float64Array;
function column<T extends Typed>(bin: Uint8Array, n: number, width: number, scratch: T, Ctor: { new (b: ArrayBufferLike, o: number, l: number): T }): T {
  if (bin.byteLength !== n * width) throw new Error(`column of ${bin.byteLength} bytes for ${n} events`);
  if (bin.byteOffset % width === 0) return new Ctor(bin.buffer, bin.byteOffset, n);
  new Uint8Array(scratch.buffer, 0, n * width).set(bin);
  return scratch.subarray(0, n) as T;
}
