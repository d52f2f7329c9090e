/**
 * One partition's part of the continuous views: every accepted event of a
 * series a view reads is added to that view's aggregate for the series'
 * group and each view window holding the event's time. The parts go out
 * as deltas (takeDeltas, once per checkpoint: the aggregates gathered since
 * the last take) and the engine merges every partition's deltas by view,
 * group and window (view-merge.ts), so a group gathers events from series
 * on every partition and each view window equals a recount of its events.
 *
 * - Binding. A series is matched against each view once (name glob, tag and
 *   joined-column conditions) and its group is worked out then: its tags,
 *   and the joined table's columns for its `on` tag, "unknown" where a tag
 *   or a row is missing. Bindings are worked out again after any table
 *   changes (setTable): the table as it stands when the event is handled
 *   (ksqlDB's stream–table join). Value conditions are judged per event.
 * - Which events. The window actor's accepted events (not the late ones),
 *   so a view counts exactly what the series' own windows count.
 * - Bounds. At most limits.viewGroupsMax open (view, group, window)
 *   aggregates between two takes; past it an event's view update is
 *   refused and counted (`refused`), never silently.
 * - State. What has not been taken yet; a partition takes its deltas right
 *   before each checkpoint, so the snapshot is almost always empty.
 *
 * @example
 *   const set = new ViewSet([parseView(def)]);
 *   set.setTable("users", { version: 1, get: (k) => users.get(k) });
 *   set.onEvent(sid, seriesRef, ts, value);
 *   const deltas = set.takeDeltas(); // → the output ring, committed with the checkpoint
 */
import { limits } from "../../runtime/limits.ts";
import { seriesKey } from "../../runtime/series.ts";
import { ViewAgg, type ViewAggSnapshot } from "./view-agg.ts";
import { compare } from "../rules/rule-set.ts";
import type { View } from "./view.ts";

export interface SeriesRef { key: string; name: string; tags: Readonly<Record<string, string>> }
/** A reference table as the views read it: rows by key. */
export interface TableLookup { version: number; get(key: string): Readonly<Record<string, string>> | undefined }

/** One view's aggregate of one group and window gathered in one partition since the last take. */
export interface ViewDelta {
  /** The view's name. */
  v: string;
  /** The group's series key: view.<name>{<group tags>}. */
  k: string;
  /** The group's tags. */
  g: Record<string, string>;
  /** The window's label (the view's spec) and its start and end. */
  w: string;
  s: number;
  e: number;
  a: ViewAggSnapshot;
  /** The view's `having`, judged on the merged window (a hit is an alert of kind view). */
  h: View["having"];
}

export interface ViewSetSnapshot { v: 1; d: ViewDelta[]; refused: number }

interface Binding {
  view: View;
  /** The group's series key and tags. */
  key: string;
  tags: Record<string, string>;
  distinct: string | null;
  valueConds: boolean;
  /** The aggregate this binding added to last, its window's start, and the generation of `open` it is in (ViewSet.gen). */
  open: Open | null;
  openStart: number;
  openGen: number;
}

interface Open { view: View; key: string; tags: Record<string, string>; start: number; agg: ViewAgg }

const none: Binding[] = [];

export class ViewSet {
  private views: View[];
  private readonly tables = new Map<string, TableLookup>();
  private bySid: Array<Binding[] | undefined> = [];
  private open = new Map<string, Open>();
  /** Bumped whenever `open` is replaced: an aggregate a binding cached before is not in it. */
  private gen = 0;
  /** Events whose view update was refused because limits.viewGroupsMax aggregates were open. */
  refused = 0;

  /** `groupsMax`: open aggregates at most (limits.viewGroupsMax; a test passes a small one). */
  constructor(views: readonly View[] = [], private readonly groupsMax: number = limits.viewGroupsMax) {
    this.views = [...views];
  }

  get active(): boolean {
    return this.views.length > 0;
  }

  /** The views from now on: the open aggregates of a view that is gone or changed are dropped (not taken); an unchanged one keeps them. */
  setViews(views: readonly View[]): void {
    const byName = new Map(views.map((v) => [v.name, v]));
    for (const [k, o] of this.open) {
      const now = byName.get(o.view.name);
      if (now === undefined || now.fingerprint !== o.view.fingerprint) this.open.delete(k);
      else o.view = now;
    }
    this.views = [...views];
    this.bySid = [];
  }

  /** A reference table's current rows (a new version re-binds every series at its next event). */
  setTable(name: string, table: TableLookup | null): void {
    if (table === null) this.tables.delete(name);
    else this.tables.set(name, table);
    this.bySid = [];
  }

  /** One accepted event of series `sid`. */
  onEvent(sid: number, series: SeriesRef, ts: number, value: number): void {
    const bs = this.bySid[sid] ?? this.bind(sid, series);
    for (let i = 0; i < bs.length; i++) {
      const b = bs[i];
      if (b.valueConds && !valueOk(b.view, value)) continue;
      const w = b.view.window;
      // Every window [start, start + size) holding ts: one for a tumbling window, size/slide for a sliding one.
      const last = Math.floor(ts / w.slideMs) * w.slideMs;
      for (let start = last; start > ts - w.sizeMs; start -= w.slideMs) {
        // A series' next event mostly falls in the window of its last one: the aggregate is then at hand, with no
        // key made and looked up: the demo's three views take ~4x less time per event so (bench/views-pipeline.ts).
        const o = b.openStart === start && b.openGen === this.gen ? b.open! : this.openOf(b, start);
        if (o !== null) o.agg.add(ts, value, b.distinct);
      }
    }
  }

  /** The open aggregate of `b`'s group and the window at `start`, made if need be; null when refused (limits.viewGroupsMax). */
  private openOf(b: Binding, start: number): Open | null {
    const k = `${b.key}\u0000${start}`;
    let o = this.open.get(k);
    if (o === undefined) {
      if (this.open.size >= this.groupsMax) {
        this.refused++;
        return null;
      }
      o = { view: b.view, key: b.key, tags: b.tags, start, agg: new ViewAgg(b.view.sketch, b.view.distinct !== null) };
      this.open.set(k, o);
    }
    b.open = o;
    b.openStart = start;
    b.openGen = this.gen;
    return o;
  }

  /** The earliest window end among the aggregates gathered since the last take (+Infinity: none): no view window ending at or after it is complete here. */
  openEndMin(): number {
    let min = Infinity;
    for (const o of this.open.values()) {
      const e = o.start + o.view.window.sizeMs;
      if (e < min) min = e;
    }
    return min;
  }

  /**
   * The aggregates gathered since the last take, as deltas: every one of a
   * view with `emit: changes` (its running values move at each checkpoint),
   * and those of `emit: final` views whose window ends at or before
   * `completeBefore` (complete here: nothing more will come to them but
   * late parts). The others stay open, in the snapshot, until a later take:
   * so a final view's window is merged once per partition, not once per
   * checkpoint while it is open (a view grouped by user merged every user's
   * open window every second). Infinity: all (a stop).
   */
  takeDeltas(completeBefore = Infinity): ViewDelta[] {
    if (this.open.size === 0) return [];
    const out: ViewDelta[] = [];
    let kept: Map<string, Open> | null = null;
    for (const [k, o] of this.open) {
      const e = o.start + o.view.window.sizeMs;
      if (o.view.emit === "final" && e > completeBefore) {
        (kept ??= new Map()).set(k, o);
        continue;
      }
      out.push({ v: o.view.name, k: o.key, g: o.tags, w: o.view.window.label, s: o.start, e, a: o.agg.snapshot(), h: o.view.having });
    }
    this.open = kept ?? new Map();
    this.gen++;
    return out;
  }

  snapshot(): ViewSetSnapshot {
    const d: ViewDelta[] = [];
    for (const o of this.open.values()) d.push({ v: o.view.name, k: o.key, g: o.tags, w: o.view.window.label, s: o.start, e: o.start + o.view.window.sizeMs, a: o.agg.snapshot(), h: o.view.having });
    return { v: 1, d, refused: this.refused };
  }

  /** Puts back what a snapshot had not taken yet (of the views still held). */
  restore(snap: ViewSetSnapshot): void {
    if (snap.v !== 1) throw new Error(`view set snapshot: unknown version ${String(snap.v)}`);
    this.open = new Map();
    this.gen++;
    this.refused = snap.refused;
    for (const d of snap.d) {
      const view = this.views.find((v) => v.name === d.v);
      if (view === undefined) continue;
      this.open.set(`${d.k}\u0000${d.s}`, { view, key: d.k, tags: d.g, start: d.s, agg: ViewAgg.restore(d.a) });
    }
  }

  private bind(sid: number, s: SeriesRef): Binding[] {
    let out: Binding[] = none;
    for (const view of this.views) {
      if (view.fromName !== null ? view.fromName !== s.name : !view.fromRe!.test(s.name)) continue;
      const row = view.join === null ? undefined : this.tables.get(view.join.table)?.get(s.tags[view.join.on] ?? "");
      let pass = true;
      let valueConds = false;
      for (const c of view.where) {
        if (c.kind === "value") {
          valueConds = true;
          continue;
        }
        const v = (c.table === null ? s.tags[c.key] : row?.[c.key]) ?? "";
        const hit = c.re === null ? v === c.value : c.re.test(v);
        if (hit === c.negate) {
          pass = false;
          break;
        }
      }
      if (!pass) continue;
      const tags: Record<string, string> = {};
      for (const g of view.groupBy) tags[g.tag] = (g.kind === "tag" ? s.tags[g.key] : g.kind === "name" ? s.name : row?.[g.column]) ?? "unknown";
      const distinct = view.distinct === null ? null : s.tags[view.distinct] ?? "unknown";
      if (out === none) out = [];
      out.push({ view, key: seriesKey(view.seriesName, tags), tags, distinct, valueConds, open: null, openStart: NaN, openGen: -1 });
    }
    this.bySid[sid] = out;
    return out;
  }
}

function valueOk(view: View, value: number): boolean {
  for (const c of view.where) if (c.kind === "value" && !compare(c.op, value, c.threshold)) return false;
  return true;
}
