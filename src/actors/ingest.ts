/**
 * The ingest actor: validates events, names their series, and sorts them
 * into one columnar batch per partition. It decides nothing about delivery:
 * the engine checks ring room for every partition, writes the raw log, and
 * only then pushes, so a request is accepted all-or-nothing.
 *
 * @example
 *   const ing = new Ingest({ partitions: 2, registry, bounds });
 *   const r = ing.accept([{ name: "cpu", value: 1 }], Date.now());
 *   for (const p of ing.partitionsWithEvents()) for (const m of ing.encode(p, enc)) ring[p].tryPush(m);
 */
import type { Encoder } from "@msgpack/msgpack";
import { encodeEventBatch, eventBatchBytesMax, type SeriesMessage, seriesRowBytesMax } from "../runtime/codec.ts";
import { limits } from "../runtime/limits.ts";
import { partitionOf, seriesKey } from "../runtime/series.ts";
import type { RejectReason } from "./ingest-validate.ts";
import type { DedupeSet } from "./dedupe.ts";
import { type BodySeries, type ParseBounds, type ParseReject, type ParsedEvents, parseEvents } from "./ingest-parse.ts";
import { SeriesSignatures } from "./series-signatures.ts";
import type { SeriesBudget } from "./series-budget.ts";
import type { SeriesInfo, SeriesRegistry } from "./series-registry.ts";

export interface IngestError { index: number; error: string }
export interface IngestOutcome {
  /** Events taken, re-sent duplicates included (a retry must succeed). */
  accepted: number;
  /** Of those, re-sent ids within WEIR_DEDUPE_WINDOW: answered as accepted, aggregated nowhere. */
  duplicates: number;
  rejected: number;
  /** The first limits.errorsListedMax errors. */
  errors: IngestError[];
  reasons: Partial<Record<RejectReason, number>>;
  /** Every rejected event with its reason (for the dead-letter list); at most eventsPerRequestMax. */
  rejects: Array<{ event: unknown; error: string }>;
}

/** One partition's events of the current request, columnar. */
class PartitionBuffer {
  n = 0;
  /** Global series ids, for the series listing's latest value at commit. */
  readonly gid = new Uint32Array(limits.eventsPerRequestMax);
  readonly sid = new Uint32Array(limits.eventsPerRequestMax);
  readonly ts = new Float64Array(limits.eventsPerRequestMax);
  readonly value = new Float64Array(limits.eventsPerRequestMax);
  /** [index in this partition's events, id, props] of the events that carry an id or props (most carry neither). */
  extras: Array<[number, string | null, Record<string, unknown> | null]> = [];
}

export class Ingest {
  private readonly buffers: PartitionBuffer[];
  private recvMs = 0;
  /** Ids of the current request, remembered by commit() once the request is durable. */
  private ids: string[] = [];
  /** Series the current request would introduce, registered by commit() in this order. */
  private newSeries: SeriesInfo[] = [];
  private readonly newIds = new Map<string, number>();
  /** Registered series by the signature of how producers write them (series-signatures.ts). */
  readonly signatures: SeriesSignatures;
  private readonly newLocals: number[];

  /**
   * `idScopes` (cluster mode): a prefix per partition for the event ids it
   * remembers, so that a partition taken over again starts from the ids its
   * checkpoint knows, not from those this process took in an earlier turn
   * (Engine.resetPartition). Without it an id is known process-wide.
   */
  /** `newSeries`: the new-series rate limit (series-budget.ts); absent: none. */
  constructor(private readonly opts: {
    partitions: number; registry: SeriesRegistry; bounds: ParseBounds; dedupe: DedupeSet; idScopes?: readonly string[]; newSeries?: SeriesBudget;
  }) {
    this.buffers = Array.from({ length: opts.partitions }, () => new PartitionBuffer());
    this.signatures = new SeriesSignatures(opts.registry.seriesMax);
    this.newLocals = new Array<number>(opts.partitions).fill(0);
  }

  /** Validates and routes one request's events; the previous request's buffers are discarded. */
  accept(items: readonly unknown[], recvMs: number): IngestOutcome {
    return this.acceptParsed(parseEvents(items, recvMs, this.opts.bounds), recvMs);
  }

  /**
   * Routes a request's events validated by parseEvents (on this thread or an
   * ingest worker): finds each distinct series' id, drops re-sent ids, sorts
   * the events into one columnar batch per partition. The previous
   * request's buffers are discarded.
   */
  acceptParsed(parsed: ParsedEvents, recvMs: number): IngestOutcome {
    for (const b of this.buffers) {
      b.n = 0;
      if (b.extras.length > 0) b.extras = [];
    }
    this.recvMs = recvMs;
    this.ids = [];
    this.newSeries = [];
    this.newIds.clear();
    this.newLocals.fill(0);
    const out: IngestOutcome = { accepted: 0, duplicates: 0, rejected: 0, errors: [], reasons: {}, rejects: [] };
    const refused: ParseReject[] = [];
    const seriesIds = this.idsOf(parsed.distinct);
    let idsOfRequest: Set<string> | undefined; // only requests that carry ids pay for it
    const reg = this.opts.registry;
    const scopes = this.opts.idScopes;
    for (let k = 0; k < parsed.n; k++) {
      const id = seriesIds[parsed.series[k]];
      if (id < 0) { // a series never registered: no event of it was taken, so none is a duplicate
        const d = parsed.distinct[parsed.series[k]];
        const event = { name: d.name, ...(d.tags === undefined ? {} : { tags: d.tags }), ts: parsed.ts[k], value: parsed.value[k] };
        refused.push({ index: parsed.index[k], event, ...this.seriesRefusal(id) });
        continue;
      }
      const known = id < reg.size;
      const p = known ? reg.partitionOf(id) : this.newSeries[id - reg.size].partition;
      const eventId = parsed.ids?.[k];
      if (eventId !== undefined) {
        const key = scopes === undefined ? eventId : scopes[p] + eventId;
        idsOfRequest ??= new Set();
        if (idsOfRequest.has(key) || this.opts.dedupe.has(key, recvMs)) {
          out.accepted++;
          out.duplicates++;
          continue;
        }
        idsOfRequest.add(key);
        this.ids.push(key);
      }
      const b = this.buffers[p];
      b.gid[b.n] = id;
      b.sid[b.n] = known ? reg.localOf(id) : this.newSeries[id - reg.size].local;
      b.ts[b.n] = parsed.ts[k];
      b.value[b.n] = parsed.value[k];
      const props = parsed.props?.[k];
      if (props !== undefined || eventId !== undefined) b.extras.push([b.n, eventId ?? null, props ?? null]);
      b.n++;
      out.accepted++;
    }
    listRejects(out, parsed, refused);
    return out;
  }

  /** The id of each of a request's distinct series: by signature, else by key; a new series gets a provisional id, or -1 past WEIR_MAX_SERIES. */
  private idsOf(distinct: readonly BodySeries[]): Int32Array {
    const ids = new Int32Array(distinct.length); // per request, sized to its distinct series
    for (let s = 0; s < distinct.length; s++) {
      const d = distinct[s];
      ids[s] = (d.sig === null ? undefined : this.signatures.idOf(d.sig)) ?? this.idByKey(d.sig, d.name, d.tags);
    }
    return ids;
  }

  /**
   * Makes the current request's side effects real: registers the series it
   * introduced (with the ids its batches already carry), remembers its ids
   * for de-duplication and updates each series' latest value. Called only
   * once the request is durable and pushed: a refused request must not add
   * series, move a listed value, or make its retry look like a duplicate.
   */
  /** Why a series was not registered (proposeSeries' -1 or -2). */
  private seriesRefusal(id: number): { error: string; reason: "series_limit" | "series_rate" } {
    if (id === -1) return { error: `series: limit of ${this.opts.registry.seriesMax} series reached (WEIR_MAX_SERIES)`, reason: "series_limit" };
    const b = this.opts.newSeries!;
    return { error: `series: new series over WEIR_NEW_SERIES_RATE (${b.perSec}/s, bursts of ${b.burst}); send it again later`, reason: "series_rate" };
  }

  commit(): void {
    const reg = this.opts.registry;
    this.opts.newSeries?.take(this.newSeries.length, this.recvMs);
    for (const s of this.newSeries) {
      const id = reg.register(s.key, s.name, s.tags);
      if (reg.partitionOf(id) !== s.partition || reg.localOf(id) !== s.local) throw new Error("series registered out of order"); // programmer error
    }
    for (const id of this.ids) this.opts.dedupe.add(id, this.recvMs);
    for (const b of this.buffers) {
      for (let i = 0; i < b.n; i++) {
        const id = b.gid[i];
        if (!(b.ts[i] < reg.lastTs[id])) {
          reg.lastTs[id] = b.ts[i];
          reg.lastValue[id] = b.value[i];
        }
      }
    }
    this.newSeries = [];
    this.ids = [];
  }

  /** Series the current request introduces (for its raw-log record). */
  get introducedSeries(): readonly SeriesInfo[] {
    return this.newSeries;
  }

  /** The id of a series not found by its signature: by its key, remembered under the signature once registered; or a new one. */
  private idByKey(sig: string | null, name: string, tags: Record<string, string> | undefined): number {
    const key = seriesKey(name, tags);
    const known = this.opts.registry.idOf(key);
    if (known !== undefined) {
      if (sig !== null) this.signatures.remember(sig, known);
      return known;
    }
    return this.newIds.get(key) ?? this.proposeSeries(key, name, tags);
  }

  /** A provisional global id for a series first seen in this request; -1 past WEIR_MAX_SERIES, -2 past WEIR_NEW_SERIES_RATE. */
  private proposeSeries(key: string, name: string, tags: Record<string, string> | undefined): number {
    const reg = this.opts.registry;
    if (reg.size + this.newSeries.length >= reg.seriesMax) return -1;
    const budget = this.opts.newSeries;
    if (budget !== undefined && this.newSeries.length >= budget.available(this.recvMs)) return -2;
    const partition = partitionOf(key, reg.partitions);
    const local = reg.localCount(partition) + this.newLocals[partition]++;
    const id = reg.size + this.newSeries.length;
    this.newSeries.push({ key, name, tags: tags ? { ...tags } : {}, partition, local });
    this.newIds.set(key, id);
    return id;
  }

  /** Upper bounds of the ring messages each partition needs for the current request: its new series, then its events. */
  messageBytes(partition: number): number[] {
    const sizes: number[] = [];
    for (const chunk of this.seriesChunks(partition)) sizes.push(chunk.bytes);
    for (let left = this.buffers[partition].n; left > 0; left -= limits.batchEventsMax) {
      sizes.push(eventBatchBytesMax(Math.min(left, limits.batchEventsMax)));
    }
    return sizes;
  }

  /** The current request's new series of a partition, in pieces of at most limits.seriesMessageBytesMax encoded. */
  private seriesChunks(partition: number): Array<{ rows: SeriesInfo[]; bytes: number }> {
    const chunks: Array<{ rows: SeriesInfo[]; bytes: number }> = [];
    let cur: { rows: SeriesInfo[]; bytes: number } | null = null;
    for (const s of this.newSeries) {
      if (s.partition !== partition) continue;
      const bytes = seriesRowBytesMax(s.name, s.tags);
      if (cur === null || cur.bytes + bytes > limits.seriesMessageBytesMax) chunks.push(cur = { rows: [], bytes: 64 });
      cur.rows.push(s);
      cur.bytes += bytes;
    }
    return chunks;
  }

  /** The current request's ids and props for a partition: [index among its events, id, props], for its raw-log record. */
  extrasFor(partition: number): ReadonlyArray<[number, string | null, Record<string, unknown> | null]> {
    return this.buffers[partition].extras;
  }

  eventsFor(partition: number): number {
    return this.buffers[partition].n;
  }

  /**
   * The series the current request introduces to a partition, as ring
   * messages for its worker (pushed before the events; not in the raw-log
   * record, whose `s` rows hold them), encoded like encode().
   */
  *encodeSeries(partition: number, enc: Encoder, pos: number): Generator<Uint8Array> {
    for (const chunk of this.seriesChunks(partition)) {
      const msg: SeriesMessage = { k: "sr", pos, rows: chunk.rows.map((s) => [s.local, s.name, s.tags]) };
      yield enc.encodeSharedRef(msg);
    }
  }

  /** The earliest event time of the current request's events for a partition (+Infinity: none). */
  minTsOf(partition: number): number {
    const b = this.buffers[partition];
    let min = Infinity;
    for (let i = 0; i < b.n; i++) if (b.ts[i] < min) min = b.ts[i];
    return min;
  }

  /**
   * The current request's messages for a partition, encoded one at a time
   * into the encoder's shared buffer: push each before taking the next.
   */
  *encode(partition: number, enc: Encoder, pos: number, capMs = Infinity): Generator<Uint8Array> {
    const b = this.buffers[partition];
    for (let off = 0; off < b.n; off += limits.batchEventsMax) {
      const n = Math.min(limits.batchEventsMax, b.n - off);
      const last = off + n === b.n;
      yield encodeEventBatch(enc, n, b.sid.subarray(off, off + n), b.ts.subarray(off, off + n), b.value.subarray(off, off + n), this.recvMs, pos, last, capMs);
    }
  }
}

/**
 * The request's refused events in body order: those parseEvents refused and
 * those over the series limit (the latter as validated: name, tags, ts, value).
 */
function listRejects(out: IngestOutcome, parsed: ParsedEvents, refused: ParseReject[]): void {
  const all = refused.length === 0 ? parsed.rejects : [...parsed.rejects, ...refused].sort((a, b) => a.index - b.index);
  for (const r of all) {
    out.rejected++;
    out.reasons[r.reason] = (out.reasons[r.reason] ?? 0) + 1;
    if (out.errors.length < limits.errorsListedMax) out.errors.push({ index: r.index, error: r.error });
    out.rejects.push({ event: r.event, error: r.error });
  }
}
