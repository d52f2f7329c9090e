/**
 * Candidate shapes for ingest on more than one thread, measured on the parse
 * stage alone (issue 13: "measure the candidate shapes before you choose").
 * The same 1,000,000 events over 1,000 series as bench/vs-victoria.ts, as
 * 5,000-event JSON bodies from 4 concurrent senders (bench/fixtures/vs-bodies.ts,
 * its own process), to a server that only parses and validates them in one
 * shape (bench/fixtures/shape-server.ts): on the main thread; handed to 1 or
 * 2 ingest threads; or 2 workers each serving the port (SO_REUSEPORT).
 * Each run on a fresh server, the order rotating each round; medians.
 *
 *   bun bench/ingest-shapes.ts            # SHAPES_ROUNDS=3
 */
import { join } from "node:path";
import { cpuSecondsOf, freePort, quantile, runFixture } from "./fixtures/weir-process.ts";

const rounds = Number(process.env.SHAPES_ROUNDS ?? 3);
const events = 1_000_000;
const series = 1_000;
const batch = 5_000;
const senders = 4;
const runSecondsMax = 60;
const readyWaitMsMax = 10_000;
const shapes: Array<[string, number]> = [["main", 0], ["handoff", 1], ["handoff", 2], ["reuseport", 2]];

interface Sent { accepted: number; seconds: number; serverCpuSeconds: number }
interface Run { eventsPerSec: number; eventsPerCpuSecond: number; mainThreadCpuSeconds: number }

async function runShape(shape: string, threads: number): Promise<Run> {
  const port = freePort();
  const proc = Bun.spawn(["bun", join(import.meta.dir, "fixtures/shape-server.ts"), shape, String(threads), String(port)], { stdout: "ignore", stderr: "inherit" });
  try {
    const url = `http://127.0.0.1:${port}/api/v1/events`;
    for (let waited = 0; ; waited += 20) {
      if (waited > readyWaitMsMax) throw new Error(`${shape} server not listening on ${port}`);
      try {
        await fetch(url, { method: "POST", body: "{\"name\":\"probe\"}" });
        break;
      } catch { await Bun.sleep(20); }
    }
    const mainBefore = (await cpuSecondsOf(proc.pid)).mainThread;
    const t0 = Date.now() - 120_000;
    const sent = await runFixture<Sent>([join(import.meta.dir, "fixtures/vs-bodies.ts"), url, "json", String(events), String(series),
      "120000", String(t0), String(batch), String(senders), String(runSecondsMax), String(proc.pid)]).result;
    const mainAfter = (await cpuSecondsOf(proc.pid)).mainThread;
    return { eventsPerSec: sent.accepted / sent.seconds, eventsPerCpuSecond: sent.accepted / sent.serverCpuSeconds, mainThreadCpuSeconds: mainAfter - mainBefore };
  } finally {
    proc.kill("SIGKILL");
    await proc.exited;
  }
}

const results = new Map<string, Run[]>();
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < shapes.length; i++) {
    const [shape, threads] = shapes[(i + r) % shapes.length];
    const key = `${shape}/${threads}`;
    const run = await runShape(shape, threads);
    console.error(`round ${r + 1}: ${key}: ${Math.round(run.eventsPerSec / 1000)} k events/s, ${Math.round(run.eventsPerCpuSecond / 1000)} k events/CPU-s, main thread ${run.mainThreadCpuSeconds.toFixed(2)} CPU-s`);
    results.set(key, [...(results.get(key) ?? []), run]);
  }
}
const median = (xs: number[]) => quantile([...xs].sort((a, b) => a - b), 0.5);
const base = median(results.get("main/0")!.map((x) => x.eventsPerSec));
console.log(`| shape (parse stage only; ${rounds} rounds, medians) | events/s | × main | events per CPU-second | main thread CPU-s |`);
console.log("|---|---|---|---|---|");
for (const [key, runs] of results) {
  const eps = median(runs.map((x) => x.eventsPerSec));
  console.log(`| ${key} | ${Math.round(eps / 1000)} k | ${(eps / base).toFixed(2)} | ${Math.round(median(runs.map((x) => x.eventsPerCpuSecond)) / 1000)} k | ${median(runs.map((x) => x.mainThreadCpuSeconds)).toFixed(2)} |`);
}
