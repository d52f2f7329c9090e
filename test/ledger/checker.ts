/**
 * The checker of a durability run: recomputes every window from the ledger's
 * acknowledged events, reads the engine's windows from the API and compares,
 * Jepsen-style: acknowledged, lost, duplicated, windows equal / total,
 * missing, unexpected, and the first mismatches in detail.
 *
 * The recount is written from the contract (API.md "Windows and analytics"),
 * sharing no code with the engine: a window [start, end) of a spec of size Z
 * sliding by L holds the events with start ≤ ts < end, ends are multiples of
 * L, so an event lies in the windows whose end is a multiple of L in
 * (ts, ts + Z]. first / last are the values of the smallest / largest ts,
 * ties broken by arrival (ledger order). Values are integers, so sums are
 * exact and every compared field must be equal, not close.
 *
 * @example
 *   const expected = recount(ledger.acked, parseSpecs("10s,60s/10s"));
 *   const report = compare(expected, await fetchWindows(url, seriesKeys, specs), specs);
 *   console.log(formatReport(report));
 */
import { strict as assert } from "node:assert";
import { limits } from "../../src/runtime/limits.ts";
import type { LedgerEvent } from "./ledger.ts";

export interface SpecDef { label: string; sizeMs: number; slideMs: number }

/** The fields compared, one window of one series and spec. Percentiles are not compared (approximate past 100 events). */
export interface WindowAgg {
  series: string;
  window: string;
  start: number;
  end: number;
  count: number;
  sum: number;
  min: number;
  max: number;
  avg: number;
  first: number;
  last: number;
}

export type MismatchKind = "missing" | "unexpected" | "differs";
export interface Mismatch {
  kind: MismatchKind;
  series: string;
  window: string;
  start: number;
  /** The fields that differ (for "differs"). */
  fields: string[];
  expected: WindowAgg | null;
  actual: WindowAgg | null;
}

export interface SpecReport {
  window: string;
  windowsTotal: number;
  windowsEqual: number;
  windowsMissing: number;
  windowsUnexpected: number;
  windowsDiffering: number;
  lost: number;
  duplicated: number;
}

export interface CheckReport {
  acknowledged: number;
  /** Events sent in an unanswered attempt whose request never got a 202: may be present or not. */
  inDoubtUnacked: number;
  /** Events, from the first tumbling spec (each event is in exactly one of its windows): Σ shortfall of count. */
  lost: number;
  /** Likewise: Σ excess of count, unexpected windows included. */
  duplicated: number;
  windowsTotal: number;
  windowsEqual: number;
  windowsMissing: number;
  windowsUnexpected: number;
  windowsDiffering: number;
  /** Windows holding an in-doubt unacknowledged event: not compared. */
  windowsAmbiguous: number;
  bySpec: SpecReport[];
  /** weir_events_late_total summed over the runs scraped, or null if not known. */
  lateEvents: number | null;
  mismatches: Mismatch[];
  ok: boolean;
}

export interface CompareOptions {
  /** Events sent in attempts that got no answer and were never acknowledged. */
  inDoubtUnacked?: readonly LedgerEvent[];
  /** Only windows with end ≤ this are compared (the closed ones). */
  endMax?: number;
  lateEvents?: number | null;
  acknowledged?: number;
  mismatchesMax?: number;
}

const fields = ["end", "count", "sum", "min", "max", "avg", "first", "last"] as const;
const mismatchesMaxDefault = 10;

/** "10s,60s/10s" → specs. Units ms, s, m, h. @example parseSpecs("60s/10s") // [{label: "60s/10s", sizeMs: 60000, slideMs: 10000}] */
export function parseSpecs(text: string): SpecDef[] {
  return text.split(",").map((part) => {
    const label = part.trim();
    const [size, slide] = label.split("/");
    const sizeMs = durationMs(size);
    const slideMs = slide === undefined ? sizeMs : durationMs(slide);
    assert(slideMs > 0 && sizeMs % slideMs === 0, `window spec ${label}: size a multiple of the slide`);
    return { label, sizeMs, slideMs };
  });
}

function durationMs(text: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(text.trim());
  assert(m !== null, `duration "${text}"`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
  return Number(m[1]) * unit;
}

export function windowKey(series: string, window: string, start: number): string {
  return `${series}\u0000${window}\u0000${start}`;
}

/** The windows of every spec and series, from events in arrival order. */
export function recount(events: readonly LedgerEvent[], specs: readonly SpecDef[]): Map<string, WindowAgg> {
  const out = new Map<string, WindowAgg>();
  const tsFirst = new Map<string, number>();
  const tsLast = new Map<string, number>();
  for (const e of events) {
    for (const s of specs) {
      for (let end = Math.floor(e.ts / s.slideMs) * s.slideMs + s.slideMs; end - s.sizeMs <= e.ts; end += s.slideMs) {
        const start = end - s.sizeMs;
        const k = windowKey(e.series, s.label, start);
        const w = out.get(k);
        if (w === undefined) {
          out.set(k, { series: e.series, window: s.label, start, end, count: 1, sum: e.value, min: e.value, max: e.value, avg: 0, first: e.value, last: e.value });
          tsFirst.set(k, e.ts);
          tsLast.set(k, e.ts);
          continue;
        }
        w.count++;
        w.sum += e.value;
        if (e.value < w.min) w.min = e.value;
        if (e.value > w.max) w.max = e.value;
        if (e.ts < tsFirst.get(k)!) { tsFirst.set(k, e.ts); w.first = e.value; } // equal ts: the earlier arrival stays
        if (e.ts >= tsLast.get(k)!) { tsLast.set(k, e.ts); w.last = e.value; } // equal ts: the later arrival wins
      }
    }
  }
  for (const w of out.values()) w.avg = w.sum / w.count;
  return out;
}

/** Compares the recount with the API's windows (any order). */
export function compare(expected: Map<string, WindowAgg>, actualRows: readonly WindowAgg[], specs: readonly SpecDef[], o: CompareOptions = {}): CheckReport {
  const endMax = o.endMax ?? Infinity;
  const ambiguous = ambiguousKeys(o.inDoubtUnacked ?? [], specs);
  const actual = new Map<string, WindowAgg>();
  for (const r of actualRows) if (r.end <= endMax) actual.set(windowKey(r.series, r.window, r.start), r);
  const bySpec = new Map(specs.map((s) => [s.label, emptySpec(s.label)]));
  const mismatches: Mismatch[] = [];
  const note = (m: Mismatch) => { if (mismatches.length < (o.mismatchesMax ?? mismatchesMaxDefault)) mismatches.push(m); };
  for (const [k, e] of expected) {
    if (e.end > endMax || ambiguous.has(k)) continue;
    const sr = specOf(bySpec, e.window);
    sr.windowsTotal++;
    const a = actual.get(k);
    if (a === undefined) {
      sr.windowsMissing++;
      sr.lost += e.count;
      note({ kind: "missing", series: e.series, window: e.window, start: e.start, fields: [], expected: e, actual: null });
      continue;
    }
    const diff = fields.filter((f) => a[f] !== e[f]);
    if (a.count < e.count) sr.lost += e.count - a.count;
    if (a.count > e.count) sr.duplicated += a.count - e.count;
    if (diff.length === 0) sr.windowsEqual++;
    else {
      sr.windowsDiffering++;
      note({ kind: "differs", series: e.series, window: e.window, start: e.start, fields: diff, expected: e, actual: a });
    }
  }
  for (const [k, a] of actual) {
    if (expected.has(k) || ambiguous.has(k)) continue;
    const sr = specOf(bySpec, a.window);
    sr.windowsTotal++;
    sr.windowsUnexpected++;
    sr.duplicated += a.count;
    note({ kind: "unexpected", series: a.series, window: a.window, start: a.start, fields: [], expected: null, actual: a });
  }
  return summarize([...bySpec.values()], specs, mismatches, ambiguous.size, o);
}

function summarize(bySpec: SpecReport[], specs: readonly SpecDef[], mismatches: Mismatch[], ambiguous: number, o: CompareOptions): CheckReport {
  const sum = (f: keyof Omit<SpecReport, "window">) => bySpec.reduce((n, s) => n + s[f], 0);
  const base = specs.find((s) => s.slideMs === s.sizeMs) ?? specs[0];
  const head = bySpec.find((s) => s.window === base.label)!;
  const r: CheckReport = {
    acknowledged: o.acknowledged ?? 0, inDoubtUnacked: o.inDoubtUnacked?.length ?? 0,
    lost: head.lost, duplicated: head.duplicated,
    windowsTotal: sum("windowsTotal"), windowsEqual: sum("windowsEqual"), windowsMissing: sum("windowsMissing"),
    windowsUnexpected: sum("windowsUnexpected"), windowsDiffering: sum("windowsDiffering"), windowsAmbiguous: ambiguous,
    bySpec, lateEvents: o.lateEvents ?? null, mismatches, ok: false,
  };
  r.ok = r.lost === 0 && r.duplicated === 0 && r.windowsEqual === r.windowsTotal && (r.lateEvents ?? 0) === 0;
  return r;
}

function ambiguousKeys(events: readonly LedgerEvent[], specs: readonly SpecDef[]): Set<string> {
  return new Set(recount(events, specs).keys());
}

function emptySpec(window: string): SpecReport {
  return { window, windowsTotal: 0, windowsEqual: 0, windowsMissing: 0, windowsUnexpected: 0, windowsDiffering: 0, lost: 0, duplicated: 0 };
}

function specOf(bySpec: Map<string, SpecReport>, window: string): SpecReport {
  const s = bySpec.get(window);
  assert(s !== undefined, `window spec ${window} not among the specs checked`);
  return s;
}

/** Pages of GET /api/v1/windows allowed per series and spec: bounds a run away answer. */
const pagesMax = 1_000;

/** Every stored window of the given series and specs, read page by page (the route answers the newest `limit` of a range). */
export async function fetchWindows(url: string, series: readonly string[], specs: readonly SpecDef[]): Promise<WindowAgg[]> {
  const out: WindowAgg[] = [];
  for (const key of series) {
    for (const s of specs) {
      let to = Number.MAX_SAFE_INTEGER;
      for (let page = 0; ; page++) {
        assert(page < pagesMax, `over ${pagesMax} pages of windows for ${key} ${s.label}`);
        const q = new URLSearchParams({ series: key, window: s.label, from: "0", to: String(to), limit: String(limits.queryRowsMax) });
        const res = await fetch(`${url}/api/v1/windows?${q}`, { signal: AbortSignal.timeout(10_000) });
        const text = await res.text();
        if (res.status !== 200) throw new Error(`GET /api/v1/windows?${q} answered ${res.status}: ${text.slice(0, 300)}`);
        const rows = (JSON.parse(text) as { windows: Array<Omit<WindowAgg, "series" | "window">> }).windows;
        for (const r of rows) out.push({ series: key, window: s.label, ...pick(r) });
        if (rows.length < limits.queryRowsMax) break;
        to = rows[0].start; // oldest first: the next page ends before it
      }
    }
  }
  return out;
}

function pick(r: Omit<WindowAgg, "series" | "window">): Omit<WindowAgg, "series" | "window"> {
  return { start: r.start, end: r.end, count: r.count, sum: r.sum, min: r.min, max: r.max, avg: r.avg, first: r.first, last: r.last };
}

export interface AwaitOptions {
  url: () => Promise<string>;
  series: readonly string[];
  specs: readonly SpecDef[];
  expected: Map<string, WindowAgg>;
  /** Give up waiting then (epoch ms) and compare what is there. */
  deadlineMs: number;
  pollMs?: number;
}

/**
 * Polls the API until every expected window is present and the tumbling
 * spec's count total did not change between two reads, or the deadline
 * passes: windows close lateness after traffic stops (the quiet rule), the
 * sliding ones up to their size later. Resolves the last read.
 */
export async function awaitWindows(o: AwaitOptions): Promise<{ rows: WindowAgg[]; complete: boolean; waitedMs: number }> {
  const t0 = Date.now();
  const base = o.specs.find((s) => s.slideMs === s.sizeMs) ?? o.specs[0];
  let previous = -1;
  for (;;) {
    let rows: WindowAgg[] | null = null;
    const url = await o.url(); // rejects once the server is given up on: nothing left to wait for
    try {
      rows = await fetchWindows(url, o.series, o.specs);
    } catch (e) {
      if (Date.now() > o.deadlineMs) throw e; // a server killed meanwhile answers at its next start
    }
    if (rows !== null) {
      const present = new Set(rows.map((r) => windowKey(r.series, r.window, r.start)));
      const total = rows.filter((r) => r.window === base.label).reduce((n, r) => n + r.count, 0);
      const complete = [...o.expected.keys()].every((k) => present.has(k));
      if ((complete && total === previous) || Date.now() > o.deadlineMs) return { rows, complete, waitedMs: Date.now() - t0 };
      previous = total;
    }
    await Bun.sleep(o.pollMs ?? 250);
  }
}

/** A few lines for a person: the figures, then the first mismatches. */
export function formatReport(r: CheckReport): string {
  const pct = r.windowsTotal === 0 ? "—" : `${((100 * r.windowsEqual) / r.windowsTotal).toFixed(2)} %`;
  const lines = [
    `acknowledged ${r.acknowledged} events (in doubt, never acknowledged: ${r.inDoubtUnacked})`,
    `lost ${r.lost}, duplicated ${r.duplicated} (events, counted on the tumbling windows)`,
    `windows equal ${r.windowsEqual}/${r.windowsTotal} (${pct}); missing ${r.windowsMissing}, unexpected ${r.windowsUnexpected}, differing ${r.windowsDiffering}, ambiguous ${r.windowsAmbiguous}`,
    `late events (weir_events_late_total): ${r.lateEvents ?? "unknown"}`,
    ...r.bySpec.map((s) => `  ${s.window}: equal ${s.windowsEqual}/${s.windowsTotal}, missing ${s.windowsMissing}, unexpected ${s.windowsUnexpected}, differing ${s.windowsDiffering}, lost ${s.lost}, duplicated ${s.duplicated}`),
  ];
  for (const m of r.mismatches) {
    const show = (w: WindowAgg | null) => (w === null ? "none" : `count ${w.count} sum ${w.sum} min ${w.min} max ${w.max} first ${w.first} last ${w.last}`);
    lines.push(`  ${m.kind} ${m.series} ${m.window} start ${m.start}${m.fields.length ? ` [${m.fields.join(",")}]` : ""}: expected ${show(m.expected)}; api ${show(m.actual)}`);
  }
  return lines.join("\n");
}
