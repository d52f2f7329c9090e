/**
 * The lake's costs (BENCHMARKS.md "Lake"), all in one run on 127.0.0.1,
 * weir as its own process (bench/fixtures/weir-process.ts) so its CPU is
 * read from /proc, the load as another (bench/fixtures/http-load.ts,
 * batches of 1,000 JSON events, 4 in flight):
 *  1. a day-sized query: a grouped average and p99 over one day of raw
 *     events (1,728,000 events: 20 a second, 100 series) in the raw zone's
 *     Parquet layout, through POST /api/v1/query on an idle weir;
 *  2. saturation: ingest flat out with the lake's maintenance off
 *     (WEIR_LAKE=0), on (compacting every second, segments rolled every
 *     2 s), and on while two clients run the day query back to back;
 *  3. a fixed offered rate (`share` of (2)'s lake-off capacity, default
 *     0.55), the cases in pairs — compaction: off vs on; queries: on vs on
 *     with the two query clients — in A B, B A, A B … order over `rounds`
 *     rounds, each case on a fresh weir: achieved rate, ack latency p50/p99
 *     (pooled over the rounds' medians) and weir's CPU-seconds per event.
 * Targets: compaction costs ingest ≤ 5 %, heavy queries ≤ 10 %.
 * Every loop is bounded by a count and a time.
 *
 *   bun bench/lake.ts [seconds per load, default 10] [rounds, default 3] [share, default 0.55, or events/s when > 1]
 *   bun bench/lake.ts compaction-load [seconds] [rounds] [events/s, default 290000]   # (2) and (3) for compaction only: off vs on at the rate, then flat out, alternating; CPU per event also counted to when SQL shows every event (settled)
 *   LAKE_BENCH_DEFER=0 bun bench/lake.ts compaction-load 20 4 0   # the lake's passes never wait for idle cores (WEIR_LAKE_DEFER)
 *   bun bench/lake.ts rss [rounds, default 3]   # idle RSS, lake off and on, no query (WEIR_DIR: another checkout)
 *   bun bench/lake.ts compaction [events, default 1000000] [rounds, default 1]   # the compactor alone: CPU-seconds of its two stages
 *
 * `rss`: a fresh weir, idle past its first maintenance pass (12 s), its
 * RSS and whether DuckDB's library is mapped, WEIR_LAKE=0 and =1 in turn.
 * `compaction`: a weir with the lake off takes `events` at 200,000/s
 * (segments of 2 s) and stops; then the compactor of this checkout and of
 * WEIR_DIR's (if given), in turn on copies of that data directory (A B,
 * B A … over `rounds`, all in this process: after the first round both are
 * warm, as in a long-running lake worker), first write every segment's tail
 * (as passes do while a segment is open), then compact the closed segments:
 * this process's CPU-seconds (user + system, DuckDB's threads included) and
 * wall seconds for each stage, each round's and the medians.
 */
import { DuckDBInstance } from "@duckdb/node-api";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { cpuSecondsOf, rssBytesOf, startWeirProcess, weirDir, type WeirProcess } from "./fixtures/weir-process.ts";
import { openReader } from "../src/storage/db.ts";
import { limits } from "../src/runtime/limits.ts";
import { listSegments } from "../src/storage/rawlog.ts";

const loadMode = process.argv[2] === "compaction-load"; // its arguments come one place later
const seconds = Number(process.argv[loadMode ? 3 : 2] ?? 10) || 10;
const rounds = Number(process.argv[loadMode ? 4 : 3] ?? 3);
const share = Number(process.argv[4] ?? 0.55);
// Idle before each case of a pair: on this machine the second of two loads in a row ran up to ~20 % slower whatever it was (BENCHMARKS.md "Lake").
const pauseMs = Number(process.env.LAKE_BENCH_PAUSE_MS ?? 0);
const settleMs = loadMode ? 5_000 : 0; // compaction-load: the lake's passes (every second) finish the events the load left them
const loadScript = join(import.meta.dir, "fixtures/http-load.ts");
const dayEvents = 86_400 * 20;
const dayStart = Math.floor((Date.now() - 86_400_000) / 86_400_000) * 86_400_000;
const heavySql = `SELECT series, count(*) AS n, avg(value) AS mean, quantile_cont(value, 0.99) AS p99 FROM events WHERE ts >= ${dayStart} AND ts < ${dayStart + 86_400_000} GROUP BY series ORDER BY series`;
// Harsher than production (passes every 10 s, segments of an hour) so that an 8 s load compacts; LAKE_BENCH_INTERVAL and
// LAKE_BENCH_SEGMENT set production's (or any) instead.
const lakeInterval = process.env.LAKE_BENCH_INTERVAL ?? "1s";
const rawSegment = process.env.LAKE_BENCH_SEGMENT ?? "2s";
// LAKE_BENCH_DEFER sets WEIR_LAKE_DEFER (weir's default, 60 s, otherwise; 0: a pass never waits for idle cores).
const compacting = { WEIR_LAKE: "1", WEIR_LAKE_INTERVAL: lakeInterval, WEIR_RAW_SEGMENT: rawSegment, ...(process.env.LAKE_BENCH_DEFER === undefined ? {} : { WEIR_LAKE_DEFER: process.env.LAKE_BENCH_DEFER }) };
const cases = {
  lakeOff: { env: { WEIR_LAKE: "0", WEIR_RAW_SEGMENT: rawSegment }, queries: false },
  compacting: { env: compacting, queries: false },
  querying: { env: compacting, queries: true },
} as const;
type CaseName = keyof typeof cases;

interface LoadResult { accepted: number; refused: number; seconds: number; ackMsP50: number; ackMsP99: number }
/**
 * cpuUsPerEventSettled: weir's CPU from the load's start to settleMs after its
 * end (compaction-load with the lake on: to when SQL counts every event,
 * caughtUpMs after the end), per event, so a lake that lags is charged for
 * its backlog; lakeCpuUsPerEvent:
 * the part of it on threads niced to lakeThreadNice (the lake's maintenance
 * thread and DuckDB's pool), which the difference of two whole-process
 * figures shows only through the noise of a shared machine.
 */
interface CaseResult { rate: number; ackMsP50: number; ackMsP99: number; cpuUsPerEvent: number; cpuUsPerEventSettled: number; lakeCpuUsPerEvent: number; caughtUpMs: number; queries: number; queryErrors: number }

/** One day of events in the raw zone's layout (hour files), as compaction would leave them; SQL's globs find them at the next query. */
async function writeDay(dataDir: string): Promise<void> {
  const instance = await DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  const date = new Date(dayStart).toISOString().slice(0, 10);
  for (let h = 0; h < 24; h++) {
    const dir = join(dataDir, "lake", "raw", `date=${date}`, `hour=${String(h).padStart(2, "0")}`);
    mkdirSync(dir, { recursive: true });
    const n = dayEvents / 24;
    await conn.run(`COPY (SELECT (${dayStart + h * 3600_000} + i * ${3600_000 / n})::BIGINT AS ts, 'page.load' AS name,
      'page.load{page="p' || (i % 100) || '"}' AS series, (i * 7919 % 1000)::DOUBLE AS value, MAP {'page': 'p' || (i % 100)} AS tags,
      '{}'::JSON AS props, NULL::VARCHAR AS id FROM range(${n}) t(i)) TO '${join(dir, "bench.parquet")}' (FORMAT parquet)`);
  }
  conn.closeSync();
  instance.closeSync();
}

async function runLoad(url: string, rate: number): Promise<LoadResult> {
  const p = Bun.spawn(["bun", loadScript, `${url}/api/v1/events`, "100000000", "1000", "4", String(seconds), "1000", "now", String(rate)], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(p.stdout).text();
  await p.exited;
  return JSON.parse(out.trim().split("\n").pop()!) as LoadResult;
}

/** The day query's time in ms, or NaN when it failed on a file compaction had just replaced (counted, not fatal: a checkout without the retry meets it). */
async function query(url: string): Promise<number> {
  const t = performance.now();
  const res = await fetch(`${url}/api/v1/query`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ sql: heavySql }) });
  const body = await res.json() as { rows?: unknown[]; error?: string };
  if (res.status === 400 && /Cannot open file/.test(body.error ?? "")) return NaN;
  if (res.status !== 200 || body.rows?.length !== 100) throw new Error(`day query: ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
  return performance.now() - t;
}

/** The data directory a weir process was started with (weir-process.ts makes a fresh one). */
async function dataDirOf(pid: number): Promise<string> {
  const env = (await Bun.file(`/proc/${pid}/environ`).text()).split("\0");
  return env.find((kv) => kv.startsWith("WEIR_DATA_DIR="))!.slice("WEIR_DATA_DIR=".length);
}

/** A fresh weir process with the day written into its lake; `work` run against it. */
async function withWeir<T>(env: Record<string, string>, work: (w: WeirProcess, dataDir: string) => Promise<T>): Promise<T> {
  const w = await startWeirProcess({ WEIR_QUERY_TIMEOUT: "60s", ...env });
  try {
    const dataDir = await dataDirOf(w.pid);
    await writeDay(dataDir);
    return await work(w, dataDir);
  } finally {
    await w.stop();
  }
}

/** One case: the load at `rate` (0: flat out), with the day query run back to back by two clients when the case says so. */
async function runCase(name: CaseName, rate: number): Promise<CaseResult> {
  const c = cases[name];
  return withWeir(c.env, async (w) => {
    let stop = false;
    let queries = 0;
    let queryErrors = 0;
    const deadline = performance.now() + (seconds + 30) * 1000;
    const client = async () => {
      for (let i = 0; i < 10_000 && !stop && performance.now() < deadline; i++) {
        if (Number.isNaN(await query(w.url))) queryErrors++;
        else queries++;
      }
    };
    const cpu0 = await cpuSecondsOf(w.pid);
    const threads0 = threadCpu(w.pid);
    const clients = c.queries ? [client(), client()] : [];
    const load = await runLoad(w.url, rate);
    const cpu1 = await cpuSecondsOf(w.pid);
    stop = true;
    await Promise.all(clients);
    const waitedMs = loadMode && c.env.WEIR_LAKE === "1" ? await lakeCaughtUp(w.url, dayEvents + load.accepted) : (await Bun.sleep(settleMs), 0);
    const cpu2 = await cpuSecondsOf(w.pid);
    let lakeCpuS = 0;
    for (const [tid, t] of threadCpu(w.pid)) if (t.nice >= limits.lakeThreadNice) lakeCpuS += t.cpuS - (threads0.get(tid)?.cpuS ?? 0);
    const perEvent = (cpu: number) => ((cpu - cpu0.process) / load.accepted) * 1e6;
    return {
      rate: load.accepted / load.seconds, ackMsP50: load.ackMsP50, ackMsP99: load.ackMsP99, cpuUsPerEvent: perEvent(cpu1.process),
      cpuUsPerEventSettled: perEvent(cpu2.process), lakeCpuUsPerEvent: (lakeCpuS / load.accepted) * 1e6, caughtUpMs: waitedMs, queries, queryErrors,
    };
  });
}

/**
 * Polls SQL's count of `events` until it is at least `n` (more: weir took a
 * batch whose answer the load did not see); the ms it waited. The poll's own
 * queries are small: counts from Parquet metadata.
 */
async function lakeCaughtUp(url: string, n: number): Promise<number> {
  const t = performance.now();
  let last = "";
  for (let i = 0; i < 120; i++) { // at most a minute
    const res = await fetch(`${url}/api/v1/query`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ sql: "SELECT count(*)::INTEGER AS n FROM events" }) });
    const body = await res.json() as { rows?: number[][]; error?: string };
    if (res.status === 200 && (body.rows?.[0]?.[0] ?? 0) >= n) return performance.now() - t;
    last = `${res.status} ${JSON.stringify(body).slice(0, 200)}`;
    await Bun.sleep(500);
  }
  throw new Error(`the lake did not show ${n} events within a minute (last answer: ${last})`);
}

/** Each thread of `pid`: user + system CPU-seconds and its nice value (/proc/<pid>/task/<tid>/stat); threads gone meanwhile are missed. */
function threadCpu(pid: number): Map<number, { cpuS: number; nice: number }> {
  const out = new Map<number, { cpuS: number; nice: number }>();
  const clockTicksPerSecond = 100; // USER_HZ on Linux
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8").split(") ")[1].split(" ");
      out.set(Number(tid), { cpuS: (Number(f[11]) + Number(f[12])) / clockTicksPerSecond, nice: Number(f[16]) });
    } catch { /* the thread ended between the listing and the read */ }
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/** A against B at a fixed rate, A B / B A alternating by round; per figure the median over rounds and the median of the per-round ratios. */
async function pairAtRate(a: CaseName, b: CaseName, rate: number) {
  const rs: Array<{ a: CaseResult; b: CaseResult }> = [];
  const rested = async (name: CaseName) => {
    await Bun.sleep(pauseMs);
    return runCase(name, rate);
  };
  for (let r = 0; r < rounds; r++) {
    const first = r % 2 === 0 ? a : b;
    const x = await rested(first);
    const y = await rested(first === a ? b : a);
    rs.push(first === a ? { a: x, b: y } : { a: y, b: x });
    console.error(`  round ${r + 1} ${a} vs ${b}: ${JSON.stringify(rs[r])} load ${loadavg()[0].toFixed(2)}`);
  }
  const fig = (k: keyof CaseResult) => ({ [a]: median(rs.map((p) => p.a[k])), [b]: median(rs.map((p) => p.b[k])), ratio: median(rs.map((p) => p.b[k] / p.a[k])) });
  return { rate: fig("rate"), ackMsP50: fig("ackMsP50"), ackMsP99: fig("ackMsP99"), cpuUsPerEvent: fig("cpuUsPerEvent"), cpuUsPerEventSettled: fig("cpuUsPerEventSettled"), lakeCpuUsPerEvent: fig("lakeCpuUsPerEvent"), queries: median(rs.map((p) => p.b.queries)), queryErrors: rs.reduce((n, p) => n + p.b.queryErrors, 0) };
}

export async function benchLake() {
  const queryMs = await withWeir({ WEIR_LAKE: "0" }, async (w) => {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) times.push(await query(w.url));
    return median(times);
  });
  const saturated = { lakeOff: await runCase("lakeOff", 0), compacting: await runCase("compacting", 0), querying: await runCase("querying", 0) };
  console.error(`saturation: ${JSON.stringify(saturated)} load ${loadavg()[0].toFixed(2)}`);
  const rate = share > 1 ? share : Math.round((saturated.lakeOff.rate * share) / 1000) * 1000; // > 1: an offered rate in events/s, the same for runs to compare
  const compaction = await pairAtRate("lakeOff", "compacting", rate);
  const querying = await pairAtRate("compacting", "querying", rate);
  return {
    name: "lake (DuckDB over Parquet)",
    dayQueryMs: queryMs,
    saturation: { ...saturated, compactionRatio: saturated.compacting.rate / saturated.lakeOff.rate, queryingRatio: saturated.querying.rate / saturated.compacting.rate },
    offeredRate: rate, rounds, secondsPerLoad: seconds,
    atRate: { compaction, querying },
    loadAverage: loadavg(),
  };
}

/** Idle RSS (MiB) and whether libduckdb is mapped, lake off and on, alternating over `n` rounds. */
async function idleRss(n: number) {
  const idleMs = 12_000; // past the first maintenance pass (WEIR_LAKE_INTERVAL 10 s) and its curated snapshot
  const out: Record<string, Array<{ rssMiB: number; duckdbLoaded: boolean }>> = { lakeOff: [], lakeOn: [] };
  for (let r = 0; r < n; r++) {
    for (const [name, lake] of (r % 2 === 0 ? [["lakeOff", "0"], ["lakeOn", "1"]] : [["lakeOn", "1"], ["lakeOff", "0"]]) as Array<[string, string]>) {
      const w = await startWeirProcess({ WEIR_LAKE: lake });
      try {
        await Bun.sleep(idleMs);
        const maps = await Bun.file(`/proc/${w.pid}/maps`).text();
        out[name].push({ rssMiB: Math.round((await rssBytesOf(w.pid)) / 2 ** 20), duckdbLoaded: maps.includes("duckdb") });
      } finally {
        await w.stop();
      }
    }
  }
  return { ...out, loadAverage: loadavg() };
}

/** The compactor's two stages alone, this checkout's and WEIR_DIR's, on the same raw log, in A B / B A order over `n` rounds (see the header). */
async function compactionCpu(events: number, n: number) {
  const w = await startWeirProcess({ WEIR_LAKE: "0", WEIR_RAW_SEGMENT: "2s" });
  const src = mkdtempSync(join(tmpdir(), "weir-bench-compact-"));
  try {
    const dataDir = await dataDirOf(w.pid);
    const p = Bun.spawn(["bun", loadScript, `${w.url}/api/v1/events`, String(events), "1000", "4", "60", "1000", "now", "200000"], { stdout: "ignore", stderr: "inherit" });
    await p.exited; // every 202 came after its batch was in the raw log
    cpSync(dataDir, src, { recursive: true });
  } finally {
    await w.stop();
  }
  const checkouts = [join(import.meta.dir, ".."), ...(weirDir === join(import.meta.dir, "..") ? [] : [weirDir])];
  const runs: Record<string, Array<{ tailCpuS: number; tailWallS: number; compactCpuS: number; compactWallS: number; eventsInHourFiles: number; load1: number }>> = {};
  for (let r = 0; r < n; r++) {
    for (const checkout of r % 2 === 0 ? checkouts : [...checkouts].reverse()) (runs[checkout] ??= []).push(await compactOnce(checkout, src));
    console.error(`  round ${r + 1}: ${JSON.stringify(Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, v[r]])))}`);
  }
  rmSync(src, { recursive: true, force: true });
  const medians = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, {
    tailCpuS: median(v.map((x) => x.tailCpuS)), compactCpuS: median(v.map((x) => x.compactCpuS)),
    totalCpuS: median(v.map((x) => x.tailCpuS + x.compactCpuS)), totalWallS: median(v.map((x) => x.tailWallS + x.compactWallS)),
  }]));
  return { events, rounds: n, medians, runs, loadAverage: loadavg() };
}

/** One checkout's compactor on a copy of `src`: CPU-seconds (user + system, DuckDB's threads included) and wall seconds of each stage. */
async function compactOnce(checkout: string, src: string) {
  const { Compactor } = await import(join(checkout, "src/lake/compactor.ts"));
  const dir = mkdtempSync(join(tmpdir(), "weir-bench-compact-"));
  cpSync(src, dir, { recursive: true });
  const instance = await DuckDBInstance.create(":memory:", { threads: "1" });
  const conn = await instance.connect();
  const store = openReader(join(dir, "weir.db"));
  const series = store.query("SELECT key, name, tags FROM series WHERE partition = ? AND local = ?");
  const lookup = (part: number, local: number) => {
    const r = series.get(part, local) as { key: string; name: string; tags: string } | null;
    return r === null ? undefined : { key: r.key, name: r.name, tags: JSON.parse(r.tags) as Record<string, string> };
  };
  const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
  try {
    // `conn` for a checkout from before the lazy connection, `duck` after.
    const c = new Compactor({ dataDir: dir, conn, duck: async () => conn, lookup, retentionMs: 3650 * 86_400_000 });
    const segs = listSegments(join(dir, "raw"));
    const [t0, w0] = [cpu(), performance.now()];
    for (let i = 0; i < segs.length; i++) await c.extendTail(segs[i], segs[i + 1] ?? Number.POSITIVE_INFINITY);
    const [t1, w1] = [cpu(), performance.now()];
    for (let i = 0; i < 100 && (await c.pass(Date.now())).compacted > 0; i++) { /* until every closed segment is compacted */ }
    const [t2, w2] = [cpu(), performance.now()];
    const n = (await conn.runAndReadAll(`SELECT count(*)::INTEGER FROM read_parquet('${join(dir, "lake", "raw")}/*/*/*.parquet')`)).getRowsJS()[0][0] as number;
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    return { tailCpuS: r3(t1 - t0), tailWallS: r3((w1 - w0) / 1000), compactCpuS: r3(t2 - t1), compactWallS: r3((w2 - w1) / 1000), eventsInHourFiles: n, load1: r3(loadavg()[0]) };
  } finally {
    store.close();
    conn.closeSync();
    instance.closeSync();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Compaction's cost alone, whole process: lake off vs compacting at `rate` events/s, then both flat out, A B / B A over `rounds`. */
async function compactionLoad(rate: number) {
  const atRate = rate > 0 ? await pairAtRate("lakeOff", "compacting", rate) : null; // 0: flat out only
  const saturation = await pairAtRate("lakeOff", "compacting", 0);
  return { name: "lake compaction vs lake off", checkout: weirDir, offeredRate: rate, rounds, secondsPerLoad: seconds, atRate, saturation, loadAverage: loadavg() };
}

if (import.meta.main) {
  const mode = process.argv[2];
  const result = mode === "rss" ? await idleRss(Number(process.argv[3] ?? 3))
    : mode === "compaction" ? await compactionCpu(Number(process.argv[3] ?? 1_000_000), Number(process.argv[4] ?? 1))
    : mode === "compaction-load" ? await compactionLoad(Number(process.argv[5] ?? 290_000))
    : await benchLake();
  console.log(JSON.stringify(result, null, 1));
}
