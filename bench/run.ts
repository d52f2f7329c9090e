/**
 * `bun run bench`: every benchmark, each beside its baseline measured in the
 * same run, printed as a table and written to bench/results/latest.json.
 * Figures only; nothing here asserts a timing.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { benchAnomaly } from "./analytics-anomaly.ts";
import type { BenchResult } from "./fixtures/result.ts";
import { benchTrend } from "./analytics-trend.ts";
import { benchDurability } from "./durability.ts";
import { benchHttp } from "./http.ts";
import { benchLiveLatency } from "./live.ts";
import { benchIngestValidate } from "./ingest.ts";
import { benchPipelineColumnar, benchPipelineJson } from "./pipeline.ts";
import { benchRing } from "./ring.ts";
import { benchWindow } from "./window.ts";

type Row = BenchResult;

const only = process.argv[2]; // e.g. "ring", "window", "analytics", "pipeline", "http", "ingest", "durability", "live"; "kill" and "churn" run apart (bench/kill.ts, bench/churn.ts)
const runs: Array<[string, () => Promise<Row>]> = [
  ["ring", () => benchRing() as Promise<Row>],
  ["window", () => benchWindow() as Promise<Row>],
  ["window", () => benchWindow({ rollups: true }) as Promise<Row>],
  ["analytics", () => benchAnomaly()],
  ["analytics", () => benchTrend()],
  ["ingest", () => benchIngestValidate()],
  ["pipeline", () => benchPipelineColumnar()],
  ["pipeline", () => benchPipelineJson()],
  ["http", () => benchHttp({ time: "now" })],
  ["http", () => benchHttp({ time: "fast" })],
  ["durability", () => benchDurability({ batch: 1000 })],
  ["durability", () => benchDurability({ batch: 10 })],
];

const rows: Row[] = [];
for (const [key, run] of runs) {
  if (only && key !== only) continue;
  const r = await run();
  rows.push(r);
  const ns = typeof r.nsPerEvent === "number" ? `   (${r.nsPerEvent.toFixed(1)} ns/event)` : "";
  console.log(`${r.name}\n  ${fmt(r.eventsPerSec)} events/s${ns}   baseline ${fmt(r.baselineEventsPerSec)} events/s   ratio ${r.ratio.toFixed(2)}\n  ${r.notes}`);
}
let live: Awaited<ReturnType<typeof benchLiveLatency>> | undefined;
if (!only || only === "live") {
  live = await benchLiveLatency();
  console.log(`${live.name}\n  p50 ${live.p50Ms.toFixed(2)} ms   p99 ${live.p99Ms.toFixed(2)} ms   max ${live.maxMs.toFixed(2)} ms   (${live.received}/${live.expected} windows)   baseline /health round trip p50 ${live.baselineRttP50Ms.toFixed(2)} ms, p99 ${live.baselineRttP99Ms.toFixed(2)} ms`);
}
const idle = await idleRss();
console.log(`idle RSS with 2 partitions: ${(idle / 2 ** 20).toFixed(1)} MiB`);

const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), bun: Bun.version, platform: process.platform };
const dir = join(import.meta.dir, "results");
mkdirSync(dir, { recursive: true });
// Only a full run replaces the record behind BENCHMARKS.md; a partial one writes beside it.
const file = only ? `partial-${only}.json` : "latest.json";
writeFileSync(join(dir, file), JSON.stringify({ at: new Date().toISOString(), machine, rows, live, idleRssBytes: idle }, null, 1));
console.log(`\nmachine: ${JSON.stringify(machine)}\nwritten bench/results/${file}`);

function fmt(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${(n / 1e3).toFixed(1)} k`;
}

/** RSS of a fresh `bun src/main.ts` (2 partitions, no load) after it settles, read from /proc. */
async function idleRss(): Promise<number> {
  const dir = (await import("node:fs")).mkdtempSync(join((await import("node:os")).tmpdir(), "weir-idle-"));
  const p = Bun.spawn(["bun", join(import.meta.dir, "../src/main.ts")], { env: { ...process.env, WEIR_PORT: "0", WEIR_DATA_DIR: dir, WEIR_LOG_LEVEL: "error" }, stdout: "ignore", stderr: "ignore" });
  try {
    await Bun.sleep(3000); // settle: workers started, nothing to do
    const status = await Bun.file(`/proc/${p.pid}/status`).text();
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
  } finally {
    p.kill("SIGTERM");
    await p.exited;
  }
}
