/**
 * GET /api/v1/top over a from/to range of stored windows, and with every
 * ranking aggregate, checked against an independent recount of the events
 * posted: per tag value, sum and count add up over the windows (of every
 * series with that value), avg is Σ sum / Σ count, min and max the extremes,
 * p99 the largest p99 of any one window. Run once over windows written to the
 * file and once over windows only staged (a 10-minute checkpoint interval),
 * plus the read model alone over a store file and staged rows that overlap.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import { DeadLetters } from "../src/actors/deadletters.ts";
import { SeriesRegistry } from "../src/actors/series-registry.ts";
import { StagedResults, type WindowRecord } from "../src/actors/store.ts";
import { loadConfig } from "../src/config.ts";
import { StoreReadModel, type TopQuery } from "../src/engine/read-model.ts";
import { toHttpError } from "../src/http/errors.ts";
import { analyticsRoutes } from "../src/http/routes/analytics.ts";
import { partitionOf } from "../src/runtime/series.ts";
import { openReader, openStore } from "../src/storage/db.ts";
import { mulberry32 } from "./helpers/prng.ts";
import { recountWindow } from "./helpers/recount.ts";
import { waitFor } from "./helpers/wait.ts";
import { postEvents, startTestWeir, type TestWeir } from "./helpers/weir.ts";

type Agg = TopQuery["agg"];
interface Ev { name: string; value: number; ts: number; tags: Record<string, string> }
const aggs: Agg[] = ["sum", "count", "avg", "min", "max", "p99"];
const base = Math.floor(Date.now() / 10_000) * 10_000 - 600_000;
const sec10 = 10_000;

const seriesTags: Array<Record<string, string>> = [
  { region: "eu", host: "a" }, { region: "eu", host: "b" }, { region: "us", host: "a" }, { region: "ap", host: "c" }, { region: "sa", host: "d" },
  { host: "z" }, // no region: read, never ranked
];
const keyOf = (name: string, tags: Record<string, string>) =>
  Object.keys(tags).length === 0 ? name : `${name}{${Object.keys(tags).sort().map((k) => `${k}="${tags[k]}"`).join(",")}}`;

/** Windows 0-5 of 10 s from base, 1-12 integer-valued events each, some windows of some series empty; sorted by time. */
function history(seed: number): Ev[] {
  const r = mulberry32(seed);
  const evs: Ev[] = [];
  for (const tags of seriesTags) {
    for (let w = 0; w < 6; w++) {
      if (r() < 0.2) continue;
      const n = 1 + Math.floor(r() * 12);
      for (let i = 0; i < n; i++) evs.push({ name: "th.lat", value: 1 + Math.floor(r() * 1000), ts: base + w * sec10 + Math.floor(r() * sec10), tags });
    }
  }
  evs.push({ name: "th.lat.x", value: 5_000, ts: base + 1, tags: { region: "eu" } }); // another name: never counted
  return evs.sort((a, b) => a.ts - b.ts);
}

/** One event a series past the last window (and its lateness): every window of 0-5 closes; theirs stays open. */
const closers = (): Ev[] => [...seriesTags, undefined].map((tags) => tags === undefined
  ? { name: "th.lat.x", value: 0, ts: base + 70_000, tags: { region: "eu" } }
  : { name: "th.lat", value: 0, ts: base + 70_000, tags });

/** The starts of a spec's windows with from ≤ start and end ≤ to. */
function startsIn(sizeMs: number, from: number, to: number): number[] {
  const out: number[] = [];
  for (let s = Math.ceil(from / sec10) * sec10; s + sizeMs <= to; s += sec10) out.push(s);
  return out;
}

/** The ranking recounted from the events: each series' windows (of size, at starts), grouped by region. */
function recountTop(evs: readonly Ev[], agg: Agg, sizeMs: number, starts: readonly number[]): Array<{ key: string; value: number }> {
  const groups = new Map<string, { sum: number; count: number; min: number; max: number; p99: number }>();
  for (const tags of seriesTags) {
    if (tags.region === undefined) continue;
    const mine = evs.filter((e) => e.name === "th.lat" && e.tags === tags);
    for (const s of starts) {
      const w = recountWindow(mine, s, s + sizeMs);
      if (w === null) continue;
      const g = groups.get(tags.region) ?? { sum: 0, count: 0, min: Infinity, max: -Infinity, p99: -Infinity };
      groups.set(tags.region, { sum: g.sum + w.sum, count: g.count + w.count, min: Math.min(g.min, w.min), max: Math.max(g.max, w.max), p99: Math.max(g.p99, w.p99) });
    }
  }
  const value = (g: { sum: number; count: number; min: number; max: number; p99: number }) => (agg === "avg" ? g.sum / g.count : g[agg]);
  return [...groups].map(([key, g]) => ({ key, value: value(g) })).sort((a, b) => b.value - a.value || (a.key < b.key ? -1 : 1));
}

/** Windows of th.lat's series (those with tag `by` alone, when given) at the starts: with `by`, what a ranking reads. */
function windowsIn(evs: readonly Ev[], sizeMs: number, starts: readonly number[], by?: string): number {
  let n = 0;
  for (const tags of seriesTags) {
    if (by !== undefined && tags[by] === undefined) continue;
    for (const s of starts) if (evs.some((e) => e.name === "th.lat" && e.tags === tags && e.ts >= s && e.ts < s + sizeMs)) n++;
  }
  return n;
}

const get = async (w: TestWeir, path: string) => {
  const r = await fetch(w.url + path);
  return { status: r.status, body: await r.json() };
};

/** Every ranking, with and without a range, equals the recount. */
async function checkRankings(w: TestWeir, evs: readonly Ev[]): Promise<void> {
  const top = (q: string) => get(w, `/api/v1/top?name=th.lat&by=region&${q}`);
  for (const agg of aggs) {
    const all = startsIn(sec10, base, base + 60_000);
    expect(await top(`agg=${agg}&from=${base}&to=${base + 60_000}`)).toEqual({
      status: 200, body: { window: "10s", from: base, to: base + 60_000, end: base + 60_000, items: recountTop(evs, agg, sec10, all) },
    });
    // ISO-8601 from, to alone, and k: windows 1-3.
    const iso = new Date(base + 10_000).toISOString();
    expect((await top(`agg=${agg}&from=${encodeURIComponent(iso)}&to=${base + 40_000}&k=2`)).body).toEqual({
      window: "10s", from: base + 10_000, to: base + 40_000, end: base + 40_000, items: recountTop(evs, agg, sec10, startsIn(sec10, base + 10_000, base + 40_000)).slice(0, 2),
    });
    expect((await top(`agg=${agg}&to=${base + 20_000}`)).body).toEqual({
      window: "10s", to: base + 20_000, end: base + 20_000, items: recountTop(evs, agg, sec10, startsIn(sec10, base - 60_000, base + 20_000)),
    });
    // No range: the last closed window (5), as before.
    expect((await top(`agg=${agg}`)).body).toEqual({ window: "10s", end: base + 60_000, items: recountTop(evs, agg, sec10, [base + 50_000]) });
  }
  // Sliding windows overlap: an event counts once in each window of the range it lies in.
  const sliding = startsIn(60_000, base - 50_000, base + 60_000);
  expect(sliding.length).toBe(6);
  for (const agg of ["count", "sum", "p99"] as const) {
    expect((await top(`window=60s%2F10s&agg=${agg}&from=${base - 50_000}&to=${base + 60_000}`)).body).toEqual({
      window: "60s/10s", from: base - 50_000, to: base + 60_000, end: base + 60_000, items: recountTop(evs, agg, 60_000, sliding),
    });
  }
  expect((await top(`from=${base + 60_000}&to=${base + 60_000}`)).body).toEqual({ window: "10s", from: base + 60_000, to: base + 60_000, end: null, items: [] });
}

describe("top-history - rankings over stored windows", () => {
  let w: TestWeir;
  const evs = history(16);
  beforeAll(async () => {
    w = await startTestWeir();
    expect((await postEvents(w.url, JSON.stringify(evs))).status).toBe(202);
    expect((await postEvents(w.url, JSON.stringify(closers()))).status).toBe(202);
    // Each partition writes its closed windows with its next checkpoint: wait until the file holds every one of both specs.
    const reader = openReader(join(w.dataDir, "weir.db"));
    const want = windowsIn(evs, sec10, startsIn(sec10, base, base + 60_000)) + windowsIn(evs, 60_000, startsIn(60_000, base - 50_000, base + 60_000));
    const stored = reader.prepare(`SELECT count(*) AS n FROM windows WHERE window IN ('10s', '60s/10s') AND series LIKE 'th.lat{%' AND start >= ? AND "end" <= ?`);
    await waitFor(() => (stored.get(base - 50_000, base + 60_000) as { n: number }).n === want, 10_000, `${want} windows of th.lat in the file`);
    reader.close();
  }, 20_000);
  afterAll(() => w.stop());

  test("top-history - every aggregate over a range, over a part of it and over the last window equals the recount", async () => {
    await checkRankings(w, evs);
  });

  test("top-history - a bad agg, from after to, a bad time and an unknown field are 400 naming the parameter", async () => {
    const top = (q: string) => get(w, `/api/v1/top?name=th.lat&by=region&${q}`);
    expect(await top("agg=p50")).toEqual({ status: 400, body: { error: "agg: must be one of sum, count, avg, min, max, p99" } });
    expect(await top(`from=${base + 20_000}&to=${base}`)).toEqual({ status: 400, body: { error: "from: must not be after to" } });
    expect(await top("to=yesterday")).toEqual({ status: 400, body: { error: "to: must be epoch milliseconds or an ISO-8601 time" } });
    expect(await top("since=0")).toEqual({ status: 400, body: { error: "since: unknown field" } });
  });

  test("top-history - over the windows bound (topWindowsMax, smaller here) is refused naming it; at it, answered in full", async () => {
    const read = w.engine.readModel(openReader(join(w.dataDir, "weir.db")));
    const cfg = loadConfig({ WEIR_PORT: "0", WEIR_DATA_DIR: w.dataDir });
    const appWith = (topWindowsMax: number) => {
      const app = new Hono();
      app.route("/", analyticsRoutes({ read, cfg }, { topWindowsMax }));
      app.onError((e, c) => {
        const h = toHttpError(e);
        if (h === null) throw e;
        return c.json({ error: h.message }, h.status);
      });
      return app;
    };
    const starts = startsIn(sec10, base, base + 60_000);
    const n = windowsIn(evs, sec10, starts, "region"); // the series without a region are not read
    const ask = async (max: number) => {
      const r = await appWith(max).request(`/api/v1/top?name=th.lat&by=region&agg=count&from=${base}&to=${base + 60_000}`);
      return { status: r.status, body: await r.json() };
    };
    expect(await ask(n)).toEqual({
      status: 200, body: { window: "10s", from: base, to: base + 60_000, end: base + 60_000, items: recountTop(evs, "count", sec10, starts) },
    });
    expect(await ask(n - 1)).toEqual({
      status: 400, body: { error: `from: the range holds more than ${n - 1} windows of 10s for the series of th.lat with tag region, the most one ranking reads (topWindowsMax): narrow the range` },
    });
    // The last closed window is not a range: no bound applies to it.
    expect((await appWith(1).request("/api/v1/top?name=th.lat&by=region")).status).toBe(200);
  });
});

describe("top-history - rankings over windows staged, not yet written", () => {
  test("top-history - windows published but not yet in the file are ranked like stored ones", async () => {
    const w = await startTestWeir({ WEIR_CHECKPOINT_INTERVAL: "600000" });
    try {
      const evs = history(61);
      expect((await postEvents(w.url, JSON.stringify(evs))).status).toBe(202);
      expect((await postEvents(w.url, JSON.stringify(closers()))).status).toBe(202);
      const total = evs.filter((e) => e.name === "th.lat" && e.tags.region !== undefined).length;
      const counted = async () => {
        const b = (await get(w, `/api/v1/top?name=th.lat&by=region&agg=count&from=${base}&to=${base + 60_000}`)).body as { items: Array<{ value: number }> };
        const sliding = (await get(w, "/api/v1/top?name=th.lat&by=region&window=60s%2F10s")).body as { end: number | null };
        return b.items.reduce((k, i) => k + i.value, 0) === total && sliding.end === base + 60_000;
      };
      await waitFor(counted, 10_000, "every event of th.lat in the staged windows");
      const reader = openReader(join(w.dataDir, "weir.db"));
      expect((reader.prepare(`SELECT count(*) AS n FROM windows WHERE series LIKE 'th.lat%'`).get() as { n: number }).n).toBe(0);
      reader.close();
      await checkRankings(w, evs);
    } finally {
      await w.stop();
    }
  });
});

describe("top-history - the read model over a store file and staged rows", () => {
  const dir = mkdtempSync(join(tmpdir(), "weir-test-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const win = (series: string, start: number, count: number, v: number): WindowRecord => ({
    series, window: "10s", start, end: start + sec10, count, sum: count * v, min: v, max: v, avg: v, p50: v, p95: v, p99: v, first: v, last: v,
  });

  test("top-history - a staged window replaces its stored row (counted once); the bound counts stored and staged windows", () => {
    const path = join(dir, "weir.db");
    const db = openStore(path);
    const insert = db.prepare(`INSERT INTO windows (series, window, start, "end", count, sum, min, max, avg, p50, p95, p99, first, last)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    const eu = 't{region="eu"}';
    const us = 't{region="us"}';
    for (const r of [win(eu, 0, 2, 10), win(eu, 10_000, 3, 20), win(us, 0, 4, 5), win("t.other{region=\"eu\"}", 0, 100, 100)]) {
      insert.run(r.series, r.window, r.start, r.end, r.count, r.sum, r.min, r.max, r.avg, r.p50, r.p95, r.p99, r.first, r.last);
    }
    db.close();
    const registry = new SeriesRegistry(2, 100);
    registry.register(eu, "t", { region: "eu" });
    registry.register(us, "t", { region: "us" });
    const staged = new StagedResults(2);
    staged.addWindow(partitionOf(eu, 2), win(eu, 10_000, 1, 7)); // its commit in flight: the stored row of start 10 000 is this one's older copy
    staged.addWindow(partitionOf(us, 2), win(us, 20_000, 2, 30)); // not yet written
    const reader = openReader(path);
    const read = new StoreReadModel({
      reader, registry, staged, latestTrends: new Map(), openAnomalies: new Map(), deadletters: new DeadLetters(10, () => null),
      labels: ["10s"], specs: ["10s"], partitions: 2,
    });
    const q = (agg: Agg, windowsMax = 4): ReturnType<StoreReadModel["top"]> =>
      read.top({ name: "t", by: "region", k: 10, window: "10s", agg, from: 0, to: 30_000, windowsMax });
    expect(q("count")).toEqual({ window: "10s", end: 30_000, items: [{ key: "us", value: 6 }, { key: "eu", value: 3 }] });
    expect(q("sum")).toEqual({ window: "10s", end: 30_000, items: [{ key: "us", value: 80 }, { key: "eu", value: 27 }] });
    expect(q("avg")).toEqual({ window: "10s", end: 30_000, items: [{ key: "us", value: 80 / 6 }, { key: "eu", value: 9 }] }); // not (10 + 7) / 2
    expect(q("min")).toEqual({ window: "10s", end: 30_000, items: [{ key: "eu", value: 7 }, { key: "us", value: 5 }] });
    expect(q("p99")).toEqual({ window: "10s", end: 30_000, items: [{ key: "us", value: 30 }, { key: "eu", value: 10 }] });
    expect(q("count", 3)).toEqual({ over: "windows", max: 3 });
    expect(q("count", 1)).toEqual({ over: "windows", max: 1 }); // the staged ones alone are more than fit
    // The last window: us's staged one ends newest.
    expect(read.top({ name: "t", by: "region", k: 10, window: "10s", agg: "max", windowsMax: 1 })).toEqual({ window: "10s", end: 30_000, items: [{ key: "us", value: 30 }] });
    reader.close();
  });
});
