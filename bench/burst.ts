/**
 * A burst far over capacity (issue 19 item 2): first weir's capacity, as
 * `weir load` flat out with 4 connections measures it; then a fresh weir
 * offered 10× that rate by 40 connections for 30 s (small input rings, so
 * they fill). What must hold: only 2xx, 429 and 503 answers (no other 5xx,
 * no connection errors), no worker restart, goodput (events accepted per
 * second) at least 90 % of capacity, and every event the harness re-sent
 * after a Retry-After landed once (weir's own ingested count equals the
 * events accepted: `matches`). Each load is the real CLI in its own process.
 *
 *   bun bench/burst.ts                  (about a minute; BURST_SECONDS=30, CAPACITY_SECONDS=15)
 */
import { join } from "node:path";
import { startWeirProcess } from "./fixtures/weir-process.ts";
import type { LoadReport } from "../src/load/load-run.ts";

const capacitySeconds = Number(process.env.CAPACITY_SECONDS ?? 15);
const burstSeconds = Number(process.env.BURST_SECONDS ?? 30);
const series = 1_000;
const batch = 500;
const env = { WEIR_LAKE: "0", WEIR_RING_BYTES: "8MiB" };

async function load(url: string, args: string[]): Promise<LoadReport> {
  const p = Bun.spawn(["bun", join(import.meta.dir, "..", "src", "cli.ts"), "load", "--url", url, "--series", String(series), "--batch", String(batch), ...args], { stdout: "pipe", stderr: "ignore" });
  const out = await new Response(p.stdout).text();
  if ((await p.exited) > 1) throw new Error(`weir load exited ${p.exitCode}: ${out}`);
  return JSON.parse(out) as LoadReport;
}

async function run(args: string[]): Promise<LoadReport> {
  const weir = await startWeirProcess(env);
  try {
    return await load(weir.url, args);
  } finally {
    await weir.stop();
  }
}

const capacity = await run(["--connections", "4", "--seconds", String(capacitySeconds)]);
console.log(JSON.stringify({ phase: "capacity", ...capacity }));
const offered = capacity.eventsPerSec * 10;
const burst = await run(["--connections", "40", "--rate", String(offered), "--seconds", String(burstSeconds)]);
console.log(JSON.stringify({ phase: "burst", ...burst }));

const others = Object.entries(burst.statuses).filter(([s]) => !(s === "202" || s === "429" || s === "503"));
const goodput = burst.eventsPerSec / capacity.eventsPerSec;
console.log("");
console.log(`capacity (4 connections, flat out)  ${capacity.eventsPerSec} events/s`);
console.log(`burst offered (40 connections)      ${offered} events/s for ${burstSeconds} s; sent ${burst.sent}`);
console.log(`burst goodput                       ${burst.eventsPerSec} events/s = ${(goodput * 100).toFixed(1)} % of capacity (target ≥ 90 %)`);
console.log(`answers                             ${JSON.stringify(burst.statuses)}; others than 202/429/503: ${others.length === 0 ? "none" : JSON.stringify(others)}`);
console.log(`worker restarts                     ${burst.server.workerRestarts}`);
console.log(`re-sent events landed once          ${burst.server.matches ? "yes" : "NO"} (weir ingested ${burst.server.ingested}, accepted ${burst.accepted}, failed ${burst.failed})`);
console.log(`ack latency under the burst         p50 ${burst.ackLatencyMs.p50} ms, p99 ${burst.ackLatencyMs.p99} ms (capacity run: p50 ${capacity.ackLatencyMs.p50}, p99 ${capacity.ackLatencyMs.p99})`);
console.log(JSON.stringify({ bench: "burst", capacity: capacity.eventsPerSec, offered, goodput: +goodput.toFixed(3), statuses: burst.statuses, workerRestarts: burst.server.workerRestarts, matches: burst.server.matches }));
