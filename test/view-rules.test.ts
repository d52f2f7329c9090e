/**
 * The rules on views' judging (src/engine/view-rules.ts) against a real
 * SQLite store: a view window is judged only once the frontier passes its
 * end, in order of end; the transitions, the rule set's state and the point
 * judged to are written together and a new instance on the same store goes
 * on from there; a part of a judged window is counted late; past
 * limits.viewRuleWindowsPendingMax the oldest windows are judged early.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseRule } from "../src/actors/rules/rule.ts";
import type { RuleTransition } from "../src/actors/rules/rule-set.ts";
import { StoreWrites, type ViewWindow, type WindowRecord } from "../src/actors/store.ts";
import { parseView } from "../src/actors/views/view.ts";
import { ViewRules } from "../src/engine/view-rules.ts";
import { limits } from "../src/runtime/limits.ts";
import { silentLog } from "../src/runtime/log.ts";
import { openStore } from "../src/storage/db.ts";
import type { StoreWriter } from "../src/storage/store-writer.ts";

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function store() {
  const dir = mkdtempSync(join(tmpdir(), "weir-view-rules-unit-"));
  const db = openStore(join(dir, "weir.db"));
  cleanups.push(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const writes = new StoreWrites(db);
  const writer = { commitViewRules: async (c: Parameters<StoreWrites["commitViewRules"]>[0]) => writes.commitViewRules(c) } as unknown as StoreWriter;
  return { db, writer };
}

function rules(s: ReturnType<typeof store>, got: RuleTransition[]): ViewRules {
  const vr = ViewRules.load({ db: s.db, writer: () => s.writer, log: silentLog, committed: (rows) => got.push(...rows) });
  vr.setViews([parseView({ name: "v", from: "x.*", group_by: ["host"], window: "10s", aggregates: ["count"] })]);
  vr.setRules([parseRule({ name: "many", expr: "count(view.v) > 5" }), parseRule({ name: "other", expr: "count(cpu) > 5" })]);
  return vr;
}

const series = 'view.v{host="a"}';
function win(start: number, count: number, key = series): ViewWindow {
  const record: WindowRecord = { series: key, window: "10s", start, end: start + 10_000, count, sum: count, min: 1, max: 1, avg: 1, p50: NaN, p95: NaN, p99: NaN, first: 1, last: 1 };
  return { view: "v", record, distinct: null, tags: { host: "a" }, hit: null };
}
const brief = (ts: RuleTransition[]) => ts.map((t) => [t.rule, t.series, t.state, t.ts, t.value]);

describe("view rules - judging view windows", () => {
  test("judged once the frontier passes their end, in order of end; only rules that pick a view's series; a late part is counted", async () => {
    const s = store();
    const got: RuleTransition[] = [];
    const vr = rules(s, got);
    expect(vr.active).toBe(true);
    vr.merged([win(10_000, 9), win(0, 2)]);
    vr.frontier(9_999);
    await vr.idle();
    expect(got).toEqual([]); // neither window has ended by the frontier
    vr.frontier(20_000);
    await vr.idle();
    // [0, 10 s) 2: no instance moves; [10, 20 s) 9: firing (no `for`).
    expect(brief(got)).toEqual([["many", series, "firing", 20_000, 9]]);
    expect(vr.stats()).toMatchObject({ judgedTo: 20_000, partsLate: 0, pending: 0 });
    vr.part(15_000);
    vr.part(25_000);
    expect(vr.stats().partsLate).toBe(1);
    vr.merged([win(10_000, 1)]); // the merge of that late part: the window stays judged as it stood
    vr.frontier(21_000);
    await vr.idle();
    expect(got.length).toBe(1);
    expect(s.db.query(`SELECT rule, series, state, ts FROM alerts ORDER BY ts`).all()).toEqual([{ rule: "many", series, state: "firing", ts: 20_000 }]);
  });

  test("a new instance on the same store goes on from the point judged to, with the rule set's state", async () => {
    const s = store();
    const got: RuleTransition[] = [];
    const first = rules(s, got);
    first.merged([win(0, 9)]);
    first.frontier(10_000);
    await first.idle();
    expect(brief(got)).toEqual([["many", series, "firing", 10_000, 9]]);
    const again = rules(s, got);
    expect(again.stats().judgedTo).toBe(10_000);
    again.merged([win(0, 9), win(10_000, 1)]); // [0, 10 s) is judged already: not again
    again.frontier(20_000);
    await again.idle();
    expect(brief(got)).toEqual([["many", series, "firing", 10_000, 9], ["many", series, "resolved", 20_000, 1]]);
  });

  test("past viewRuleWindowsPendingMax waiting windows the oldest are judged early, whole ends at a time, and counted", async () => {
    const s = store();
    const got: RuleTransition[] = [];
    const vr = rules(s, got);
    const n = limits.viewRuleWindowsPendingMax + 3;
    const rows: ViewWindow[] = [];
    for (let i = 0; i < n; i++) rows.push(win(Math.floor(i / 2) * 10_000, i < 2 ? 9 : 1, `view.v{host="h${i % 2}"}`));
    vr.merged(rows);
    await vr.idle();
    const st = vr.stats();
    expect(st.judgedEarly).toBe(4); // 3 over, rounded up to whole ends (two series per end)
    expect(st.pending).toBe(n - 4);
    expect(st.judgedTo).toBe(20_000);
    expect(brief(got)).toEqual([["many", 'view.v{host="h0"}', "firing", 10_000, 9], ["many", 'view.v{host="h1"}', "firing", 10_000, 9],
      ["many", 'view.v{host="h0"}', "resolved", 20_000, 1], ["many", 'view.v{host="h1"}', "resolved", 20_000, 1]]);
  });

  test("no rule on a view: nothing judged, nothing written", async () => {
    const s = store();
    const vr = ViewRules.load({ db: s.db, writer: () => s.writer, log: silentLog, committed: () => {} });
    vr.setViews([parseView({ name: "v", from: "x.*", window: "10s", aggregates: ["count"] })]);
    vr.setRules([parseRule({ name: "other", expr: "count(cpu) > 5" })]);
    expect(vr.active).toBe(false);
    vr.merged([win(0, 9)]);
    vr.frontier(10_000);
    await vr.idle();
    expect(s.db.query(`SELECT count(*) AS n FROM view_rules`).get()).toEqual({ n: 0 });
  });
});
