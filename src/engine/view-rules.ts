/**
 * Alert rules on the views' results (API.md "Views and reference tables":
 * view series are alertable like any series). A plain series' rules run in
 * its partition, on windows that close once; a view window is merged from
 * every partition's parts, commit by commit, so it has no close of its own.
 * This is that close, on the main thread:
 *
 * - Frontier. Every partition says about once a second how far its view
 *   windows are complete (PartitionPipeline.flushViewFrontier: its series'
 *   low watermark at its clock, held at most limits.viewFinalLagMsMax
 *   behind, and before any part gathered and not yet committed);
 *   partition-outputs.ts takes the least over the partitions, and over the
 *   parts staged or in a commit, and hands it here (frontier()). A view
 *   window whose end is at or before it is final: its parts are all
 *   committed, and a later one can only come from a producer out of order
 *   by more than its lateness (counted: partsLate, still merged into the
 *   stored window, not judged again).
 * - Judging. The final windows are fed to a RuleSet in order of end, as a
 *   partition feeds its closed windows, and swept at the frontier (a view
 *   group with no window for a while is a silence, as for any series).
 *   The transitions, the rule set's state and the point judged to are
 *   written in one transaction (table view_rules), then handed on as a
 *   partition's committed transitions are (the alerts topic, the rule book,
 *   the actions): so a kill -9 neither loses nor repeats one. A start
 *   restores that state and reads the view windows after the point judged
 *   to from the store.
 * - Which rules. Those whose selector can pick a view's series
 *   (`view.<name>`), planned against the views' window specs: a rule
 *   without `over` reads the finest of them; give `over` equal to the
 *   view's window otherwise. The rule is also validated against the
 *   configured windows, like every rule (rule-book.ts).
 * - Bounds. Windows merged and not yet judged: limits.viewRuleWindowsPendingMax;
 *   past it the oldest are judged at once (judgedEarly). View series
 *   followed: limits.viewRuleSeriesMax.
 *
 * @example
 *   const vr = ViewRules.load({ db, writer, log, committed: (rows) => publish(rows) });
 *   vr.setViews(views); vr.setRules(rules);
 *   vr.merged(commitResult.views); vr.frontier(g); // judges the view windows ending at or before g
 */
import type { Database } from "bun:sqlite";
import { decode, encode } from "@msgpack/msgpack";
import type { WindowRecord, ViewWindow } from "../actors/store.ts";
import { RuleError } from "../actors/rules/expr.ts";
import type { Rule } from "../actors/rules/rule.ts";
import { RuleSet, type RuleSetSnapshot, type RuleTransition, type SeriesRef } from "../actors/rules/rule-set.ts";
import type { View } from "../actors/views/view.ts";
import type { WindowResult } from "../actors/window.ts";
import type { WindowSpec } from "../actors/window-spec.ts";
import { limits } from "../runtime/limits.ts";
import type { Log } from "../runtime/log.ts";
import { parseSeriesKey } from "../runtime/series.ts";
import type { StoreWriter } from "../storage/store-writer.ts";

export interface ViewRulesDeps {
  /** The main thread's store connection (reads only). */
  db: Database;
  writer: () => StoreWriter;
  log: Log;
  /** Transitions once written: to the alerts topic, the rule book and the actions. */
  committed: (rows: readonly RuleTransition[]) => void;
}

export interface ViewRulesStats {
  /** How far the view windows are judged (event time, ms); −Infinity before the first. */
  judgedTo: number;
  /** Parts of view windows already judged (merged into the stored window, not judged again). */
  partsLate: number;
  /** Windows judged before the frontier passed them, because limits.viewRuleWindowsPendingMax were waiting. */
  judgedEarly: number;
  /** Windows merged and waiting for the frontier. */
  pending: number;
}

interface Stored { judged_to: number; state: Uint8Array }

export class ViewRules {
  private views: View[] = [];
  private rules: Rule[] = [];
  private set: RuleSet | null = null;
  /** Rules on views' state restored at start, put back once the rules and views are known. */
  private restoreFrom: RuleSetSnapshot | null;
  private readonly sids = new Map<string, number>();
  private readonly refs: SeriesRef[] = [];
  /** Merged view windows not judged yet, by series, window and start (the latest merge of each). */
  private readonly pending = new Map<string, WindowRecord>();
  private judgedTo: number;
  private wantTo = -Infinity;
  private running: Promise<void> | null = null;
  private partsLate = 0;
  private judgedEarly = 0;

  private constructor(private readonly d: ViewRulesDeps, stored: Stored | null) {
    this.judgedTo = stored?.judged_to ?? -Infinity;
    this.restoreFrom = stored === null ? null : decode(stored.state) as RuleSetSnapshot;
  }

  /** With what the store kept: the point judged to and the rule set's state. */
  static load(d: ViewRulesDeps): ViewRules {
    const row = d.db.query(`SELECT judged_to, state FROM view_rules WHERE id = 1`).get() as Stored | null;
    return new ViewRules(d, row);
  }

  /** The views from now on (their windows are what the rules on them read). */
  setViews(views: readonly View[]): void {
    this.views = [...views];
    this.rebuild();
  }

  /** Every rule (parsed); those that can pick a view's series are judged here. */
  setRules(rules: readonly Rule[]): void {
    this.rules = [...rules];
    this.rebuild();
  }

  /** Whether some rule reads a view. */
  get active(): boolean {
    return this.set !== null && this.set.rules().length > 0;
  }

  /** A part of a view window arrived from a partition (before its commit): counted when that window was judged already. */
  part(end: number): void {
    if (end <= this.judgedTo) this.partsLate++;
  }

  /** View windows as a commit merged them: held until the frontier passes them. */
  merged(rows: readonly ViewWindow[]): void {
    if (!this.active) return;
    for (const v of rows) {
      const r = v.record;
      if (r.end <= this.judgedTo) continue; // a late part: the window was judged as it stood then
      this.pending.set(`${r.series}\u0000${r.window}\u0000${r.start}`, r);
    }
    if (this.pending.size > limits.viewRuleWindowsPendingMax) this.schedule();
  }

  /** Every partition's view windows are complete up to `g`: the windows ending at or before it are judged. */
  frontier(g: number): void {
    if (g > this.wantTo) this.wantTo = g;
    if (this.wantTo > this.judgedTo) this.schedule();
  }

  stats(): ViewRulesStats {
    return { judgedTo: this.judgedTo, partsLate: this.partsLate, judgedEarly: this.judgedEarly, pending: this.pending.size };
  }

  /** Resolves once no judging is running (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running !== null) await this.running;
  }

  private schedule(): void {
    if (this.running !== null) return;
    this.running = this.judgeAll().catch((e: Error) => {
      this.d.log.error("rules on views: judging failed; tried again at the next frontier", { error: e.message });
    }).finally(() => {
      this.running = null;
    });
  }

  private async judgeAll(): Promise<void> {
    while (this.wantTo > this.judgedTo || this.pending.size > limits.viewRuleWindowsPendingMax) {
      const to = Math.max(this.wantTo, this.judgedTo);
      if (!this.active) {
        // No rule reads a view: nothing to judge or keep; the point moves on in memory only.
        this.pending.clear();
        this.judgedTo = to;
        return;
      }
      const due = this.due(to);
      const out: RuleTransition[] = [];
      const emit = (t: RuleTransition) => out.push(t);
      const set = this.set!;
      let end = to;
      for (const r of due) {
        if (r.end > end) end = r.end; // judged early (over the bound)
        const sid = this.sidOf(r.series);
        if (sid < 0) continue;
        set.evaluate(toResult(r, sid), this.refs[sid], emit);
      }
      set.sweep(() => end, (key) => this.refOf(key), emit, end);
      await this.d.writer().commitViewRules({ judgedTo: end, state: encode(set.snapshot()), alerts: out });
      for (const r of due) this.pending.delete(`${r.series}\u0000${r.window}\u0000${r.start}`);
      this.judgedTo = end;
      if (out.length > 0) this.d.committed(out);
    }
  }

  /** The pending windows ending at or before `to`, and the oldest beyond it while over the bound; in order of end. */
  private due(to: number): WindowRecord[] {
    const byEnd = (a: WindowRecord, b: WindowRecord) => a.end - b.end || (a.series < b.series ? -1 : a.series > b.series ? 1 : 0);
    // Most of the time only the few windows the frontier passed are sorted; the whole set only while over the bound.
    if (this.pending.size <= limits.viewRuleWindowsPendingMax) return [...this.pending.values()].filter((r) => r.end <= to).sort(byEnd);
    const all = [...this.pending.values()].sort(byEnd);
    let n = 0;
    while (n < all.length && all[n].end <= to) n++;
    const over = all.length - n - limits.viewRuleWindowsPendingMax;
    if (over > 0) {
      // Judge whole ends only: a window judged early must not leave one of the same end behind.
      let k = n + over;
      while (k < all.length && all[k].end === all[k - 1].end) k++;
      this.judgedEarly += k - n;
      n = k;
    }
    return all.slice(0, n);
  }

  /** A dense id for a view series (the rule set's key), −1 past limits.viewRuleSeriesMax. */
  private sidOf(key: string): number {
    let sid = this.sids.get(key);
    if (sid !== undefined) return sid;
    if (this.refs.length >= limits.viewRuleSeriesMax) return -1;
    const parsed = parseSeriesKey(key);
    if (parsed === null) return -1;
    sid = this.refs.length;
    this.refs.push({ key, name: parsed.name, tags: parsed.tags });
    this.sids.set(key, sid);
    return sid;
  }

  private refOf(key: string): SeriesRef | null {
    const sid = this.sidOf(key);
    return sid < 0 ? null : this.refs[sid];
  }

  /**
   * A new rule set for the rules that can pick a view's series, planned on
   * the views' windows, keeping the instances of unchanged rules (through
   * a snapshot, as a partition keeps them across a change).
   */
  private rebuild(): void {
    const snap = this.set?.snapshot() ?? this.restoreFrom;
    const specs = uniqueSpecs(this.views.map((v) => v.window));
    const names = this.views.map((v) => v.seriesName);
    const picked = this.rules.filter((r) => names.some((n) => (r.selector.name !== null ? r.selector.name === n : r.selector.nameRe!.test(n))));
    if (specs.length === 0 || picked.length === 0) {
      this.set = null;
      this.restoreFrom = snap; // kept until a rule reads a view again
      return;
    }
    const set = new RuleSet({ windows: { specs } });
    for (const r of picked) {
      try {
        set.set(r);
      } catch (e) {
        if (!(e instanceof RuleError)) throw e;
        this.d.log.warn("rules on views: a rule cannot read the views' windows; not judged on them", { rule: r.name, error: e.message });
      }
    }
    if (snap !== null) set.restore(snap);
    this.restoreFrom = null;
    this.set = set;
    if (this.pending.size === 0 && this.judgedTo > -Infinity) this.loadUnjudged();
  }

  /** After a start: the stored view windows after the point judged to (merged before the stop, not judged yet). */
  private loadUnjudged(): void {
    const rows = this.d.db.query(
      `SELECT w.series, w.window, w.start, w."end", w.count, w.sum, w.min, w.max, w.avg, w.p50, w.p95, w.p99, w.first, w.last
       FROM view_state v JOIN windows w ON w.series = v.series AND w.window = v.window AND w.start = v.start
       WHERE v."end" > ? ORDER BY v."end" LIMIT ?`,
    ).all(this.judgedTo, limits.viewRuleWindowsPendingMax) as WindowRecord[];
    for (const r of rows) this.pending.set(`${r.series}\u0000${r.window}\u0000${r.start}`, withNaN(r));
  }
}

function uniqueSpecs(specs: readonly WindowSpec[]): WindowSpec[] {
  const byLabel = new Map<string, WindowSpec>();
  for (const s of specs) byLabel.set(s.label, s);
  return [...byLabel.values()];
}

/** SQLite keeps a missing percentile as NULL. */
function withNaN(r: WindowRecord): WindowRecord {
  const n = (v: number | null) => v ?? NaN;
  return { ...r, p50: n(r.p50), p95: n(r.p95), p99: n(r.p99) };
}

function toResult(r: WindowRecord, sid: number): WindowResult {
  return {
    kind: "window", sid, spec: r.window, start: r.start, end: r.end, count: r.count, sum: r.sum, min: r.min, max: r.max, avg: r.avg,
    p50: r.p50, p95: r.p95, p99: r.p99, first: r.first, last: r.last,
  };
}
