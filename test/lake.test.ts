/**
 * The analyst's lake over a real weir (DuckDB, Parquet files in a temp
 * directory, HTTP on port 0): the scenario end to end, then the
 * refusals, the timeout, the row cap and the per-token concurrency cap.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { DuckDBInstance } from "@duckdb/node-api";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { postEvents, startTestWeir, type TestWeir } from "./helpers/weir.ts";
import { waitFor } from "./helpers/wait.ts";

const tokens = { ingest: "ingest-token-1", read: "read-token-1", admin: "admin-token-1" };
const auth = (t: string) => ({ authorization: `Bearer ${t}`, "content-type": "application/json" });
const pages = ["cart", "checkout", "home"];
const base = Math.floor((Date.now() - 2 * 3600_000) / 3600_000) * 3600_000; // an hour ago and more: one hour directory
const perPage = 30; // one event a second: three closed 10-second windows per page

let w: TestWeir;
let outDir: string;
const sent: Array<{ page: string; ts: number; value: number }> = [];

async function sql(q: string, token = tokens.read) {
  const res = await fetch(`${w.url}/api/v1/query`, { method: "POST", headers: auth(token), body: JSON.stringify({ sql: q }) });
  return { status: res.status, headers: res.headers, body: await res.json() as Record<string, unknown> };
}

beforeAll(async () => {
  outDir = mkdtempSync(join(tmpdir(), "weir-lake-out-"));
  w = await startTestWeir({
    WEIR_TOKENS: `${tokens.ingest}:ingest,${tokens.read}:read,${tokens.admin}:admin`,
    WEIR_WINDOWS: "10s", WEIR_LATENESS: "0", WEIR_QUERY_TIMEOUT: "1s", WEIR_LAKE_INTERVAL: "1h", WEIR_LAKE_CURATED_INTERVAL: "1h",
  });
  const events: unknown[] = [];
  pages.forEach((page, p) => {
    for (let i = 0; i < perPage; i++) {
      const e = { page, ts: base + i * 1000, value: 100 + ((i * 37 + p * 11) % 400) }; // whole numbers: sums are exact in any order
      sent.push(e);
      events.push({ name: "page.load", ts: e.ts, value: e.value, tags: { page }, id: `${page}-${i}`, props: { browser: i % 2 ? "firefox" : "chrome" } });
    }
    events.push({ name: "page.load", ts: base + 60_000, value: 1, tags: { page } }); // closes the three windows
  });
  const r = await postEvents(w.url, JSON.stringify(events), "application/json", { authorization: `Bearer ${tokens.ingest}` });
  expect(r.status).toBe(202);
  await waitFor(async () => {
    const res = await fetch(`${w.url}/api/v1/windows?series=${encodeURIComponent('page.load{page="home"}')}&window=10s`, { headers: auth(tokens.read) });
    return ((await res.json()) as { windows: unknown[] }).windows.length === 3;
  }, 10_000, "home's three windows stored");
  // The raw tail and the curated snapshot, now rather than at the next pass, until the windows' commit is in the snapshot.
  await waitFor(async () => {
    await w.lake.flush();
    const r = await sql(`SELECT count(*) FROM windows WHERE "window" = '10s' AND start < ${base + perPage * 1000}`);
    return (r.body.rows as number[][])[0][0] === 3 * pages.length;
  }, 10_000, "the windows in the curated snapshot");
});

afterAll(async () => {
  await w.stop();
  rmSync(outDir, { recursive: true, force: true });
});

describe("lake", () => {
  test("lake - the catalog lists the raw zone and every curated table with columns and retention", async () => {
    const res = await fetch(`${w.url}/api/v1/catalog`, { headers: auth(tokens.read) });
    expect(res.status).toBe(200);
    const { tables } = await res.json() as { tables: Array<{ name: string; columns: Array<{ name: string; type: string; sensitivity: string[] }>; retention: { ms: number | null } }> };
    expect(tables.map((t) => t.name)).toEqual(["events", "windows", "anomalies", "trends", "alerts", "deadletters", "series", "ref_tables", "windows_1m", "windows_1h"]);
    const events = tables[0];
    expect(events.columns.map((c) => [c.name, c.type, c.sensitivity])).toEqual([
      ["ts", "BIGINT", []], ["name", "VARCHAR", []], ["series", "VARCHAR", []], ["value", "DOUBLE", []],
      ["tags", "MAP(VARCHAR, VARCHAR)", []], ["props", "JSON", []], ["id", "VARCHAR", []],
    ]);
    expect(events.retention.ms).toBe(30 * 86_400_000);
  });

  test("lake - average per page over raw events equals the curated 10-second windows and an independent recount", async () => {
    const range = `ts >= ${base} AND ts < ${base + perPage * 1000}`;
    const raw = await sql(`SELECT tags['page'] AS page, count(*) AS n, sum(value) AS total, avg(value) AS mean FROM events WHERE name = 'page.load' AND ${range} GROUP BY 1 ORDER BY 1`);
    const curated = await sql(`SELECT series, sum("count") AS n, sum("sum") AS total, sum("sum") / sum("count") AS mean FROM windows WHERE "window" = '10s' AND start >= ${base} AND start < ${base + perPage * 1000} GROUP BY 1 ORDER BY 1`);
    const recount = pages.map((page) => {
      const mine = sent.filter((e) => e.page === page);
      const total = mine.reduce((a, e) => a + e.value, 0);
      return { page, n: mine.length, total, mean: total / mine.length };
    });
    expect(raw).toMatchObject({ status: 200, body: { columns: ["page", "n", "total", "mean"], truncated: false } });
    expect(raw.body.rows).toEqual(recount.map((r) => [r.page, r.n, r.total, r.mean]));
    expect(curated.status).toBe(200);
    expect(curated.body.rows).toEqual(recount.map((r) => [`page.load{page="${r.page}"}`, r.n, r.total, r.mean]));
  });

  test("lake - props and ids are queryable in the raw zone", async () => {
    const r = await sql(`SELECT id, props->>'browser' AS browser FROM events WHERE id IN ('home-0', 'home-1') ORDER BY id`);
    expect(r).toMatchObject({ status: 200, body: { columns: ["id", "browser"], rows: [["home-0", "chrome"], ["home-1", "firefox"]], truncated: false } });
  });

  test("lake - a metric view is defined once (admin), listed in the catalog and reused by a read token", async () => {
    const def = { sql: "SELECT tags['page'] AS page, count(*) AS n FROM events WHERE name = 'page.load' GROUP BY 1", description: "page loads per page" };
    const denied = await fetch(`${w.url}/api/v1/metric-views/loads_per_page`, { method: "PUT", headers: auth(tokens.read), body: JSON.stringify(def) });
    expect(denied.status).toBe(403);
    expect(await denied.json()).toEqual({ error: 'authorization: token lacks role "admin"' });
    const put = await fetch(`${w.url}/api/v1/metric-views/loads_per_page`, { method: "PUT", headers: auth(tokens.admin), body: JSON.stringify(def) });
    expect(put.status).toBe(201);
    expect(await put.json()).toMatchObject({ name: "loads_per_page", ...def, source: "api" });
    const bad = await fetch(`${w.url}/api/v1/metric-views/bad_view`, { method: "PUT", headers: auth(tokens.admin), body: JSON.stringify({ sql: "DELETE FROM events" }) });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: "sql: only a SELECT (or WITH … SELECT) may run, not DELETE" });
    const reuse = await sql("SELECT page, n FROM loads_per_page WHERE page = 'home'");
    expect(reuse).toMatchObject({ status: 200, body: { columns: ["page", "n"], rows: [["home", perPage + 1]], truncated: false } });
    const cat = await (await fetch(`${w.url}/api/v1/catalog`, { headers: auth(tokens.read) })).json() as { tables: Array<{ name: string; kind: string }> };
    expect(cat.tables.at(-1)).toMatchObject({ name: "loads_per_page", kind: "metric_view" });
  });

  test("lake - a materialised metric view appends each run's rows to a lake table, equal to a recount; runs past its retention go", async () => {
    const def = { sql: "SELECT tags['page'] AS page, count(*) AS n, sum(value) AS total FROM events WHERE name = 'page.load' GROUP BY 1", materialize: { every: "1h", retention: "2h" } };
    const tooOften = await fetch(`${w.url}/api/v1/metric-views/loads_hourly`, { method: "PUT", headers: auth(tokens.admin), body: JSON.stringify({ ...def, materialize: { every: "10ms" } }) });
    expect(tooOften.status).toBe(400);
    expect(await tooOften.json()).toEqual({ error: "materialize.every: must lie within [1000 ms, 2678400000 ms]" });
    const put = await fetch(`${w.url}/api/v1/metric-views/loads_hourly`, { method: "PUT", headers: auth(tokens.admin), body: JSON.stringify(def) });
    expect(put.status).toBe(201);
    // The schedule's first run comes at its next look (a view with no run is due); then none for an hour but those asked for here.
    const runTimes = async () => ((await sql("SELECT DISTINCT materialized_at FROM loads_hourly_materialized ORDER BY 1")).body.rows as number[][]).map((r) => r[0]);
    await waitFor(async () => (await runTimes()).length === 1, 10_000, "the scheduled first run");
    const [first] = await runTimes();
    expect(await w.lake.materialize(first + 1_000)).toEqual({}); // not due
    expect(await w.lake.materialize(first + 3600_000)).toEqual({ loads_hourly: pages.length });
    expect(await w.lake.materialize(first + 2 * 3600_000 + 1_000)).toEqual({ loads_hourly: pages.length }); // and the first run is past 2 h
    const recount = (stamp: number) => pages.map((page) => {
      const mine = sent.filter((e) => e.page === page);
      return [page, mine.length + 1, mine.reduce((a, e) => a + e.value, 0) + 1, stamp]; // + the event that closed its windows (value 1)
    });
    const runs = await sql("SELECT page, n, total, materialized_at FROM loads_hourly_materialized ORDER BY materialized_at, page");
    expect(runs.body.rows).toEqual([...recount(first + 3600_000), ...recount(first + 2 * 3600_000 + 1_000)]);
    expect(readdirSync(join(w.dataDir, "lake", "materialized", "loads_hourly")).sort()).toEqual([`${first + 2 * 3600_000 + 1_000}.parquet`, `${first + 3600_000}.parquet`, "_empty.parquet"].sort());
    const cat = await (await fetch(`${w.url}/api/v1/catalog`, { headers: auth(tokens.read) })).json() as { tables: Array<{ name: string; kind: string; retention: unknown; columns: Array<{ name: string }> }> };
    expect(cat.tables.find((t) => t.name === "loads_hourly_materialized")).toMatchObject({ kind: "materialized", retention: { ms: 2 * 3600_000, setting: null } });
    expect(cat.tables.find((t) => t.name === "loads_hourly_materialized")!.columns.map((c) => c.name)).toEqual(["page", "n", "total", "materialized_at"]);
    const del = await fetch(`${w.url}/api/v1/metric-views/loads_hourly`, { method: "DELETE", headers: auth(tokens.admin) });
    expect(del.status).toBe(204);
    expect((await sql("SELECT count(*) FROM loads_hourly_materialized")).status).toBe(400);
  });

  test("lake - a day of raw events exported as Parquet and as NDJSON reads back whole", async () => {
    const day = Math.floor(base / 86_400_000) * 86_400_000;
    const q = `table=events&from=${day}&to=${day + 86_400_000}`;
    const pq = await fetch(`${w.url}/api/v1/export?${q}&format=parquet`, { headers: auth(tokens.read) });
    expect(pq.status).toBe(200);
    expect(pq.headers.get("content-type")).toBe("application/vnd.apache.parquet");
    const file = join(outDir, "day.parquet");
    writeFileSync(file, new Uint8Array(await pq.arrayBuffer()));
    const db = await (await DuckDBInstance.create(":memory:")).connect();
    const back = await db.runAndReadAll(`SELECT count(*)::INTEGER, sum(value)::DOUBLE FROM read_parquet('${file}') WHERE ts < ${base + perPage * 1000}`);
    expect(back.getRowsJS()).toEqual([[sent.length, sent.reduce((a, e) => a + e.value, 0)]]);
    const nd = await fetch(`${w.url}/api/v1/export?${q}&format=ndjson`, { headers: auth(tokens.read) });
    expect(nd.status).toBe(200);
    const lines = (await nd.text()).trim().split("\n").map((l) => JSON.parse(l) as { ts: number; id: string | null; tags: Record<string, string> });
    expect(lines.length).toBe(sent.length + pages.length);
    expect(lines.find((l) => l.id === "home-3")).toMatchObject({ ts: base + 3000, tags: { page: "home" } });
  });

  test("lake - weir export writes the same rows to a file through the HTTP export", async () => {
    const out = join(outDir, "cli.ndjson");
    const proc = Bun.spawn(["bun", "src/cli.ts", "export", "--table", "events", "--from", String(base), "--to", String(base + perPage * 1000), "--format", "ndjson", "--out", out], {
      cwd: join(import.meta.dir, ".."), env: { ...process.env, WEIR_URL: w.url, WEIR_TOKEN: tokens.read }, stderr: "pipe",
    });
    expect(await proc.exited).toBe(0);
    const lines = (await Bun.file(out).text()).trim().split("\n").map((l) => JSON.parse(l) as { value: number });
    expect(lines.length).toBe(sent.length);
    expect(lines.reduce((a, l) => a + l.value, 0)).toBe(sent.reduce((a, e) => a + e.value, 0));
  });

  test("lake - anything but one SELECT is refused with a 400 naming why", async () => {
    const refusals: Array<[string, string]> = [
      ["INSERT INTO series VALUES ('a', 'b', '{}')", "sql: only a SELECT (or WITH … SELECT) may run, not INSERT"],
      ["CREATE TABLE t (a INTEGER)", "sql: only a SELECT (or WITH … SELECT) may run, not CREATE"],
      ["ATTACH '/tmp/x.db' AS x", "sql: only a SELECT (or WITH … SELECT) may run, not ATTACH"],
      ["PRAGMA version", "sql: only a SELECT (or WITH … SELECT) may run, not PRAGMA"],
      ["COPY (SELECT 1) TO '/tmp/out.csv'", "sql: only a SELECT (or WITH … SELECT) may run, not COPY"],
      ["SET threads = 4", "sql: only a SELECT (or WITH … SELECT) may run, not SET"],
      ["INSTALL sqlite", "sql: only a SELECT (or WITH … SELECT) may run, not INSTALL"],
      ["LOAD sqlite", "sql: only a SELECT (or WITH … SELECT) may run, not LOAD"],
      ["SELECT 1; SELECT 2", "sql: exactly one statement may run, found 2"],
      ["SELECT * FROM read_csv('/etc/passwd')", 'sql: Permission Error: Cannot access file "/etc/passwd" - file system operations are disabled by configuration'],
    ];
    for (const [q, error] of refusals) expect({ q, ...(await sql(q)) }).toMatchObject({ q, status: 400, body: { error } });
    const withOk = await sql("WITH t AS (SELECT 2 AS x) SELECT x FROM t");
    expect(withOk).toMatchObject({ status: 200, body: { columns: ["x"], rows: [[2]], truncated: false } });
  });

  test("lake - a query past WEIR_QUERY_TIMEOUT is stopped: 503", async () => {
    const r = await sql("SELECT count(*) FROM range(1000000000000) a");
    expect(r.status).toBe(503);
    expect(r.body).toEqual({ error: "query timed out after 1 s" });
  });

  test("lake - at most 10,000 rows, and the answer says it was cut", async () => {
    const r = await sql("SELECT range AS i FROM range(10005)");
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ columns: ["i"], rows: Array.from({ length: 10_000 }, (_, i) => [i]), truncated: true });
  });

  test("lake - a token past its concurrent queries is 429 with Retry-After; another token still runs", async () => {
    const slow = "SELECT count(*) FROM range(1000000000000) a";
    const [a, b, c, other] = await Promise.all([sql(slow), sql(slow), sql(slow), sql("SELECT 1 AS one", tokens.admin)]);
    const statuses = [a, b, c].map((r) => r.status).sort();
    expect(statuses).toEqual([429, 503, 503]);
    const refused = [a, b, c].find((r) => r.status === 429)!;
    expect(refused.body).toEqual({ error: "query: this token already runs 2 queries (lakeQueriesPerTokenMax); retry when one ends" });
    expect(refused.headers.get("retry-after")).toBe("1");
    // The other token passes the gate. Whether it finishes inside the 1 s timeout depends on the machine: DuckDB runs
    // SQL on one thread here (lakeDuckdbThreads), behind the two slow queries; either way it is not refused as its own.
    expect(other.status === 200 ? other.body : { status: other.status, error: other.body.error })
      .toEqual(other.status === 200 ? { columns: ["one"], rows: [[1]], truncated: false } : { status: 503, error: "query timed out after 1 s" });
    expect((await sql("SELECT 1 AS one", tokens.admin)).body).toEqual({ columns: ["one"], rows: [[1]], truncated: false }); // once they end, it runs
  });

  test("lake - /metrics shows the maintenance: passes, every event in the tail, how far behind SQL is, nothing lost", async () => {
    const before = Date.now();
    await w.lake.flush();
    const flushMs = Date.now() - before;
    const text = await (await fetch(`${w.url}/metrics`, { headers: auth(tokens.read) })).text();
    const value = (line: string) => Number(text.split("\n").find((l) => l.startsWith(`${line} `))?.slice(line.length + 1));
    expect(value('weir_lake_passes_total{result="ok"}')).toBeGreaterThanOrEqual(2);
    expect(value('weir_lake_passes_total{result="failed"}')).toBe(0);
    expect(value("weir_lake_tail_events_total")).toBe(pages.length * (perPage + 1)); // each event once, however many passes
    expect(value("weir_lake_segments_compacted_total")).toBe(0); // one segment, still open (WEIR_RAW_SEGMENT 1h)
    expect(value("weir_lake_segments_pending")).toBe(0);
    expect(value("weir_lake_behind_seconds")).toBeLessThanOrEqual((Date.now() - before) / 1000); // the flush started after `before`
    expect(value("weir_lake_pass_seconds")).toBeGreaterThanOrEqual(0); // a pass with nothing new can take under a millisecond
    expect(value("weir_lake_pass_seconds")).toBeLessThanOrEqual(flushMs / 1000); // the flush's own pass was the last
    expect(value("weir_lake_segments_lost_total")).toBe(0);
  });

  test("lake - flushed raw events sit in tail Parquet chunks until their segment closes", () => {
    expect(readdirSync(join(w.dataDir, "lake", "tail")).filter((f) => f.endsWith(".parquet")).length).toBeGreaterThan(1);
  });
});
