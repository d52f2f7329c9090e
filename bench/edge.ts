/**
 * The edge profile's footprint (issue 18 item 12) beside the default
 * settings, each in its own fresh process: idle RSS after start, then 1,000
 * series at 1 event/s each for EDGE_SECONDS (default 60) sent by `weir
 * load` (2 connections, bodies of 100): RSS at the end, server CPU seconds
 * over the run and per event, and whether every event was taken once. The
 * order alternates by round (EDGE_ROUNDS, default 1).
 *
 *   bun bench/edge.ts
 */
import { join } from "node:path";
import type { LoadReport } from "../src/load/load-run.ts";
import { startWeirProcess } from "./fixtures/weir-process.ts";

const seconds = Number(process.env.EDGE_SECONDS ?? 60);
const rounds = Number(process.env.EDGE_ROUNDS ?? 1);
const idleWaitMs = 5_000;
const profiles: Array<[string, Record<string, string>]> = [["edge", { WEIR_PROFILE: "edge" }], ["default", {}]];

async function run(name: string, env: Record<string, string>) {
  const weir = await startWeirProcess(env);
  try {
    await Bun.sleep(idleWaitMs); // idle: what start-up leaves behind, once its first checkpoints are out
    const idle = (await weir.metrics()).process_resident_memory_bytes ?? NaN;
    const p = Bun.spawn(["bun", join(import.meta.dir, "..", "src", "cli.ts"), "load", "--url", weir.url, "--rate", "1000", "--series", "1000",
      "--seconds", String(seconds), "--batch", "100", "--connections", "2"], { stdout: "pipe", stderr: "ignore" });
    const report = JSON.parse(await new Response(p.stdout).text()) as LoadReport;
    await p.exited;
    return {
      profile: name, idleRssMiB: Math.round(idle / 2 ** 20), loadedRssMiB: Math.round((report.server.rssBytes ?? NaN) / 2 ** 20),
      cpuSeconds: report.server.cpuSeconds, cpuMicrosPerEvent: Math.round(((report.server.cpuSeconds ?? NaN) / report.accepted) * 1e6),
      cpuPercentOfOneCore: +(((report.server.cpuSeconds ?? NaN) / report.seconds) * 100).toFixed(1),
      accepted: report.accepted, statuses: report.statuses, matches: report.server.matches,
    };
  } finally {
    await weir.stop();
  }
}

const rows: Array<Awaited<ReturnType<typeof run>>> = [];
for (let r = 0; r < rounds; r++) {
  for (const [name, env] of r % 2 === 0 ? profiles : [...profiles].reverse()) {
    const row = await run(name, env);
    rows.push(row);
    console.log(JSON.stringify(row));
  }
}
const of = (p: string) => rows.filter((r) => r.profile === p);
const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
for (const key of ["idleRssMiB", "loadedRssMiB", "cpuMicrosPerEvent"] as const) {
  const e = avg(of("edge").map((r) => r[key] as number));
  const d = avg(of("default").map((r) => r[key] as number));
  console.log(`${key.padEnd(20)} edge ${e.toFixed(1).padStart(8)}  default ${d.toFixed(1).padStart(8)}  edge/default ${(e / d).toFixed(2)}`);
}
