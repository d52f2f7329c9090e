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
import { type PiiSettings, scrubberOf } from "./pii.ts";
import { signatureOf } from "./series-signatures.ts";

/** A series as the body wrote it: its signature (null when a tag value holds a NUL: then only its key names it), name and tags. */
export interface BodySeries { sig: string | null; name: string; tags: Record<string, string> | undefined }

/**
 * What validation needs besides the event: its time bounds, and the
 * sensitive-value settings (config `pii:`), absent when none are set. The
 * engine passes its Config, which is both.
 */
export interface ParseBounds extends TimeBounds { pii?: PiiSettings }

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

/**
 * Validates a request's raw events (at most limits.eventsPerRequestMax) as
 * received at `recvMs`. With `bounds.pii`, sensitive tag and prop values of
 * the valid events are replaced here (pii.ts), before the series signature
 * is taken: this is the one place every input path (HTTP bodies, line
 * protocol, WebSocket, NATS, the simulators) passes, so nothing after it
 * (raw log, rings, store, live, NATS) ever holds the value. A tag value
 * replaced so names another series: the series is keyed on the token.
 * Event names are not scrubbed: they are the schema (`shop.purchase`),
 * limited by their pattern to letters, digits and `_.:-`, and a metric
 * name holding a person's data is a producer's bug weir should show, not
 * hide under a token no rule or view could name.
 */
export function parseEvents(items: readonly unknown[], recvMs: number, bounds: ParseBounds): ParsedEvents {
  if (items.length > limits.eventsPerRequestMax) throw new Error("caller must refuse requests over eventsPerRequestMax"); // programmer error
  const count = items.length;
  // Allocated per request, sized to it: the arrays cross threads (transferred), so they cannot be pooled.
  const out: ParsedEvents = {
    n: 0, index: new Uint32Array(count), ts: new Float64Array(count), value: new Float64Array(count), series: new Uint32Array(count),
    distinct: [], ids: null, props: null, rejects: [],
  };
  const bySig = new Map<string, number>();
  const ev = newValidEvent();
  const pii = scrubberOf(bounds.pii); // null when pii is not configured: then one null check per event is all it costs
  for (let i = 0; i < count; i++) {
    const error = validateEvent(items[i], recvMs, bounds, ev);
    if (error !== null) {
      out.rejects.push({ index: i, event: items[i], error, reason: reasonOf(error) });
      continue;
    }
    if (pii !== null) {
      if (ev.tags !== undefined) ev.tags = pii.tags(ev.tags);
      if (ev.props !== undefined) ev.props = pii.props(ev.props);
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
