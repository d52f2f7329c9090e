/**
 * Views fed by pane (view-set.ts "Fed by pane or by event", "Cuts") equal a
 * recount of the events the windows accepted, through whole partition
 * pipelines: two partitions' PartitionPipelines (the default specs, whose
 * 10s slides by the pane), a seeded shop stream out of order by up to 5 s
 * (lateness 2 s: some events late), a quiet producer (its panes closed by
 * the quiet rule), a producer 40 s behind the clock (its panes cut at the
 * hand-overs), the reference table changed every few batches (events
 * before a change group by the old row, after it by the new one, open panes
 * straddling it), a view added mid-stream (it takes the events handled after
 * it, not what the open panes held before), a stop and restart of one
 * partition (its open panes cut into the stop's take, the cuts carried by
 * the snapshot), and a crash of the other (restored from its last checkpoint
 * and the batches since replayed). Views fed by pane and by event
 * (`emit: changes`, a `where value`) side by side; every part merged as the
 * store merges them, in a shuffled order.
 */
import { describe, expect, test } from "bun:test";
import { mulberry32 } from "./helpers/prng.ts";
import { PartitionPipeline, rollupsFor } from "../src/actors/partition-pipeline.ts";
import { ViewAgg } from "../src/actors/views/view-agg.ts";
import type { TableLookup, ViewDelta } from "../src/actors/views/view-set.ts";
import { parseView, type View } from "../src/actors/views/view.ts";
import { parseWindowSpecs } from "../src/actors/window-spec.ts";
import { limits } from "../src/runtime/limits.ts";
import { partitionOf, seriesKey } from "../src/runtime/series.ts";

const seed = Number(process.env.VIEWS_SEED ?? 20261206);
const specs = parseWindowSpecs("10s,60s/10s");
const latenessMs = 2_000;
const partitions = 2;

const viewDefs = {
  by_segment: { name: "by_segment", from: "shop.*", join: { table: "users", on: "user" }, group_by: ["users.segment", "name"], window: "1m", aggregates: ["count", "sum", "min", "max", "p50", "count_distinct"], distinct: "user" },
  sliding: { name: "sliding", from: "shop.*", group_by: ["page"], window: "2m/1m", aggregates: ["count", "sum", "min", "max"] },
  big: { name: "big", from: "shop.*", where: { value: "> 60" }, join: { table: "users", on: "user" }, group_by: ["users.segment"], window: "1m", aggregates: ["count", "sum"] },
  running: { name: "running", from: "shop.purchase", join: { table: "users", on: "user" }, group_by: ["users.segment"], window: "1m", aggregates: ["count", "sum"], emit: "changes" },
  newcomer: { name: "newcomer", from: "shop.*", group_by: ["page"], window: "1m", aggregates: ["count", "sum"] },
} as const;
const views = Object.fromEntries(Object.entries(viewDefs).map(([k, d]) => [k, parseView(d as unknown as Record<string, unknown>)])) as Record<keyof typeof viewDefs, View>;

interface SeriesDef { key: string; name: string; tags: Record<string, string>; p: number; sid: number }
interface Ev { s: SeriesDef; ts: number; value: number; step: number }
type Op =
  | { k: "batch"; evs: Ev[]; recvMs: number }
  | { k: "tick"; nowMs: number }
  | { k: "table"; version: number; rows: Map<string, Record<string, string>> }
  | { k: "views"; list: View[] }
  | { k: "checkpoint" }
  | { k: "stop" };

function lookup(version: number, rows: Map<string, Record<string, string>>): TableLookup {
  return { version, get: (k) => rows.get(k) };
}

/** One partition's pipeline, driven by ops as its worker would drive it; `rows` gathers what it hands over. */
class Partition {
  pipe!: PartitionPipeline;
  views: View[] = [];
  table: TableLookup | null = null;
  parts: ViewDelta[] = [];
  late: string[] = [];
  constructor(readonly series: SeriesDef[]) {
    this.fresh();
  }

  fresh(): void {
    this.pipe = new PartitionPipeline({ specs, latenessMs, seriesMax: 10_000, rollups: rollupsFor(specs), views: this.views });
    for (const s of this.series) this.pipe.addSeries(s.sid, s.name, s.tags);
    if (this.table !== null) this.pipe.setTable("users", this.table);
  }

  apply(op: Op): void {
    if (op.k === "batch") {
      const n = op.evs.length;
      this.pipe.handleBatch({ n, sid: Uint32Array.from(op.evs, (e) => e.s.sid), ts: Float64Array.from(op.evs, (e) => e.ts), value: Float64Array.from(op.evs, (e) => e.value), recvMs: op.recvMs });
    } else if (op.k === "tick") {
      this.pipe.tick(op.nowMs);
    } else if (op.k === "table") {
      this.table = lookup(op.version, op.rows);
      this.pipe.setTable("users", this.table);
    } else if (op.k === "views") {
      this.views = op.list;
      this.pipe.setViews(op.list);
    } else {
      this.pipe.flushViews(op.k === "stop");
    }
    this.drain();
  }

  drain(): void {
    const out = this.pipe.take(1_000_000);
    this.parts.push(...out.v);
    for (const [sid, ts, value] of out.late) this.late.push(`${sid}|${ts}|${value}`);
  }

  /** What a checkpoint holds, and where the gathered output stood at it. */
  checkpoint(): { snap: unknown; parts: number; late: number } {
    return { snap: structuredClone(this.pipe.snapshot()), parts: this.parts.length, late: this.late.length };
  }

  restoreFrom(ck: { snap: unknown; parts: number; late: number }): void {
    this.parts.length = ck.parts;
    this.late.length = ck.late;
    this.fresh();
    this.pipe.restore(ck.snap as ReturnType<PartitionPipeline["snapshot"]>);
  }
}

type Recount = Map<string, { count: number; sum: number; min: number; max: number; values: number[]; users: Set<string> }>;

/** Per view key and window start, the events each view takes: those not reported late (`late`: per partition), joined with the table of their step. */
function recount(events: Ev[], lateRows: string[][], tables: Array<Map<string, Record<string, string>>>, newcomerFrom: number, set: readonly View[]): { want: Recount; lateCount: number } {
  const late = lateRows.map((rows) => {
    const m = new Map<string, number>();
    for (const k of rows) m.set(k, (m.get(k) ?? 0) + 1);
    return m;
  });
  const want: Recount = new Map();
  let lateCount = 0;
  for (const e of events) {
    const lk = `${e.s.sid}|${e.ts}|${e.value}`;
    if ((late[e.s.p].get(lk) ?? 0) > 0) {
      late[e.s.p].set(lk, late[e.s.p].get(lk)! - 1);
      lateCount++;
      continue;
    }
    const row = tables[e.step].get(e.s.tags.user);
    for (const v of set) {
      if (v.name === "newcomer" && e.step < newcomerFrom) continue;
      if (!(v.fromName === null ? v.fromRe!.test(e.s.name) : v.fromName === e.s.name)) continue;
      if (v.name === "big" && !(e.value > 60)) continue;
      const tags: Record<string, string> = {};
      for (const g of v.groupBy) tags[g.tag] = (g.kind === "tag" ? e.s.tags[g.key] : g.kind === "name" ? e.s.name : row?.[g.column]) ?? "unknown";
      const key = seriesKey(v.seriesName, tags);
      for (let start = Math.floor(e.ts / v.window.slideMs) * v.window.slideMs; start > e.ts - v.window.sizeMs; start -= v.window.slideMs) {
        const k = `${key}|${start}`;
        const w = want.get(k) ?? { count: 0, sum: 0, min: Infinity, max: -Infinity, values: [], users: new Set<string>() };
        w.count++;
        w.sum += e.value;
        w.min = Math.min(w.min, e.value);
        w.max = Math.max(w.max, e.value);
        w.values.push(e.value);
        w.users.add(e.s.tags.user);
        want.set(k, w);
      }
    }
  }
  expect(late.every((m) => [...m.values()].every((n) => n === 0))).toBe(true); // every late row was an event sent
  return { want, lateCount };
}

/** The parts merged as the store merges them (in a shuffled order) equal the recount, window by window. */
function expectMerged(parts: ViewDelta[], want: Recount, rand: () => number): void {
  const all = [...parts];
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [all[i], all[j]] = [all[j], all[i]];
  }
  const merged = new Map<string, ViewAgg>();
  for (const d of all) {
    const k = `${d.k}|${d.s}`;
    const m = merged.get(k);
    if (m === undefined) merged.set(k, ViewAgg.restore(d.a));
    else m.merge(ViewAgg.restore(d.a));
  }
  expect([...merged.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [k, w] of want) {
    const r = merged.get(k)!.result();
    const got: Record<string, unknown> = { k, count: r.count, sum: r.sum, min: r.min, max: r.max };
    const exp: Record<string, unknown> = { k, count: w.count, sum: w.sum, min: w.min, max: w.max };
    if (k.startsWith("view.by_segment")) {
      const sorted = [...w.values].sort((a, b) => a - b);
      const p50 = sorted[Math.ceil(0.5 * sorted.length) - 1];
      [got.distinct, exp.distinct] = [r.distinct, w.users.size];
      // Exact up to limits.sketchExactMax values (the pane sketches merged as raw values), past it within the sketch's error.
      if (w.count <= limits.sketchExactMax) [got.p50, exp.p50] = [r.p50, p50];
      else expect(Math.abs(r.p50! - p50)).toBeLessThanOrEqual(0.02 * p50);
    }
    expect(got).toEqual(exp);
  }
}

describe("views - fed by pane", () => {
  // Without a view fed per event the window actor hands the pipeline no event at all, but while a series is cut.
  for (const perEvent of [true, false]) {
  test(`views - panes${perEvent ? ", per-event views" : " only"}, table changes, a new view, a stop and a crash: every view window equals the recount of the accepted events, with the table as it stood at each event`, () => {
    const first = perEvent ? [views.by_segment, views.sliding, views.big, views.running] : [views.by_segment, views.sliding];
    const all = [...first, views.newcomer];
    const rand = mulberry32(seed);
    let rows = new Map<string, Record<string, string>>();
    for (let u = 0; u < 24; u++) rows.set(`u${u}`, { segment: ["new", "loyal", "vip"][u % 3] });
    let version = 1;
    // Series: user × event × page; u22 goes quiet after a third of the run, u23 sends 40 s behind the clock.
    const series: SeriesDef[] = [];
    const next = new Array<number>(partitions).fill(0);
    for (let u = 0; u < 24; u++) {
      for (const name of ["shop.view", "shop.click", "shop.purchase"]) {
        for (const page of ["/", "/cart"]) {
          const tags = { user: `u${u}`, page };
          const key = seriesKey(name, tags);
          const p = partitionOf(key, partitions);
          series.push({ key, name, tags, p, sid: next[p]++ });
        }
      }
    }
    const parts = Array.from({ length: partitions }, (_, p) => new Partition(series.filter((s) => s.p === p)));
    const ops: Op[][] = parts.map(() => []);
    const both = (op: Op) => ops.forEach((o) => o.push(op));
    both({ k: "table", version, rows });
    both({ k: "views", list: first });

    // The stream, recorded per partition as ops; each event's step (its place in the ops) for the recount.
    const events: Ev[] = [];
    const tables: Array<Map<string, Record<string, string>>> = []; // per step: the table the partitions held
    const viewsFrom = { newcomer: Infinity };
    const batches = 160;
    let clock = 1_763_900_000_000;
    const used = new Set<string>();
    let step = 0;
    for (let b = 0; b < batches; b++) {
      const pending: Ev[][] = parts.map(() => []);
      for (let i = 0; i < 60; i++) {
        clock += 40 + Math.floor(rand() * 40);
        let s = series[Math.floor(rand() * series.length)];
        if (s.tags.user === "u22" && b > batches / 3) s = series[0]; // quiet from here on
        const behind = s.tags.user === "u23" ? 40_000 : 0;
        let ts = clock - behind - Math.floor(rand() * 5_000); // out of order by up to 5 s: some late
        while (used.has(`${s.key}|${ts}`)) ts++;
        used.add(`${s.key}|${ts}`);
        const value = 1 + Math.floor(rand() * 100);
        const e = { s, ts, value, step };
        events.push(e);
        pending[s.p].push(e);
      }
      for (let p = 0; p < partitions; p++) if (pending[p].length > 0) ops[p].push({ k: "batch", evs: pending[p], recvMs: clock });
      tables[step] = rows;
      step++;
      if (b % 7 === 3) both({ k: "tick", nowMs: clock + 500 });
      if (b % 5 === 4) both({ k: "checkpoint" });
      if (b % 23 === 11) {
        // A change mid-stream: two users move, one leaves the table (its events group under "unknown" from here).
        rows = new Map(rows);
        const a = `u${Math.floor(rand() * 22)}`;
        const c = `u${Math.floor(rand() * 22)}`;
        rows.set(a, { segment: rows.get(a)?.segment === "vip" ? "new" : "vip" });
        rows.delete(c);
        both({ k: "table", version: ++version, rows });
      }
      if (b === 60) {
        both({ k: "views", list: all });
        viewsFrom.newcomer = step;
      }
      if (b === 90) ops[0].push({ k: "stop" });
    }
    // The end: time passes (every producer's panes close, the quiet and the slow ones' by the quiet rule), then a stop.
    both({ k: "tick", nowMs: clock + 600_000 });
    both({ k: "stop" });

    // Partition 0 runs through, stopped and restarted at its "stop" op; partition 1 crashes 3 ops after a checkpoint
    // halfway and is restored from that checkpoint, the ops since replayed.
    for (const op of ops[0]) {
      parts[0].apply(op);
      if (op.k === "stop" && op !== ops[0].at(-1)) {
        // The stop's take holds every event partition 0 handled so far, its open panes' too (cut).
        const handled = ops[0].slice(0, ops[0].indexOf(op)).flatMap((o) => (o.k === "batch" ? o.evs : []));
        expectMerged(parts[0].parts, recount(handled, [parts[0].late, []], tables, viewsFrom.newcomer, all).want, rand);
        parts[0].restoreFrom(parts[0].checkpoint());
      }
    }
    const crashAt = ops[1].findIndex((op, i) => op.k === "checkpoint" && i > ops[1].length / 2);
    expect(crashAt).toBeGreaterThan(0);
    let ck: ReturnType<Partition["checkpoint"]> | null = null;
    for (let i = 0; i < ops[1].length; i++) {
      parts[1].apply(ops[1][i]);
      if (i === crashAt) ck = parts[1].checkpoint();
      if (i === crashAt + 3) {
        parts[1].restoreFrom(ck!);
        for (let j = crashAt + 1; j <= i; j++) parts[1].apply(ops[1][j]);
      }
    }

    const { want, lateCount } = recount(events, parts.map((p) => p.late), tables, viewsFrom.newcomer, all);
    expect(lateCount).toBeGreaterThan(10);
    expect(lateCount).toBeLessThan(events.length / 5);
    expectMerged(parts.flatMap((p) => p.parts), want, rand);
    // The stream reached every kind of window it means to test.
    const prefixes = all.map((v) => v.seriesName);
    for (const pre of prefixes) expect([...want.keys()].filter((k) => k.startsWith(pre)).length).toBeGreaterThan(3);
    expect([...want.keys()].some((k) => k.includes('segment="unknown"'))).toBe(true);
  }, 60_000);
  }
});
