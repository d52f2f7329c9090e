/**
 * The lake's costs (BENCHMARKS.md "Lake"), all in one run on 127.0.0.1:
 *  1. a day-sized query: a grouped average and p99 over one day of raw
 *     events (1,728,000 events: 20 a second, 100 series) in the raw zone's
 *     Parquet layout, through POST /api/v1/query on an idle weir;
 *  2. compaction's cost to ingest: HTTP ingest (a separate load process,
 *     batches of 1,000) with the lake's maintenance off (WEIR_LAKE=0,
 *     the baseline) and on, compacting every second (segments rolled every
 *     2 s, WEIR_LAKE_INTERVAL=1s): the ratio, target ≥ 0.95;
 *  3. ingest while heavy queries run: the same load with the maintenance
 *     on, while two clients run the day-sized query back to back: ratio to
 *     (2), target ≥ 0.90.
 * Every loop is bounded by a count and a time.
 *
 *   bun bench/lake.ts [seconds per ingest phase, default 10]
 */
import { DuckDBInstance } from "@duckdb/node-api";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../src/config.ts";
import { silentLog } from "../src/runtime/log.ts";
import { startWeir } from "../src/server.ts";

const seconds = Number(process.argv[2] ?? 10);
const loadScript = join(import.meta.dir, "fixtures/http-load.ts");
const dayEvents = 86_400 * 20;
const dayStart = Math.floor((Date.now() - 86_400_000) / 86_400_000) * 86_400_000;
const heavySql = `SELECT series, count(*) AS n, avg(value) AS mean, quantile_cont(value, 0.99) AS p99 FROM events WHERE ts >= ${dayStart} AND ts < ${dayStart + 86_400_000} GROUP BY series ORDER BY series`;

/** One day of events in the raw zone's layout (hour files), as compaction would leave them. */
async function writeDay(dataDir: string): Promise<void> {
  const conn = await (await DuckDBInstance.create(":memory:")).connect();
  const date = new Date(dayStart).toISOString().slice(0, 10);
  for (let h = 0; h < 24; h++) {
    const dir = join(dataDir, "lake", "raw", `date=${date}`, `hour=${String(h).padStart(2, "0")}`);
    mkdirSync(dir, { recursive: true });
    const n = dayEvents / 24;
    await conn.run(`COPY (SELECT (${dayStart + h * 3600_000} + i * ${3600_000 / n})::BIGINT AS ts, 'page.load' AS name,
      'page.load{page="p' || (i % 100) || '"}' AS series, (i * 7919 % 1000)::DOUBLE AS value, MAP {'page': 'p' || (i % 100)} AS tags,
      '{}'::JSON AS props, NULL::VARCHAR AS id FROM range(${n}) t(i)) TO '${join(dir, "bench.parquet")}' (FORMAT parquet)`);
  }
}

async function runLoad(url: string): Promise<number> {
  const p = Bun.spawn(["bun", loadScript, `${url}/api/v1/events`, "100000000", "1000", "4", String(seconds), "1000", "now"], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(p.stdout).text();
  await p.exited;
  const r = JSON.parse(out.trim().split("\n").pop()!) as { accepted: number; seconds: number };
  return r.accepted / r.seconds;
}

async function query(url: string): Promise<number> {
  const t = performance.now();
  const res = await fetch(`${url}/api/v1/query`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ sql: heavySql }) });
  const body = await res.json() as { rows?: unknown[] };
  if (res.status !== 200 || body.rows?.length !== 100) throw new Error(`day query: ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
  return performance.now() - t;
}

/** One weir on a fresh data directory (with the day written in), `work` run against it. */
async function withWeir<T>(env: Record<string, string>, work: (url: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "weir-bench-lake-"));
  await writeDay(dir);
  const w = await startWeir(loadConfig({ WEIR_PORT: "0", WEIR_DATA_DIR: dir, WEIR_RAW_SEGMENT: "2s", WEIR_QUERY_TIMEOUT: "60s", ...env }), silentLog);
  try {
    return await work(w.url);
  } finally {
    await w.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchLake() {
  const queryMs = await withWeir({ WEIR_LAKE: "0" }, async (url) => {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) times.push(await query(url));
    return times.sort((a, b) => a - b)[2];
  });
  const off = await withWeir({ WEIR_LAKE: "0" }, runLoad);
  const on = await withWeir({ WEIR_LAKE: "1", WEIR_LAKE_INTERVAL: "1s" }, runLoad);
  const busy = await withWeir({ WEIR_LAKE: "1", WEIR_LAKE_INTERVAL: "1s" }, async (url) => {
    let stop = false;
    let queries = 0;
    const deadline = performance.now() + (seconds + 30) * 1000;
    const client = async () => {
      for (let i = 0; i < 10_000 && !stop && performance.now() < deadline; i++) {
        await query(url);
        queries++;
      }
    };
    const clients = [client(), client()];
    const rate = await runLoad(url);
    stop = true;
    await Promise.all(clients);
    return { rate, queries };
  });
  return {
    name: "lake (DuckDB over Parquet)",
    dayQueryMs: queryMs,
    notes: `day-sized query (${dayEvents} events, 100 series: count, avg, p99 by series) median of 5`,
    ingestLakeOffEventsPerSec: off,
    ingestLakeOnEventsPerSec: on,
    compactionRatio: on / off,
    ingestWhileQueryingEventsPerSec: busy.rate,
    heavyQueriesDuringLoad: busy.queries,
    queryingRatio: busy.rate / on,
  };
}

if (import.meta.main) console.log(await benchLake());
