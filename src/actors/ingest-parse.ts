/**
 * The half of ingest that needs nothing shared: a request's events
 * validated and gathered, columnar, by series signature. It runs on an
 * ingest worker thread (src/ingest/) or, with WEIR_INGEST_THREADS=0, on the
 * main thread; the other half (ingest.ts: series ids, de-duplication,
 * routing to partitions) runs where the registry is.
 *
 * A body of 5,000 events over 1,000 series so crosses threads as three
 * typed arrays and 1,000 signatures, and the main thread looks up 1,000
 * signatures instead of 5,000.
 *
 * @example
 *   const p = parseEvents([{ name: "cpu", value: 1, tags: { host: "a" } }], Date.now(), bounds);
 *   p.n === 1 && p.distinct[p.series[0]].sig === "cpu\0host\0a"
 */
import { limits } from "../runtime/limits.ts";
import { newValidEvent, reasonOf, validateEvent, type RejectReason, type TimeBounds } from "./ingest-validate.ts";
import { signatureOf } from "./series-signatures.ts";

/** A series as the body wrote it: its signature (null when a tag value holds a NUL: then only its key names it), name and tags. */
export interface BodySeries { sig: string | null; name: string; tags: Record<string, string> | undefined }

export interface ParseReject { index: number; event: unknown; error: string; reason: RejectReason }

/** A request's valid events, columnar, in body order; and its refused ones. */
export interface ParsedEvents {
  n: number;
  /** The body index of each valid event (for errors listed in body order). */
  index: Uint32Array;
  ts: Float64Array;
  value: Float64Array;
  /** Each valid event's series, an index into `distinct`. */
  series: Uint32Array;
  distinct: BodySeries[];
  /** Each valid event's id, or undefined; null when no event carries one. */
  ids: Array<string | undefined> | null;
  /** Each valid event's props, or undefined; null when no event carries them. */
  props: Array<Record<string, unknown> | undefined> | null;
  rejects: ParseReject[];
}

/** Validates a request's raw events (at most limits.eventsPerRequestMax) as received at `recvMs`. */
export function parseEvents(items: readonly unknown[], recvMs: number, bounds: TimeBounds): ParsedEvents {
  if (items.length > limits.eventsPerRequestMax) throw new Error("caller must refuse requests over eventsPerRequestMax"); // programmer error
  const count = items.length;
  // Allocated per request, sized to it: the arrays cross threads (transferred), so they cannot be pooled.
  const out: ParsedEvents = {
    n: 0, index: new Uint32Array(count), ts: new Float64Array(count), value: new Float64Array(count), series: new Uint32Array(count),
    distinct: [], ids: null, props: null, rejects: [],
  };
  const bySig = new Map<string, number>();
  const ev = newValidEvent();
  for (let i = 0; i < count; i++) {
    const error = validateEvent(items[i], recvMs, bounds, ev);
    if (error !== null) {
      out.rejects.push({ index: i, event: items[i], error, reason: reasonOf(error) });
      continue;
    }
    const sig = signatureOf(ev.name, ev.tags);
    let s = sig === null ? undefined : bySig.get(sig);
    if (s === undefined) {
      s = out.distinct.length;
      out.distinct.push({ sig, name: ev.name, tags: ev.tags });
      if (sig !== null) bySig.set(sig, s);
    }
    const k = out.n++;
    out.index[k] = i;
    out.ts[k] = ev.ts;
    out.value[k] = ev.value;
    out.series[k] = s;
    if (ev.id !== undefined) {
      out.ids ??= new Array<string | undefined>(count);
      out.ids[k] = ev.id;
    }
    if (ev.props !== undefined) {
      out.props ??= new Array<Record<string, unknown> | undefined>(count);
      out.props[k] = ev.props;
    }
  }
  return out;
}
