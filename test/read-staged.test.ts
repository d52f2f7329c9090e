/**
 * Results are staged and written with their partition's next checkpoint
 * (default every 1 s). Reads merge what is staged, so a dashboard that
 * subscribes and then back-fills never falls between the two: what the
 * stream has pushed is also answered over REST, before it is in the file.
 * The first part runs with a 10-minute checkpoint interval, so nothing is
 * committed while it reads; the file is checked to be empty of it, then to
 * hold the same rows after the final checkpoint at stop.
 */
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AnomalyRecord, WindowRecord } from "../src/actors/store.ts";
import { createPrng } from "../src/sim/prng.ts";
import {
  type AnomalyRow, foldWindows, latestWindows, mergeAnomalies, mergeWindows, type TopRow, uniqueWindows, type WindowRow,
} from "../src/engine/staged-merge.ts";
import { waitFor } from "./helpers/wait.ts";
import { postEvents, startTestWeir } from "./helpers/weir.ts";

const json = (x: unknown) => JSON.stringify(x);

describe("reads - staged results are answered before their checkpoint", () => {
  test("reads - windows, anomalies, alerts and top-k pushed live are readable at once; the file then holds the same", async () => {
    const dir = mkdtempSync(join(tmpdir(), "weir-test-")); // kept past stop: the file is read after the final checkpoint
    const w = await startTestWeir({ WEIR_CHECKPOINT_INTERVAL: "600000", WEIR_LATENESS: "0" }, dir);
    const live: Array<Record<string, unknown>> = [];
    const ws = new WebSocket(w.url.replace("http", "ws") + "/ws/live");
    ws.onmessage = (m) => live.push(...[JSON.parse(String(m.data))].flat());
    await waitFor(() => live.some((m) => m.type === "hello"), 5000, "hello");
    ws.send(json({ op: "subscribe", topics: ["stats", "windows:10s:rs.*", "alerts"] }));
    ws.send(json({ op: "throttle", ms: 0 }));
    await waitFor(() => live.some((m) => m.type === "stats"), 5000, "a stats message: the subscription is in");

    const base = Math.floor(Date.now() / 10_000) * 10_000 - 600_000;
    const rnd = createPrng(11);
    const evs: Array<{ name: string; value: number; ts: number; tags?: Record<string, string> }> = [];
    for (let i = 0; i < 300; i++) evs.push({ name: "rs.temp", value: 100 + rnd.gaussian(), ts: base + i * 100 });
    const spikeTs = base + 30_000;
    evs.push({ name: "rs.temp", value: 130, ts: spikeTs });
    const pages = ["/a", "/b", "/c"];
    for (let i = 0; i < 90; i++) evs.push({ name: "rs.buy", value: 1 + (i % 7), ts: base + 10_000 + i * 100, tags: { page: pages[i % 3] } });
    expect((await postEvents(w.url, json(evs))).body).toEqual({ accepted: evs.length, rejected: 0, errors: [] });
    // Ten minutes old, so the quiet rule would wait ten minutes and more for them: a reading of each series
    // at the wall clock passes its watermark (no lateness) over all of their windows instead. Its own window stays open.
    const now = Date.now();
    const closers = [{ name: "rs.temp", value: 100, ts: now }, ...pages.map((page) => ({ name: "rs.buy", value: 1, ts: now, tags: { page } }))];
    expect((await postEvents(w.url, json(closers))).status).toBe(202);

    const recount = new Map<number, { count: number; sum: number; min: number; max: number }>();
    for (const e of evs.filter((e) => e.name === "rs.temp")) {
      const start = Math.floor(e.ts / 10_000) * 10_000;
      const r = recount.get(start) ?? { count: 0, sum: 0, min: Infinity, max: -Infinity };
      recount.set(start, { count: r.count + 1, sum: r.sum + e.value, min: Math.min(r.min, e.value), max: Math.max(r.max, e.value) });
    }
    const windowsLive = () => live.filter((m) => m.type === "window" && m.series === "rs.temp" && m.window === "10s");
    const buysLive = () => live.filter((m) => m.type === "window" && String(m.series).startsWith("rs.buy{") && m.window === "10s");
    await waitFor(() => windowsLive().length === recount.size && buysLive().length === pages.length && live.some((m) => m.type === "alert" && m.ts === spikeTs),
      5000, "rs.temp's 4 windows, rs.buy's 3 and the alert pushed");

    const get = async (path: string) => (await fetch(w.url + path)).json();
    const rows = (await get("/api/v1/windows?series=rs.temp&window=10s")).windows as WindowRow[];
    expect(rows.map((r) => r.start)).toEqual([...recount.keys()]);
    for (const r of rows) {
      const want = recount.get(r.start)!;
      expect([r.count, r.min, r.max]).toEqual([want.count, want.min, want.max]);
      expect(r.sum).toBeCloseTo(want.sum, 9);
    }
    expect(rows).toEqual(windowsLive().map(({ type: _t, series: _s, window: _w, ...r }) => r) as unknown as WindowRow[]);
    const cols = await get("/api/v1/windows?series=rs.temp&window=10s&format=columns&limit=2");
    expect(cols.start).toEqual(rows.slice(-2).map((r) => r.start));
    expect((await get(`/api/v1/windows?series=rs.temp&window=10s&from=${base + 10_000}&to=${base + 30_000}`)).windows.map((r: WindowRow) => r.start))
      .toEqual([base + 10_000, base + 20_000]);

    const anomalies = (await get("/api/v1/anomalies?series=rs.temp")).anomalies as AnomalyRow[];
    expect(anomalies[0]).toMatchObject({ series: "rs.temp", ts: spikeTs, value: 130, severity: "critical", source: "value" });
    expect((await get("/api/v1/anomalies?series=rs.other")).anomalies).toEqual([]);
    expect((await get("/api/v1/alerts")).alerts[0]).toMatchObject({ kind: "anomaly", ...anomalies[0] });

    const sums = new Map(pages.map((p) => [p, 0]));
    for (const e of evs) if (e.name === "rs.buy") sums.set(e.tags!.page, sums.get(e.tags!.page)! + e.value);
    const top = await get("/api/v1/top?name=rs.buy&by=page");
    expect(top.end).toBe(base + 20_000);
    expect(top.items).toEqual([...sums].map(([key, value]) => ({ key, value })).sort((a, b) => b.value - a.value || (a.key < b.key ? -1 : 1)));

    // None of it is in the file yet.
    const file = join(w.dataDir, "weir.db");
    const count = (db: Database, sql: string) => (db.query(sql).get() as { n: number }).n;
    const before = new Database(file, { readonly: true });
    expect(count(before, `SELECT count(*) AS n FROM windows WHERE series LIKE 'rs.%'`)).toBe(0);
    expect(count(before, `SELECT count(*) AS n FROM anomalies`)).toBe(0);
    before.close();

    // The final checkpoint writes exactly what was answered.
    ws.close();
    await w.stop();
    const after = new Database(file, { readonly: true });
    const stored = after.query(`SELECT start, "end", count, sum, min, max, avg, p50, p95, p99, first, last FROM windows
      WHERE series = 'rs.temp' AND window = '10s' ORDER BY start`).all();
    expect(stored).toEqual(rows);
    expect(after.query(`SELECT series, ts, value, severity FROM anomalies ORDER BY ts DESC, id DESC`).all())
      .toEqual(anomalies.map(({ series, ts, value, severity }) => ({ series, ts, value, severity })));
    after.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("staged-merge - committed rows and staged ones answered as one", () => {
  const win = (start: number, count: number): WindowRecord => ({
    series: "s", window: "10s", start, end: start + 10, count, sum: count, min: 1, max: 1, avg: 1, p50: 1, p95: 1, p99: 1, first: 1, last: 1,
  });
  const row = (start: number, count: number): WindowRow => {
    const { series: _s, window: _w, ...r } = win(start, count);
    return r;
  };

  test("staged-merge - windows: a staged window replaces the stored one of its start; the newest `limit`, oldest first", () => {
    const stored = [row(30, 3), row(20, 2), row(10, 1)]; // newest first, as the SELECT answers
    expect(mergeWindows(stored, [], 2).map((r) => r.start)).toEqual([20, 30]);
    const merged = mergeWindows(stored, [win(30, 33), win(40, 4)], 3);
    expect(merged.map((r) => [r.start, r.count])).toEqual([[20, 2], [30, 33], [40, 4]]);
    expect(merged[0]).toEqual(row(20, 2));
    expect(mergeWindows([], [win(50, 5)], 10)).toEqual([row(50, 5)]);
  });

  test("staged-merge - anomalies: newest first, staged ahead of stored on a tie, newest staged first", () => {
    const a = (series: string, ts: number): AnomalyRecord => ({
      series, ts, value: 1, z: 9, mean: 0, std: 1, severity: "critical", source: "value", baseline_n: 10, baseline_from: 0,
      test: "spike", expected_lo: -5, expected_hi: 5,
    });
    const stored: AnomalyRow[] = [
      { series: "old", ts: 20, value: 1, z: 9, mean: 0, std: 1, severity: "critical", source: "value", baselineN: 10, baselineFromTs: 0, test: "spike", expected: [-5, 5] },
      { series: "old", ts: 5, value: 1, z: 9, mean: 0, std: 1, severity: "critical", source: "value", baselineN: 10, baselineFromTs: 0, test: "spike", expected: [-5, 5] },
    ];
    const merged = mergeAnomalies(stored, [a("s1", 20), a("s2", 30), a("s3", 20)], 4);
    expect(merged.map((r) => [r.series, r.ts])).toEqual([["s2", 30], ["s3", 20], ["s1", 20], ["old", 20]]);
    expect(merged[0]).toEqual({ ...stored[0], series: "s2", ts: 30 });
    expect(mergeAnomalies(stored, [], 1)).toEqual([stored[0]]);
    // A staged anomaly whose commit is written already (stored too) is listed once; another source at that time is another.
    const again = mergeAnomalies(stored, [a("old", 20), a("old", 20), { ...a("old", 20), source: "count" }], 10);
    expect(again.map((r) => [r.series, r.ts, r.source])).toEqual([["old", 20, "count"], ["old", 20, "value"], ["old", 5, "value"]]);
  });

  test("staged-merge - top: the newest end, partly stored and partly staged, one row per series", () => {
    const top = (series: string, n: number, end: number): TopRow => ({ series, end, windows: 1, sum: n, count: n, min: 1, max: 1, p99: 1 });
    const stored = [top("b{page=/a}", 1, 20), top("b{page=/b}", 2, 20)];
    const stagedSame = { ...win(10, 5), series: "b{page=/c}" }; // end 20, like the stored ones
    expect(latestWindows(stored, [stagedSame]).map((r) => r.series)).toEqual(["b{page=/a}", "b{page=/b}", "b{page=/c}"]);
    const stagedNewer = { ...win(20, 7), series: "b{page=/a}" }; // end 30: the stored end is no longer the newest
    expect(latestWindows(stored, [stagedSame, stagedNewer])).toEqual([top("b{page=/a}", 7, 30)]);
    expect(latestWindows(stored, [])).toEqual(stored);
    expect(latestWindows([], [])).toEqual([]);
  });

  test("staged-merge - top over a range: staged windows one per series and start, folded into their tag value's stored figures", () => {
    const at = (series: string, start: number, v: number): WindowRecord => ({ ...win(start, 2), series, sum: 2 * v, min: v, max: v, p99: v });
    const again = at("b{page=/a}", 30, 9); // the committing set and the staged set both hold start 30: the later is kept
    expect(uniqueWindows([at("b{page=/a}", 30, 5), at("b{page=/b}", 30, 6), again])).toEqual([again, at("b{page=/b}", 30, 6)]);
    const stored = new Map([["/a", { end: 30, windows: 2, sum: 10, count: 4, min: 2, max: 3, p99: 3 }]]);
    const groupOf = (series: string) => (series === "b{page=/x}" ? undefined : series.slice(7, -1));
    expect(foldWindows(stored, [again, at("b{page=/c}", 40, 1), at("b{page=/x}", 40, 1)], groupOf)).toEqual(new Map([
      ["/a", { end: 40, windows: 3, sum: 28, count: 6, min: 2, max: 9, p99: 9 }],
      ["/c", { end: 50, windows: 1, sum: 2, count: 2, min: 1, max: 1, p99: 1 }],
    ]));
    expect(foldWindows(stored, [], groupOf)).toEqual(stored);
  });
});
