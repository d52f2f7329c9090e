/**
 * A message's share for one partition (cluster mode, repartition.ts), as
 * it crosses WEIR_PARTS: the validated events, columnar, as the splitter's
 * parseEvents left them (times and values as float64 columns, each event's
 * series as an index into the share's distinct series, ids and props only
 * when some event has them). The owner takes it into its ingest path as
 * parsed events: no second JSON or MessagePack decode of every event, no
 * second validation of every field (measured in BENCHMARKS.md "Cluster
 * mode": the object shares cost the hop 2.1× a plain process's CPU).
 *
 * @example
 *   const parts = splitParsed(parseEvents(items, recvMs, bounds), 8);
 *   for (const [p, share] of parts) for (const bytes of encodeShare(share)) publish(`weir.part.${p}`, bytes);
 *   const parsed = decodeShare(bytes); // BodyError when not a share weir wrote
 */
import { decode, encode } from "@msgpack/msgpack";
import { BodyError } from "../actors/ingest-body.ts";
import type { BodySeries, ParsedEvents } from "../actors/ingest-parse.ts";
import { signatureOf } from "../actors/series-signatures.ts";
import { limits } from "../runtime/limits.ts";
import { partitionOf, seriesKey } from "../runtime/series.ts";

/** The Content-Type a share carries. */
export const shareContentType = "application/x-weir-share";

interface ShareWire {
  v: 1;
  n: number;
  ts: Uint8Array;
  value: Uint8Array;
  series: Uint8Array;
  distinct: Array<[string, Record<string, string> | null]>;
  ids: Array<string | null> | null;
  props: Array<Record<string, unknown> | null> | null;
}

/** A parsed message's valid events by partition (each a ParsedEvents of its own, events in message order). */
export function splitParsed(parsed: ParsedEvents, partitions: number): Map<number, ParsedEvents> {
  const partOf = parsed.distinct.map((s) => partitionOf(seriesKey(s.name, s.tags), partitions));
  const byPart = new Map<number, number[]>();
  for (let k = 0; k < parsed.n; k++) {
    const p = partOf[parsed.series[k]];
    let list = byPart.get(p);
    if (list === undefined) byPart.set(p, (list = []));
    list.push(k);
  }
  const out = new Map<number, ParsedEvents>();
  for (const [p, events] of byPart) out.set(p, pick(parsed, events));
  return out;
}

/** The share's bytes: one piece, or several in order when it would pass limits.natsShareBytesMax. */
export function encodeShare(share: ParsedEvents): Uint8Array[] {
  const n = share.n;
  const wire: ShareWire = {
    v: 1, n,
    ts: bytesOf(share.ts.subarray(0, n)), value: bytesOf(share.value.subarray(0, n)), series: bytesOf(share.series.subarray(0, n)),
    distinct: share.distinct.map((s) => [s.name, s.tags ?? null]),
    ids: share.ids === null ? null : share.ids.slice(0, n).map((x) => x ?? null),
    props: share.props === null ? null : share.props.slice(0, n).map((x) => x ?? null),
  };
  const bytes = encode(wire);
  if (bytes.byteLength <= limits.natsShareBytesMax || n === 1) return [bytes];
  const half = Math.ceil(n / 2);
  const all = Array.from({ length: n }, (_, k) => k);
  return [...encodeShare(pick(share, all.slice(0, half))), ...encodeShare(pick(share, all.slice(half)))];
}

/** A share back as parsed events; BodyError when the bytes are not a share weir wrote. */
export function decodeShare(bytes: Uint8Array): ParsedEvents {
  let w: ShareWire;
  try {
    w = decode(bytes) as ShareWire;
  } catch (e) {
    throw new BodyError(`share: not MessagePack (${(e as Error).message})`);
  }
  if (typeof w !== "object" || w === null || w.v !== 1 || !Number.isInteger(w.n) || w.n < 0 || !Array.isArray(w.distinct)) throw new BodyError("share: not a weir share");
  const n = w.n;
  const ts = new Float64Array(copied(w.ts, n * 8, "ts"));
  const value = new Float64Array(copied(w.value, n * 8, "value"));
  const series = new Uint32Array(copied(w.series, n * 4, "series"));
  const distinct: BodySeries[] = w.distinct.map(([name, tags]) => ({ sig: signatureOf(name, tags ?? undefined), name, tags: tags ?? undefined }));
  for (let k = 0; k < n; k++) {
    if (series[k] >= distinct.length) throw new BodyError("share: a series index out of range");
    if (!Number.isFinite(ts[k]) || !Number.isFinite(value[k])) throw new BodyError("share: a time or value not finite");
  }
  const index = new Uint32Array(n);
  for (let k = 0; k < n; k++) index[k] = k;
  const list = <T>(xs: Array<T | null> | null, what: string) => {
    if (xs === null || xs === undefined) return null;
    if (!Array.isArray(xs) || xs.length !== n) throw new BodyError(`share: ${what} of another length`);
    return xs.map((x) => x ?? undefined);
  };
  return { n, index, ts, value, series, distinct, ids: list(w.ids, "ids"), props: list(w.props, "props"), rejects: [] };
}

/** The events `ks` of `p` (ascending), with their own distinct series. */
function pick(p: ParsedEvents, ks: readonly number[]): ParsedEvents {
  const n = ks.length;
  const out: ParsedEvents = {
    n, index: new Uint32Array(n), ts: new Float64Array(n), value: new Float64Array(n), series: new Uint32Array(n),
    distinct: [], ids: p.ids === null ? null : [], props: p.props === null ? null : [], rejects: [],
  };
  const remap = new Map<number, number>();
  for (let j = 0; j < n; j++) {
    const k = ks[j];
    let s = remap.get(p.series[k]);
    if (s === undefined) {
      s = out.distinct.length;
      remap.set(p.series[k], s);
      out.distinct.push(p.distinct[p.series[k]]);
    }
    out.index[j] = p.index[k];
    out.ts[j] = p.ts[k];
    out.value[j] = p.value[k];
    out.series[j] = s;
    out.ids?.push(p.ids![k]);
    out.props?.push(p.props![k]);
  }
  return out;
}

function bytesOf(a: Float64Array | Uint32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** A column's bytes, copied into a buffer of its own (aligned for its typed array); BodyError when it has the wrong length. */
function copied(b: unknown, bytes: number, what: string): ArrayBuffer {
  if (!(b instanceof Uint8Array) || b.byteLength !== bytes) throw new BodyError(`share: ${what} column of ${b instanceof Uint8Array ? b.byteLength : "no"} bytes, want ${bytes}`);
  const out = new Uint8Array(bytes); // not b.slice(): a view of a Node Buffer (as the NATS client's messages are) slices to a view
  out.set(b);
  return out.buffer;
}
