/**
 * Continuous views, the pure parts: a view's definition validated with
 * errors naming the path; the partitions' parts (ViewSet) merged by view,
 * group and window (ViewAgg) equal to a naive recount of the events, for
 * seeded streams split over partitions, taken at random moments, with
 * joins, where conditions, sliding windows, percentiles and count_distinct;
 * the distinct counter exact up to its bound and within its error past it.
 */
import { describe, expect, test } from "bun:test";
import { mulberry32 } from "./helpers/prng.ts";
import { ViewAgg } from "../src/actors/views/view-agg.ts";
import { DistinctCounter } from "../src/actors/views/distinct.ts";
import { ViewSet, type ViewDelta } from "../src/actors/views/view-set.ts";
import { parseView, ViewError } from "../src/actors/views/view.ts";
import { partitionOf, seriesKey } from "../src/runtime/series.ts";

const seed = Number(process.env.VIEWS_SEED ?? 20261205);
console.log(`views tests: seed ${seed} (VIEWS_SEED=… to change)`);

describe("views - definitions", () => {
  test("views - a good definition compiles: joined columns become tags named by the column, defaults filled", () => {
    const v = parseView({
      name: "revenue_by_segment", from: "shop.purchase", where: { country: "DE", "users.tier": "!=free", value: "> 0" },
      join: { table: "users", on: "user" }, group_by: ["users.segment", "page"], window: "5m/1m", aggregates: ["sum", "count", "avg", "p99"], having: "count > 100",
    });
    expect(v.seriesName).toBe("view.revenue_by_segment");
    expect(v.groupBy).toEqual([{ kind: "column", table: "users", column: "segment", tag: "segment" }, { kind: "tag", key: "page", tag: "page" }]);
    expect(v.where).toEqual([
      { kind: "tag", key: "country", table: null, negate: false, value: "DE", re: null },
      { kind: "tag", key: "tier", table: "users", negate: true, value: "free", re: null },
      { kind: "value", op: ">", threshold: 0 },
    ]);
    expect([v.window, v.emit, v.sketch, v.having]).toEqual([{ label: "5m/1m", sizeMs: 300_000, slideMs: 60_000 }, "final", true, { agg: "count", op: ">", threshold: 100, text: "count > 100" }]);
  });

  test("views - each fault is named by its path", () => {
    const bad = (def: object) => {
      try {
        parseView({ name: "v", from: "shop.*", window: "1m", ...def }, { path: "views[2]" });
      } catch (e) {
        expect(e).toBeInstanceOf(ViewError);
        return (e as Error).message;
      }
      return "accepted";
    };
    expect(bad({ name: "no spaces" })).toBe("views[2].name: must be letters, digits or _, starting with a letter or _");
    expect(bad({ window: "1x" })).toMatch(/^views\[2\]\.window: /);
    expect(bad({ window: "1m,10s" })).toBe("views[2].window: one window spec, such as 1m or 5m/1m");
    expect(bad({ window: "2h/1m" })).toBe("views[2].window: a sliding window of at most 60 slides");
    expect(bad({ group_by: ["users.segment"] })).toBe('views[2].group_by[0]: "users.segment" reads table users, which the view does not join (join: {table: users, on: <tag>})');
    expect(bad({ group_by: ["page", "page"] })).toBe('views[2].group_by[1]: two parts of the group would both be tag "page"');
    expect(bad({ where: { value: "big" } })).toBe('views[2].where.value: must be a comparison such as "> 10"');
    expect(bad({ aggregates: ["count_distinct"] })).toBe("views[2].distinct: count_distinct needs the tag it counts (distinct: user)");
    expect(bad({ having: "sum > 3" })).toBe('views[2].having: "sum" is not among the view\'s aggregates (count)');
    expect(bad({ having: "lots" })).toBe('views[2].having: must be "<aggregate> <op> <number>", such as count > 100');
    expect(bad({ aggregates: ["median"] })).toMatch(/^views\[2\]\.aggregates\[0\]: /);
    expect(bad({ emit: "sometimes" })).toMatch(/^views\[2\]\.emit: /);
    expect(bad({ extra: 1 })).toMatch(/^views\[2\]/);
  });
});

interface Ev { sid: number; name: string; tags: Record<string, string>; ts: number; value: number }

/** The recount: per view key (group series key, window start), straight from the events and the table. */
function recount(events: Ev[], users: Map<string, Record<string, string>>, sizeMs: number, slideMs: number) {
  const out = new Map<string, { count: number; sum: number; min: number; max: number; values: number[]; users: Set<string>; firstTs: number; first: number; lastTs: number; last: number }>();
  for (const e of events) {
    if (!e.name.startsWith("shop.") || e.value <= 0) continue;
    const row = users.get(e.tags.user);
    if (row?.country === "FR") continue; // where users.country != FR
    const key = seriesKey("view.v", { segment: row?.segment ?? "unknown", kind: e.tags.kind });
    for (let start = Math.floor(e.ts / slideMs) * slideMs; start > e.ts - sizeMs; start -= slideMs) {
      const k = `${key}|${start}`;
      const w = out.get(k) ?? { count: 0, sum: 0, min: Infinity, max: -Infinity, values: [], users: new Set<string>(), firstTs: Infinity, first: NaN, lastTs: -Infinity, last: NaN };
      w.count++;
      w.sum += e.value;
      w.min = Math.min(w.min, e.value);
      w.max = Math.max(w.max, e.value);
      w.values.push(e.value);
      w.users.add(e.tags.user);
      if (e.ts < w.firstTs || (e.ts === w.firstTs && e.value < w.first)) [w.firstTs, w.first] = [e.ts, e.value];
      if (e.ts > w.lastTs || (e.ts === w.lastTs && e.value > w.last)) [w.lastTs, w.last] = [e.ts, e.value];
      out.set(k, w);
    }
  }
  return out;
}

describe("views - the partitions' parts merged equal a recount", () => {
  for (const [label, sizeMs, slideMs] of [["1m", 60_000, 60_000], ["3m/1m", 180_000, 60_000]] as const) {
    test(`views - ${label}: seeded events over 3 partitions, deltas taken at random moments and merged in a shuffled order, equal the recount (count, sum, min, max, first, last, p50 exact, count_distinct exact)`, () => {
      const rand = mulberry32(seed + sizeMs);
      const users = new Map<string, Record<string, string>>();
      for (let u = 0; u < 30; u++) users.set(`u${u}`, { segment: ["new", "loyal", "vip"][u % 3], country: u % 7 === 0 ? "FR" : "DE" });
      const view = parseView({
        name: "v", from: "shop.*", where: { "users.country": "!=FR", value: "> 0" }, join: { table: "users", on: "user" },
        group_by: ["users.segment", "kind"], window: label, aggregates: ["count", "sum", "min", "max", "p50", "count_distinct"], distinct: "user",
      });
      const partitions = 3;
      const sets = Array.from({ length: partitions }, () => new ViewSet([view]));
      for (const s of sets) s.setTable("users", { version: 1, get: (k) => users.get(k) });
      // Series: user × kind (some users missing from the table: "unknown"); one series id space per partition.
      const series: Array<{ key: string; name: string; tags: Record<string, string>; p: number; sid: number }> = [];
      const local = new Array<number>(partitions).fill(0);
      for (let u = 0; u < 35; u++) {
        for (const kind of ["view", "click", "purchase"]) {
          const name = kind === "purchase" ? "shop.purchase" : `shop.${kind}`;
          const tags = { user: `u${u}`, kind };
          const key = seriesKey(name, tags);
          const p = partitionOf(key, partitions);
          series.push({ key, name, tags, p, sid: local[p]++ });
        }
      }
      const events: Ev[] = [];
      const deltas: ViewDelta[] = [];
      let t = 1_763_800_000_000;
      for (let i = 0; i < 6_000; i++) {
        t += Math.floor(rand() * 200);
        const s = series[Math.floor(rand() * series.length)];
        const value = Math.floor(rand() * 100) - 10; // some ≤ 0: where value > 0
        const ts = t - Math.floor(rand() * 30_000); // out of order within 30 s
        events.push({ sid: s.sid, name: s.name, tags: s.tags, ts, value });
        sets[s.p].onEvent(s.sid, s, ts, value);
        if (rand() < 0.01) deltas.push(...sets[Math.floor(rand() * partitions)].takeDeltas());
      }
      for (const s of sets) deltas.push(...s.takeDeltas());
      for (let i = deltas.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [deltas[i], deltas[j]] = [deltas[j], deltas[i]];
      }
      const merged = new Map<string, ViewAgg>();
      for (const d of deltas) {
        const k = `${d.k}|${d.s}`;
        const a = ViewAgg.restore(d.a);
        const m = merged.get(k);
        if (m === undefined) merged.set(k, a);
        else m.merge(ViewAgg.restore(a.snapshot())); // through plain data, as the store keeps it
      }
      const want = recount(events, users, sizeMs, slideMs);
      expect([...merged.keys()].sort()).toEqual([...want.keys()].sort());
      expect(want.size).toBeGreaterThan(20);
      for (const [k, w] of want) {
        const r = merged.get(k)!.result();
        const sorted = [...w.values].sort((a, b) => a - b);
        const p50 = sorted[Math.ceil(0.5 * sorted.length) - 1];
        expect({ k, count: r.count, sum: r.sum, min: r.min, max: r.max, first: r.first, last: r.last, distinct: r.distinct })
          .toEqual({ k, count: w.count, sum: w.sum, min: w.min, max: w.max, first: w.first, last: w.last, distinct: w.users.size });
        if (w.count <= 100) expect(r.p50).toBe(p50); // the sketch is exact up to limits.sketchExactMax values
      }
    });
  }

  test("views - a table change re-binds: events before it group by the old row, after it by the new one; a missing row groups under unknown", () => {
    const view = parseView({ name: "v", from: "shop.*", join: { table: "users", on: "user" }, group_by: ["users.segment"], window: "1m" });
    const set = new ViewSet([view]);
    let rows = new Map([["u1", { segment: "new" }]]);
    set.setTable("users", { version: 1, get: (k) => rows.get(k) });
    const s = { key: 'shop.view{user="u1"}', name: "shop.view", tags: { user: "u1" } };
    const s2 = { key: 'shop.view{user="u2"}', name: "shop.view", tags: { user: "u2" } };
    set.onEvent(0, s, 1_000, 1);
    set.onEvent(1, s2, 1_000, 1);
    rows = new Map([["u1", { segment: "vip" }]]);
    set.setTable("users", { version: 2, get: (k) => rows.get(k) });
    set.onEvent(0, s, 2_000, 1);
    const got = set.takeDeltas().map((d) => [d.k, d.s, d.a.n]).sort();
    expect(got).toEqual([['view.v{segment="new"}', 0, 1], ['view.v{segment="unknown"}', 0, 1], ['view.v{segment="vip"}', 0, 1]]);
    expect(set.takeDeltas()).toEqual([]);
  });

  test("views - group_by name groups by the event's name (not a tag called name), beside a joined column", () => {
    const view = parseView({ name: "v", from: "shop.*", join: { table: "users", on: "user" }, group_by: ["users.segment", "name"], window: "1m" });
    expect(view.groupBy).toEqual([{ kind: "column", table: "users", column: "segment", tag: "segment" }, { kind: "name", tag: "name" }]);
    const set = new ViewSet([view]);
    set.setTable("users", { version: 1, get: (k) => (k === "u1" ? { segment: "vip" } : undefined) });
    set.onEvent(0, { key: 'shop.view{name="x",user="u1"}', name: "shop.view", tags: { name: "x", user: "u1" } }, 1_000, 1);
    set.onEvent(1, { key: 'shop.click{user="u1"}', name: "shop.click", tags: { user: "u1" } }, 2_000, 1);
    set.onEvent(0, { key: 'shop.view{name="x",user="u1"}', name: "shop.view", tags: { name: "x", user: "u1" } }, 3_000, 1);
    const got = set.takeDeltas().map((d) => [d.k, d.a.n]).sort();
    expect(got).toEqual([['view.v{name="shop.click",segment="vip"}', 1], ['view.v{name="shop.view",segment="vip"}', 2]]);
  });

  test("views - the open aggregates survive a snapshot and restore, and a view put again unchanged keeps them; a changed one drops them", () => {
    const def = { name: "v", from: "a", window: "1m", aggregates: ["sum"] };
    const set = new ViewSet([parseView(def)]);
    const s = { key: "a", name: "a", tags: {} };
    set.onEvent(0, s, 5_000, 2);
    const copy = new ViewSet([parseView(def)]);
    copy.restore(structuredClone(set.snapshot()));
    copy.onEvent(0, s, 6_000, 3);
    copy.setViews([parseView(def)]);
    expect(copy.takeDeltas().map((d) => [d.k, d.a.sum])).toEqual([["view.v", 5]]);
    copy.onEvent(0, s, 6_000, 3);
    copy.setViews([parseView({ ...def, window: "2m" })]);
    expect(copy.takeDeltas()).toEqual([]);
  });
});

describe("views - when parts are taken", () => {
  test("views - an emit: final view's part stays open until its window is complete here (then it is taken once); emit: changes parts go at every take; all at a stop; held parts are in the snapshot", () => {
    const fin = parseView({ name: "f", from: "a", window: "1m", aggregates: ["count"] });
    const chg = parseView({ name: "c", from: "a", window: "1m", aggregates: ["count"], emit: "changes" });
    const set = new ViewSet([fin, chg]);
    const s = { key: "a", name: "a", tags: {} };
    set.onEvent(0, s, 5_000, 1);
    set.onEvent(0, s, 65_000, 1);
    expect(set.openEndMin()).toBe(60_000);
    // Complete before 59 s: nothing of f; both windows of c.
    expect(set.takeDeltas(59_000).map((d) => [d.v, d.s, d.a.n])).toEqual([["c", 0, 1], ["c", 60_000, 1]]);
    expect(set.openEndMin()).toBe(60_000);
    const copy = new ViewSet([fin, chg]);
    copy.restore(structuredClone(set.snapshot()));
    set.onEvent(0, s, 6_000, 1);
    // Complete before 60 s: f's first window (both events), not its second; c's part of the new event.
    expect(set.takeDeltas(60_000).map((d) => [d.v, d.s, d.a.n])).toEqual([["f", 0, 2], ["c", 0, 1]]);
    expect(set.takeDeltas(60_000)).toEqual([]);
    expect(set.takeDeltas().map((d) => [d.v, d.s, d.a.n])).toEqual([["f", 60_000, 1]]); // a stop: all
    expect(copy.takeDeltas().map((d) => [d.v, d.s, d.a.n]).sort()).toEqual([["f", 0, 1], ["f", 60_000, 1]]); // the held parts were in the snapshot
  });
});

describe("views - bounds", () => {
  test("views - past its bound of open aggregates an event's update is refused and counted; the open ones still take events; after a take there is room again", () => {
    const set = new ViewSet([parseView({ name: "v", from: "a", group_by: ["user"], window: "1m", aggregates: ["count"] })], 2);
    const s = (user: string) => ({ key: `a{user=${user}}`, name: "a", tags: { user } });
    set.onEvent(0, s("u1"), 1_000, 1);
    set.onEvent(1, s("u2"), 1_000, 1);
    set.onEvent(2, s("u3"), 1_000, 1); // a third group: refused
    set.onEvent(0, s("u1"), 2_000, 1); // an open one: taken
    set.onEvent(0, s("u1"), 61_000, 1); // u1's next window: refused too
    expect(set.refused).toBe(2);
    expect(set.takeDeltas().map((d) => [d.k, d.s, d.a.n])).toEqual([['view.v{user="u1"}', 0, 2], ['view.v{user="u2"}', 0, 1]]);
    set.onEvent(2, s("u3"), 1_000, 1);
    expect(set.takeDeltas().map((d) => [d.k, d.a.n])).toEqual([['view.v{user="u3"}', 1]]);
    expect(set.snapshot().refused).toBe(2); // kept in the checkpoint: the metric does not go back after a restart
  });
});

describe("views - count_distinct", () => {
  test("views - exact up to its bound; past it within 5 % (HyperLogLog, ±1.6 % standard error), merged in any order", () => {
    const small = new DistinctCounter();
    for (let i = 0; i < 200; i++) small.add(`u${i % 150}`);
    expect(small.estimate()).toBe(150);
    const parts = Array.from({ length: 4 }, () => new DistinctCounter());
    for (let i = 0; i < 50_000; i++) parts[i % 4].add(`user-${i % 20_000}`);
    const a = DistinctCounter.restore(parts[0].snapshot());
    for (const p of parts.slice(1)) a.merge(p);
    const b = new DistinctCounter();
    for (const p of [...parts].reverse()) b.merge(DistinctCounter.restore(p.snapshot()));
    expect(a.estimate()).toBe(b.estimate());
    expect(Math.abs(a.estimate() - 20_000) / 20_000).toBeLessThan(0.05);
  });
});
