/**
 * Where weir's CPU goes, by thread, in the side by side's shape (1,000,000
 * events over 1,000 series, 5,000-event JSON bodies, 4 senders: the sender
 * of bench/vs-victoria.ts). Bun's profiler sees the main thread only; this
 * reads every thread's user + system time from /proc/<pid>/task/<tid>/stat
 * before and after the load, so the partition workers, the store writer,
 * the ingest threads and the runtime's own threads (JIT compilers, GC
 * helpers, the allocator's scavenger) are counted too.
 *
 * `WARM=n` first sends n loads of the same shape (older event times) into
 * the same process, so the measured one runs on compiled code; with 0 (the
 * default) the process is fresh, as in the side by side.
 *
 *   bun bench/thread-cpu.ts                  # WEIR_INGEST_THREADS etc. pass through to weir
 *   WARM=2 bun bench/thread-cpu.ts
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runFixture, startWeirProcess, type WeirProcess } from "./fixtures/weir-process.ts";

const events = 1_000_000;
const series = 1_000;
const spanMs = 120_000;
const batch = 5_000;
const senders = 4;
const runSecondsMax = 60;
const settleMs = 1_500; // after the last 2xx: the workers finish the rings and commit
const warm = Number(process.env.WARM ?? 0);

/** CPU seconds per thread, keyed "tid name" (names: bun = the main thread, Worker = a worker thread, JITWorker, …). */
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(`${tid} ${name}`, (Number(f[11]) + Number(f[12])) / 100); // USER_HZ
    } catch { /* the thread ended */ }
  }
  return out;
}

async function load(w: WeirProcess, t0: number): Promise<{ accepted: number; seconds: number }> {
  return runFixture<{ accepted: number; seconds: number }>([join(import.meta.dir, "fixtures/vs-bodies.ts"), `${w.url}/api/v1/events`, "json",
    String(events), String(series), String(spanMs), String(t0), String(batch), String(senders), String(runSecondsMax), String(w.pid)]).result;
}

const w = await startWeirProcess();
try {
  for (let i = 0; i < warm; i++) await load(w, Date.now() - 3_600_000 + i * (spanMs + 10_000));
  await Bun.sleep(settleMs);
  const before = threadCpu(w.pid);
  const sent = await load(w, Date.now() - spanMs);
  await Bun.sleep(settleMs);
  const after = threadCpu(w.pid);
  const byRole = new Map<string, number>();
  let total = 0;
  const mainTid = String(w.pid);
  for (const [key, cpu] of after) {
    const d = cpu - (before.get(key) ?? 0);
    const [tid, name] = key.split(" ");
    const role = tid === mainTid ? "main thread" : name === "Worker" ? "worker threads (partitions, store writer, ingest)" : `runtime: ${name}`;
    byRole.set(role, (byRole.get(role) ?? 0) + d);
    if (name === "Worker" && d >= 0.01) byRole.set(`  worker ${tid}`, d);
    total += d;
  }
  console.log(`${sent.accepted} events accepted in ${sent.seconds.toFixed(2)} s, ${warm} warm-up loads first; ${Math.round(sent.accepted / total / 1000)} k events per server CPU-second`);
  console.log("| thread | CPU-s | share |");
  console.log("|---|---|---|");
  for (const [role, cpu] of [...byRole].sort((a, b) => (a[0].startsWith("  ") ? 1 : 0) - (b[0].startsWith("  ") ? 1 : 0) || b[1] - a[1])) {
    if (cpu >= 0.01) console.log(`| ${role} | ${cpu.toFixed(2)} | ${((cpu / total) * 100).toFixed(0)} % |`);
  }
  console.log(`| total | ${total.toFixed(2)} | |`);
} finally {
  await w.stop();
}
