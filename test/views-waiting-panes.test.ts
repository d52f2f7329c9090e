/**
 * The views' waiting panes (view-set.ts "Waiting panes", waiting-panes.ts),
 * kept pane by pane, against the walk over every open pane they replaced:
 * after every step of a seeded stream, panesWaiting equals the walk's answer
 * (the earliest open pane of a series that a view fed by pane reads, not
 * below its cut; whether one ended by the clock less viewPartsHoldMsMax),
 * and each cutStale cuts exactly the series the walk cut, to the same
 * bounds, feeding the views the same events. The stream: series on their
 * own clocks (real time, 5 s, 15 s, 40 s and 150 s behind), some events out
 * of order or late, some series registered only later, the quiet rule's
 * ticks, the joined table and the views changed (fed by pane, by event, or
 * none), stops, takes, and restarts from a snapshot (the index built again
 * in slices as the pipeline does, or left to its next use).
 * VIEWS_WAITING_SEED=<n> replays one seed.
 */
import { describe, expect, test } from "bun:test";
import { mulberry32 } from "./helpers/prng.ts";
import { type SeriesRef, type TableLookup, ViewSet, windowPanes } from "../src/actors/views/view-set.ts";
import { parseView, type View } from "../src/actors/views/view.ts";
import { createWindowLogic, type WindowLogic, type WindowSnapshot, type WindowState } from "../src/actors/window.ts";
import { paneMsOf, parseWindowSpecs } from "../src/actors/window-spec.ts";
import { limits } from "../src/runtime/limits.ts";
import { runSlices } from "../src/runtime/slices.ts";

const specs = parseWindowSpecs("10s,60s/10s");
const P = paneMsOf(specs);
/** The default, and one longer than a pane: a pane can then open below one already waiting (between a cut and it). */
const latenessesMs = [2_000, 25_000];
const seriesCount = 24;
const lagsMs = [0, 5_000, 15_000, 40_000, 150_000];
const steps = 500;
const t0 = 1_760_000_000_000;
const seeds = process.env.VIEWS_WAITING_SEED !== undefined ? [Number(process.env.VIEWS_WAITING_SEED)] : Array.from({ length: 12 }, (_, i) => 20261207 + i);

const byUser = parseView({ name: "by_user", from: "a.*", group_by: ["user"], window: "1m", aggregates: ["count"] });
const joined = parseView({ name: "joined", from: "a.*", join: { table: "t", on: "user" }, where: { "t.seg": "x" }, group_by: ["t.seg"], window: "1m", aggregates: ["count"] });
const running = parseView({ name: "running", from: "*", group_by: ["user"], window: "1m", aggregates: ["count"], emit: "changes" });
/** The view sets the stream switches between: fed by pane, by pane through the table, by event only, none. */
const viewSets: View[][] = [[byUser, running], [joined], [running], [byUser, joined], []];

/** A window actor and the views over its panes, wired as PartitionPipeline wires them. */
class Harness {
  window!: WindowLogic;
  st!: WindowState;
  set!: ViewSet;
  views: View[] = viewSets[0];
  /** user → segment, and the table's version. */
  segs = new Map<string, string>();
  version = 0;
  readonly refs: Array<SeriesRef | undefined> = [];

  constructor(readonly rand: () => number, readonly latenessMs = latenessesMs[0]) {
    for (let sid = 0; sid < seriesCount; sid++) if (sid % 4 !== 3) this.register(sid);
    this.newTable();
    this.fresh();
  }

  /** A new incarnation: window actor and views set up before any pane, as the pipeline's constructor does. */
  fresh(): void {
    this.window = createWindowLogic({ specs, latenessMs: this.latenessMs, seriesMax: seriesCount });
    this.st = this.window.init();
    this.set = new ViewSet();
    this.set.setPanes(windowPanes(this.window, () => this.st, P, (sid) => this.refs[sid]));
    this.set.setTable("t", this.table());
    this.set.setViews(this.views);
    this.wire();
  }

  /** PartitionPipeline.hookAccepted. */
  wire(): void {
    const active = this.set.active;
    this.window.onAccepted(this.set.needsEvents ? (sid, ts, value) => {
      const s = this.refs[sid];
      if (s !== undefined) this.set.onEvent(sid, s, ts, value);
    } : null);
    this.window.onPaneClosed(active ? (sid, pane) => {
      const s = this.refs[sid];
      if (s !== undefined) this.set.onPane(sid, s, pane);
    } : null);
    this.window.onPaneOpened(active ? this.set.paneOpened : null);
  }

  register(sid: number): void {
    this.refs[sid] = { key: `s${sid}`, name: `${sid % 3 === 1 ? "b" : "a"}.s${sid}`, tags: { user: `u${sid % 6}` } };
    this.set?.seriesAdded(sid);
  }

  newTable(): void {
    for (let u = 0; u < 6; u++) if (this.rand() < 0.5) this.segs.set(`u${u}`, this.rand() < 0.5 ? "x" : "y");
    this.version++;
  }

  table(): TableLookup {
    const rows = new Map([...this.segs].map(([u, seg]) => [u, { seg }]));
    return { version: this.version, get: (k) => rows.get(k) };
  }

  /** From a snapshot of both; the index built again in slices of `slice` series as the pipeline does, or (null) at its next use. */
  restart(slice: number | null): void {
    const w = structuredClone(this.window.snapshot(this.st)) as WindowSnapshot;
    const v = structuredClone(this.set.snapshot());
    this.fresh();
    this.st = this.window.restore(w);
    this.set.restore(v);
    if (slice !== null) runSlices(this.set.reindexSlices(slice));
    this.wire();
  }
}

/** Whether view `v` reads series `s`, by the walk's rules: its name, and for `joined` the table's segment. */
function reads(h: Harness, v: View, s: SeriesRef): boolean {
  if (!v.fromRe!.test(s.name)) return false;
  return v.join === null || h.segs.get(s.tags.user) === "x";
}

const fedViews = (h: Harness) => h.views.filter((v) => v.emit === "final");

function cutsOf(set: ViewSet): Map<number, number> {
  const c = set.snapshot().c ?? [];
  const out = new Map<number, number>();
  for (let i = 0; i < c.length; i += 2) out.set(c[i], c[i + 1]);
  return out;
}

/** What ViewSet.panesWaiting answered when it walked every open pane. */
function walkWaiting(h: Harness, staleBefore: number): { low: number; stale: boolean } {
  const out = { low: Infinity, stale: false };
  if (fedViews(h).length === 0) return out;
  const cuts = cutsOf(h.set);
  h.window.forEachOpenPane(h.st, (sid, pane) => {
    const s = h.refs[sid];
    if (s === undefined || !fedViews(h).some((v) => reads(h, v, s)) || pane.start < (cuts.get(sid) ?? -Infinity)) return;
    out.low = Math.min(out.low, pane.start);
    if (pane.start + P <= staleBefore) out.stale = true;
  });
  return out;
}

/** What cutStale did when it walked every open pane: the cuts after it, and the events it fed each view fed by pane. */
function walkCutStale(h: Harness, before: number): { cuts: Map<number, number>; fed: Record<string, number> } {
  const cuts = cutsOf(h.set);
  const fed: Record<string, number> = {};
  if (fedViews(h).length === 0) return { cuts, fed }; // no view fed by pane: nothing to cut
  let at = -1;
  let cutting = false;
  h.window.forEachOpenPane(h.st, (sid, pane) => {
    if (sid !== at) {
      at = sid;
      cutting = pane.start + P <= before; // the series' oldest open pane
    }
    const s = h.refs[sid];
    if (!cutting || s === undefined) return;
    const cut = cuts.get(sid);
    if (cut === undefined || pane.start >= cut) for (const v of fedViews(h)) if (reads(h, v, s)) fed[v.name] = (fed[v.name] ?? 0) + pane.count;
    if (cut === undefined || pane.start + P > cut) cuts.set(sid, pane.start + P);
  });
  return { cuts, fed };
}

/** Events per view in the parts taken now. */
function takenCounts(set: ViewSet): Record<string, number> {
  const out: Record<string, number> = {};
  for (const d of set.takeDeltas()) out[d.v] = (out[d.v] ?? 0) + d.a.n;
  return out;
}

/** One step of the stream at `nowMs`; answers what it did ("cut": a cutStale that fed some view). */
function step(h: Harness, nowMs: number): string {
  const r = h.rand();
  if (r < 0.45) {
    const n = 1 + Math.floor(h.rand() * 8);
    const sid = Uint32Array.from({ length: n }, () => Math.floor(h.rand() * seriesCount));
    const ts = Float64Array.from(sid, (s) => nowMs - lagsMs[s % lagsMs.length] - Math.floor(h.rand() * 3_000) - (h.rand() < 0.1 ? Math.floor(h.rand() * 20_000) : 0));
    h.window.handle(h.st, { n, sid, ts, value: Float64Array.from(sid, () => 1 + Math.floor(h.rand() * 10)), recvMs: nowMs }, () => {});
    return "batch";
  }
  if (r < 0.6) {
    h.window.tick(h.st, nowMs, () => {});
    return "tick";
  }
  if (r < 0.75) {
    const before = nowMs - limits.viewPartsHoldMsMax;
    const want = walkCutStale(h, before);
    takenCounts(h.set); // what was gathered before: not the cut's
    h.set.cutStale(before);
    expect(cutsOf(h.set)).toEqual(want.cuts);
    const got = takenCounts(h.set);
    for (const v of fedViews(h)) expect(got[v.name] ?? 0).toBe(want.fed[v.name] ?? 0);
    return Object.keys(want.fed).length > 0 ? "cut" : "cutStale";
  }
  if (r < 0.79) {
    const sid = h.refs.findIndex((s) => s === undefined);
    if (sid >= 0) h.register(sid);
    return "register";
  }
  if (r < 0.84) {
    h.newTable();
    h.set.setTable("t", h.table());
    return "table";
  }
  if (r < 0.88) {
    h.views = viewSets[Math.floor(h.rand() * viewSets.length)];
    h.set.setViews(h.views);
    return "views";
  }
  if (r < 0.9) {
    h.set.cutForStop();
    return "stop";
  }
  if (r < 0.95) {
    h.set.takeDeltas(nowMs - 30_000);
    return "take";
  }
  h.restart(h.rand() < 0.7 ? 1 + Math.floor(h.rand() * 5) : null);
  return "restart";
}

describe("views - waiting panes", () => {
  test("views - waiting panes kept pane by pane answer as the walk over every open pane: panesWaiting after every step, and what each cutStale cuts and feeds", () => {
    for (const seed of seeds) {
      console.log(`views - waiting panes: seed ${seed}, lateness ${latenessesMs[seed % latenessesMs.length]} ms (VIEWS_WAITING_SEED=${seed} replays it)`);
      const h = new Harness(mulberry32(seed), latenessesMs[seed % latenessesMs.length]);
      let nowMs = t0;
      const did = new Map<string, number>();
      for (let i = 0; i < steps; i++) {
        // A fifth of the steps on a pane's end: a pane then ends exactly at the stale bound (cut: it ended "by" it).
        nowMs = h.rand() < 0.2 ? (Math.floor(nowMs / P) + 1) * P : nowMs + 200 + Math.floor(h.rand() * 2_800);
        const what = step(h, nowMs);
        did.set(what, (did.get(what) ?? 0) + 1);
        h.wire();
        const staleBefore = nowMs - limits.viewPartsHoldMsMax;
        const want = walkWaiting(h, staleBefore);
        expect({ seed, i, what, ...h.set.panesWaiting(staleBefore) }).toEqual({ seed, i, what, ...want });
        const answer = want.low === Infinity ? "none waiting" : want.stale ? "a stale pane waiting" : "panes waiting";
        did.set(answer, (did.get(answer) ?? 0) + 1);
      }
      // The stream went everywhere: every kind of step, cuts that fed the views, and every kind of answer.
      expect([...did.keys()].sort()).toEqual(
        ["a stale pane waiting", "batch", "cut", "cutStale", "none waiting", "panes waiting", "register", "restart", "stop", "table", "take", "tick", "views"],
      );
    }
  });

  test("views - waiting panes: a pane opening between a series' cut and its first waiting pane (lateness over a pane) is the first one then", () => {
    const h = new Harness(mulberry32(1), latenessesMs[1]);
    const sid = 0; // a.s0: the view by_user reads it
    const send = (ts: number) => h.window.handle(h.st, { n: 1, sid: Uint32Array.of(sid), ts: Float64Array.of(ts), value: Float64Array.of(1), recvMs: ts }, () => {});
    send(t0 + 5_000); // pane A [t0, t0 + 10 s)
    h.set.cutForStop(); // cut at A's end
    send(t0 + 31_000); // pane B: closedBefore t0 + 6 s, A still open below the cut
    expect(h.set.panesWaiting(-Infinity)).toEqual({ low: t0 + 30_000, stale: false });
    send(t0 + 15_000); // between the cut and B, opened after B
    expect(h.set.panesWaiting(-Infinity)).toEqual({ low: t0 + 10_000, stale: false });
    expect(h.set.panesWaiting(-Infinity)).toEqual(walkWaiting(h, -Infinity));
  });

  test("views - waiting panes: a restore finds them again up to the last series id, in slices or at the next use", () => {
    for (const slice of [1, 3, seriesCount, null]) {
      const h = new Harness(mulberry32(1));
      const last = seriesCount - 1; // a series a view fed by pane reads, registered
      h.register(last);
      const ts = t0 - 100_000; // a pane start, long stale at t0
      h.window.handle(h.st, { n: 1, sid: Uint32Array.of(last), ts: Float64Array.of(ts), value: Float64Array.of(1), recvMs: t0 }, () => {});
      const staleBefore = t0 - limits.viewPartsHoldMsMax;
      expect(h.set.panesWaiting(staleBefore)).toEqual({ low: ts, stale: true });
      h.restart(slice);
      expect({ slice, ...h.set.panesWaiting(staleBefore) }).toEqual({ slice, low: ts, stale: true });
      h.set.cutStale(staleBefore);
      expect({ slice, cuts: cutsOf(h.set) }).toEqual({ slice, cuts: new Map([[last, ts + P]]) });
    }
  });
});
