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
 * - Fed by pane or by event. With a pane source (setPanes: the partition's
 *   window actor, whose specs slide by the pane), an `emit: final` view with
 *   no condition on the value and a window made of whole panes takes each
 *   of its series' panes once, as it closes (onPane): one update per series
 *   and pane instead of one per event (the demo's dense shape: 80 times
 *   fewer). The others (`emit: changes`, whose running values must move
 *   with every event; a `where value`) take each event (onEvent). A pane
 *   closes once no event can join it, so both ways gather the same events.
 * - Cuts. A change of the views or of a table binds the series again from
 *   the next event on, but a pane still open holds events from before the
 *   change. So a change cuts the open panes: what each holds so far goes to
 *   the groups bound before it, and below the end of the series' last open
 *   pane its pane-fed views take the series' events one by one (with the new
 *   binding) until those panes have closed. A stop cuts likewise, so that
 *   the stop's take holds every event handled (the snapshot keeps the cuts).
 * - Waiting panes. A view window is complete here only once no pane it
 *   will take is still open (panesWaiting, once a second), and a pane that
 *   has waited too long is cut into the views (cutStale, each checkpoint).
 *   Both read an index kept as panes open (the window actor's
 *   onPaneOpened), close (onPane), are cut, and as series are registered
 *   (seriesAdded), not a walk over every open pane: per series its oldest
 *   open pane and its first pane not cut (waiting-panes.ts). What changes
 *   every series at once (a change of the views or of a joined table, a
 *   stop) cuts every open pane, which leaves none waiting: the index is then
 *   empty. A restore or a new pane source builds it again, series by
 *   series (reindexSlices).
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
import { runSlices } from "../../runtime/slices.ts";
import { seriesKey } from "../../runtime/series.ts";
import { ViewAgg, type ViewAggSnapshot } from "./view-agg.ts";
import { WaitingPanes } from "./waiting-panes.ts";
import { compare } from "../rules/rule-set.ts";
import type { ClosedPane, WindowLogic, WindowState } from "../window.ts";
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

/** `c`: the cuts, [sid, below] pairs (absent before views were fed by pane). */
export interface ViewSetSnapshot { v: 1; d: ViewDelta[]; refused: number; c?: number[] }

/**
 * The partition's panes as the views read them (the window actor, PartitionPipeline).
 * Its owner tells the views of every pane opened (ViewSet.paneOpened) and closed (onPane).
 */
export interface PaneSource {
  /** The pane length. */
  paneMs: number;
  /** Every pane not closed yet, series by series, in order of start. */
  forEachOpen(fn: (sid: number, pane: ClosedPane) => void): void;
  /** Series `sid`'s panes not closed yet, in order of start. */
  forEachOpenOf(sid: number, fn: (sid: number, pane: ClosedPane) => void): void;
  /** The start of series `sid`'s first pane not closed yet starting at or after `from` (+Infinity: none). */
  firstOpen(sid: number, from: number): number;
  /** A series' name and tags (undefined: not registered here yet). */
  seriesOf(sid: number): SeriesRef | undefined;
  /** Every series id with a pane is below it. */
  sidsEnd(): number;
}

/**
 * A window actor's panes as a PaneSource; `state()` is its current state
 * (a restore replaces it).
 * @example set.setPanes(windowPanes(window, () => st, paneMs, (sid) => series[sid]));
 */
export function windowPanes(window: WindowLogic, state: () => WindowState, paneMs: number, seriesOf: PaneSource["seriesOf"]): PaneSource {
  return {
    paneMs,
    forEachOpen: (fn) => window.forEachOpenPane(state(), fn),
    forEachOpenOf: (sid, fn) => window.forEachOpenPaneOf(state(), sid, fn),
    firstOpen: (sid, from) => window.firstOpenPane(state(), sid, from),
    seriesOf,
    sidsEnd: () => state().series.length,
  };
}

interface Binding {
  view: View;
  /** The group's series key and tags. */
  key: string;
  tags: Record<string, string>;
  distinct: string | null;
  valueConds: boolean;
  /** Fed by pane (onPane) rather than by event. */
  byPane: boolean;
  /** The aggregate this binding added to last and its window's start (good while not taken). */
  open: Open | null;
  openStart: number;
}

/** `taken`: handed over by takeDeltas (a binding that cached it looks its window up again). */
interface Open { view: View; key: string; tags: Record<string, string>; start: number; agg: ViewAgg; taken: boolean }

const none: Binding[] = [];
/** ViewSet.kind per sid: bindings worked out, none fed per event, some fed per event. */
const kindUnbound = 0;
const kindPaneOnly = 1;
const kindPerEvent = 2;

export class ViewSet {
  private views: View[];
  private readonly tables = new Map<string, TableLookup>();
  private bySid: Array<Binding[] | undefined> = [];
  /** Per sid (kindUnbound, kindPaneOnly, kindPerEvent): an event of a series with only pane-fed views costs one byte read. */
  private kind = new Uint8Array(0);
  private panes: PaneSource | null = null;
  /** Series cut (see the module comment): sid → the time below which their pane-fed views take events one by one. */
  private cuts = new Map<number, number>();
  private open = new Map<string, Open>();
  /**
   * Per series its oldest open pane and first waiting pane (see the module
   * comment), kept while `indexed`: false after a restore or a new pane
   * source until reindexSlices (or the next use) builds it again, and while
   * no view is fed by pane (then nothing reads it).
   */
  private readonly waiting = new WaitingPanes();
  private indexed = false;
  /** Events whose view update was refused because limits.viewGroupsMax aggregates were open. */
  refused = 0;

  /** `groupsMax`: open aggregates at most (limits.viewGroupsMax; a test passes a small one). */
  constructor(views: readonly View[] = [], private readonly groupsMax: number = limits.viewGroupsMax) {
    this.views = [...views];
  }

  get active(): boolean {
    return this.views.length > 0;
  }

  /**
   * Whether events must reach onEvent: some view is fed per event, or a
   * series is cut. Only setViews, setTable, setPanes, cutForStop, cutStale
   * and restore make it true; the partition hooks the window actor's
   * accepted events after each (PartitionPipeline.hookAccepted).
   */
  get needsEvents(): boolean {
    return this.cuts.size > 0 || this.views.some((v) => !this.paneFed(v));
  }

  /** The views from now on: the open aggregates of a view that is gone or changed are dropped (not taken); an unchanged one keeps them. */
  setViews(views: readonly View[]): void {
    if (views.some((v) => this.paneFed(v))) this.cutOpenPanes(true); // a new view takes none of what its series' open panes hold
    else this.indexed = false; // unused until a view fed by pane comes, through here: the cut above empties it then
    const byName = new Map(views.map((v) => [v.name, v]));
    for (const [k, o] of this.open) {
      const now = byName.get(o.view.name);
      if (now === undefined || now.fingerprint !== o.view.fingerprint) this.open.delete(k);
      else o.view = now;
    }
    this.views = [...views];
    this.unbind();
  }

  /**
   * The panes the views may read from now on (null: every view per event).
   * Set it before the first event, or after a restore.
   */
  setPanes(source: PaneSource | null): void {
    this.panes = source;
    this.indexed = false;
    this.unbind();
  }

  /**
   * The waiting panes found again, `seriesPerSlice` series ids at a time,
   * yielding between: after the pane source's panes were replaced as a
   * whole (its window state restored; PartitionPipeline.restoreSlices).
   * 100,000 series took 12-20 ms in one piece (bench/view-pane-walk.ts).
   * Nothing may change the panes or the views until it has returned.
   * @example const it = views.reindexSlices(1_000); for (let r = it.next(); !r.done; r = it.next()) beat();
   */
  *reindexSlices(seriesPerSlice: number): Generator<void, void> {
    const src = this.panes;
    this.indexed = false;
    if (src === null || !this.views.some((v) => this.paneFed(v))) return; // unused until a cut or index() builds it
    this.waiting.clear();
    const end = src.sidsEnd();
    for (let sid = 0; sid < end; sid++) {
      this.reindex(sid);
      if ((sid + 1) % seriesPerSlice === 0 && sid + 1 < end) yield;
    }
    this.indexed = true;
  }

  /**
   * A pane of series `sid` opened at `start` (the pane source's window actor
   * calls it): it may wait now. Mostly the series' newest, after the panes
   * it already waits for: that changes nothing in the index.
   */
  readonly paneOpened = (sid: number, start: number): void => {
    if (this.indexed && !this.waiting.holdsBefore(sid, start)) this.reindex(sid);
  };

  /** Series `sid` is registered from now on (seriesOf knows it): its open panes may wait now. */
  seriesAdded(sid: number): void {
    if (this.indexed) this.reindex(sid);
  }

  /** A reference table's current rows (a new version re-binds every series at its next event). */
  setTable(name: string, table: TableLookup | null): void {
    if (this.views.some((v) => v.join?.table === name)) this.cutOpenPanes();
    if (table === null) this.tables.delete(name);
    else this.tables.set(name, table);
    this.unbind();
  }

  /** A stop: every open pane's events so far go to the views (takeDeltas then holds every event handled), cut as at a change. */
  cutForStop(): void {
    this.cutOpenPanes();
  }

  /**
   * Cuts the series whose oldest open pane ended at or before `before`
   * (a series behind the clock, or quiet, whose panes wait for the quiet
   * rule), at each checkpoint (PartitionPipeline.flushViews): so a view's
   * window does not wait for them. A series that keeps up closes its panes
   * first and is never cut.
   */
  cutStale(before: number): void {
    const src = this.panes;
    if (src === null || !this.views.some((v) => this.paneFed(v))) return;
    this.index();
    // As the walk over every open pane did, series by series in sid order, but over those the index says hold a pane
    // not cut and an oldest open pane ended by `before`: for the others the walk changed nothing.
    for (const sid of this.waiting.staleSids(before - src.paneMs)) {
      const series = src.seriesOf(sid)!; // the index holds registered series only
      src.forEachOpenOf(sid, (_, pane) => this.cutPane(sid, series, pane));
      this.reindex(sid);
    }
  }

  /**
   * The panes not yet given to the views, as the frontier must know them
   * (PartitionPipeline.flushViewFrontier): over the open panes of series
   * with a view fed by pane and not cut below them, the earliest start
   * (+Infinity: none; no view window ending after it is complete here), and
   * whether one ended by `staleBefore` (cutStale would hand it over): all
   * panes are one pane long, so that is whether the earliest did.
   * O(distinct pane starts held) from the index, not a walk.
   */
  panesWaiting(staleBefore: number): { low: number; stale: boolean } {
    const src = this.panes;
    if (src === null || !this.views.some((v) => this.paneFed(v))) return { low: Infinity, stale: false };
    this.index();
    const low = this.waiting.low();
    return { low, stale: low + src.paneMs <= staleBefore };
  }

  /** The index of waiting panes, built in one piece if it is not kept (a restore not followed by reindexSlices, a new source). */
  private index(): void {
    if (!this.indexed) runSlices(this.reindexSlices(Infinity));
  }

  /**
   * Series `sid` in the index as it stands now, after any change to its
   * open panes, its cut or its registration. Its binding changes only at an
   * unbind: setViews and a joined table's setTable cut every open pane (none
   * waits) or mark the index stale; another table's binds as before.
   * Registered series only, as the walk counted: the oldest open pane's
   * start while some open pane is not cut (a walk's cutStale would cut it),
   * and the first not cut when a view takes the series' panes (panesWaiting).
   */
  private reindex(sid: number): void {
    const src = this.panes!;
    const series = src.seriesOf(sid);
    let oldest = Infinity;
    let first = Infinity;
    if (series !== undefined) {
      const cut = this.cuts.size === 0 ? -Infinity : this.cuts.get(sid) ?? -Infinity;
      first = src.firstOpen(sid, cut);
      if (first !== Infinity) oldest = cut === -Infinity ? first : src.firstOpen(sid, -Infinity);
      if (!this.fedByPane(sid, series)) first = Infinity;
    }
    this.waiting.set(sid, oldest, first);
  }

  /** Whether a view fed by pane reads series `sid` (binding it if need be). */
  private fedByPane(sid: number, series: SeriesRef): boolean {
    if (this.kind[sid] === undefined || this.kind[sid] === kindUnbound) this.bind(sid, series);
    const bs = this.bySid[sid]!;
    for (let i = 0; i < bs.length; i++) if (bs[i].byPane) return true;
    return false;
  }

  private unbind(): void {
    this.bySid = [];
    this.kind.fill(kindUnbound);
  }

  /**
   * What the open panes hold so far goes to the pane-fed views as bound now,
   * and each series with an open pane is cut below its last open pane's end.
   * O(open panes): at a change of the views or a table, and at a stop.
   * No pane is left waiting then: the index is empty.
   */
  private cutOpenPanes(always = false): void {
    const src = this.panes;
    if (src === null || !(always || this.views.some((v) => this.paneFed(v)))) {
      this.indexed = false; // unused while no view is fed by pane
      return;
    }
    src.forEachOpen((sid, pane) => {
      const series = src.seriesOf(sid);
      if (series !== undefined) this.cutPane(sid, series, pane);
    });
    this.waiting.clear(); // an unregistered series is never in it, and is not cut
    this.indexed = true;
  }

  /** One open pane of a series being cut (see "Cuts"): fed unless below its cut already, the cut raised to its end. */
  private cutPane(sid: number, series: SeriesRef, pane: ClosedPane): void {
    const cut = this.cuts.get(sid);
    if (cut === undefined || pane.start >= cut) this.feedPane(sid, series, pane);
    const end = pane.start + this.panes!.paneMs;
    if (cut === undefined || end > cut) this.cuts.set(sid, end);
    if (sid < this.kind.length && this.kind[sid] === kindPaneOnly) this.kind[sid] = kindPerEvent;
  }

  /** One accepted event of series `sid`. */
  onEvent(sid: number, series: SeriesRef, ts: number, value: number): void {
    let kind = this.kind[sid]; // undefined past the end: not bound yet
    if (kind === undefined || kind === kindUnbound) {
      this.bind(sid, series);
      kind = this.kind[sid];
    }
    if (kind === kindPaneOnly) return;
    const bs = this.bySid[sid]!;
    const cut = this.cuts.size === 0 ? -Infinity : this.cuts.get(sid) ?? -Infinity;
    for (let i = 0; i < bs.length; i++) {
      const b = bs[i];
      if (b.byPane && ts >= cut) continue; // its pane will bring it
      if (b.valueConds && !valueOk(b.view, value)) continue;
      const w = b.view.window;
      // Every window [start, start + size) holding ts: one for a tumbling window, size/slide for a sliding one.
      const last = Math.floor(ts / w.slideMs) * w.slideMs;
      for (let start = last; start > ts - w.sizeMs; start -= w.slideMs) {
        // A series' next event mostly falls in the window of its last one: the aggregate is then at hand, with no
        // key made and looked up (measured 3.6-4.8x less time per event for the views, BENCHMARKS.md, before panes).
        const o = b.openStart === start && !b.open!.taken ? b.open! : this.openOf(b, start);
        if (o !== null) o.agg.add(ts, value, b.distinct);
      }
    }
  }

  /**
   * One pane of series `sid` as it closes (the pane source's window actor):
   * added to each pane-fed view's windows holding it, unless the series was
   * cut below its end (its events went one by one).
   */
  onPane(sid: number, series: SeriesRef, pane: ClosedPane): void {
    if (!this.belowCut(sid, pane)) this.feedPane(sid, series, pane);
    if (this.indexed) this.reindex(sid); // its oldest open pane moved on, its cut may be gone
  }

  /** Whether a closing pane lies below its series' cut (its events went one by one); the cut goes once its last pane closes. */
  private belowCut(sid: number, pane: ClosedPane): boolean {
    if (this.cuts.size === 0) return false;
    const cut = this.cuts.get(sid);
    if (cut === undefined) return false;
    if (pane.start + this.panes!.paneMs >= cut) {
      this.cuts.delete(sid); // no event below the cut can come any more
      const bs = this.bySid[sid];
      if (bs !== undefined) this.kind[sid] = bs.some((b) => !b.byPane) ? kindPerEvent : kindPaneOnly;
    }
    return pane.start < cut;
  }

  private feedPane(sid: number, series: SeriesRef, pane: ClosedPane): void {
    if (this.kind[sid] === undefined || this.kind[sid] === kindUnbound) this.bind(sid, series);
    const bs = this.bySid[sid]!;
    for (let i = 0; i < bs.length; i++) {
      const b = bs[i];
      if (!b.byPane) continue;
      const w = b.view.window;
      const last = Math.floor(pane.start / w.slideMs) * w.slideMs;
      for (let start = last; start > pane.start - w.sizeMs; start -= w.slideMs) {
        const o = b.openStart === start && !b.open!.taken ? b.open! : this.openOf(b, start);
        if (o !== null) o.agg.addPane(pane, b.distinct);
      }
    }
  }

  /** Whether view `v` is fed by pane here (see the module comment). */
  private paneFed(v: View): boolean {
    const P = this.panes?.paneMs;
    if (P === undefined || v.emit !== "final" || v.window.sizeMs % P !== 0 || v.window.slideMs % P !== 0) return false;
    return !v.where.some((c) => c.kind === "value");
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
      o = { view: b.view, key: b.key, tags: b.tags, start, agg: new ViewAgg(b.view.sketch, b.view.distinct !== null), taken: false };
      this.open.set(k, o);
    }
    b.open = o;
    b.openStart = start;
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
      o.taken = true;
    }
    this.open = kept ?? new Map();
    return out;
  }

  snapshot(): ViewSetSnapshot {
    const d: ViewDelta[] = [];
    for (const o of this.open.values()) d.push({ v: o.view.name, k: o.key, g: o.tags, w: o.view.window.label, s: o.start, e: o.start + o.view.window.sizeMs, a: o.agg.snapshot(), h: o.view.having });
    const snap: ViewSetSnapshot = { v: 1, d, refused: this.refused };
    if (this.cuts.size > 0) snap.c = [...this.cuts].flat();
    return snap;
  }

  /** Puts back what a snapshot had not taken yet (of the views still held). */
  restore(snap: ViewSetSnapshot): void {
    if (snap.v !== 1) throw new Error(`view set snapshot: unknown version ${String(snap.v)}`);
    this.open = new Map(); // no binding holds an old one: unbind() below
    this.refused = snap.refused;
    this.cuts = new Map();
    for (let i = 0; i + 1 < (snap.c?.length ?? 0); i += 2) this.cuts.set(snap.c![i], snap.c![i + 1]);
    this.indexed = false;
    this.unbind();
    for (const d of snap.d) {
      const view = this.views.find((v) => v.name === d.v);
      if (view === undefined) continue;
      this.open.set(`${d.k}\u0000${d.s}`, { view, key: d.k, tags: d.g, start: d.s, agg: ViewAgg.restore(d.a), taken: false });
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
      out.push({ view, key: seriesKey(view.seriesName, tags), tags, distinct, valueConds, byPane: this.paneFed(view), open: null, openStart: NaN });
    }
    this.bySid[sid] = out;
    if (sid >= this.kind.length) {
      const grown = new Uint8Array(Math.max(sid + 1, this.kind.length * 2, 64));
      grown.set(this.kind);
      this.kind = grown;
    }
    this.kind[sid] = out.some((b) => !b.byPane) || this.cuts.has(sid) ? kindPerEvent : kindPaneOnly;
    return out;
  }
}

function valueOk(view: View, value: number): boolean {
  for (const c of view.where) if (c.kind === "value" && !compare(c.op, value, c.threshold)) return false;
  return true;
}
