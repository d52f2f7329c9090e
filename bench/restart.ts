/**
 * Restart time against the ingest rate (issue 19 item 6): weir runs as a
 * child process (127.0.0.1, port 0, 2 partitions, defaults otherwise); one
 * paced sender posts 100-event requests, every event with a unique id, at
 * each rate for a fixed time; then weir is SIGKILLed and restarted on the
 * same data directory, timed from spawn to /ready 200, alternately
 *
 *   A: with the de-duplication index (ids up to the position it covers, the log after it),
 *   B: with the index file deleted first: every record of WEIR_DEDUPE_WINDOW
 *      is read for its ids, the start-up every earlier commit had,
 *
 * in the order A B A B … Each restart's "recovered" log line says what it
 * read and how long that took (the part the index changes). The rest of
 * spawn → /ready is split by the log lines' times (ms, the same clock as
 * the spawn's): spawn → recovery's start (Bun's start, the imports, the
 * store and the raw log opened: the last segment is scanned whole),
 * recovery, recovery's end → "weir listening" (the store writer's thread,
 * the books, the partition workers' start and replay after their
 * checkpoints), and "listening" → /ready 200. Prints a table with B / A
 * ratios, the breakdown's medians and the load average.
 *
 *   bun bench/restart.ts                              # 1,000 / 3,000 / 6,000 events/s, 60 s each, 3 rounds
 *   bun bench/restart.ts --rates=1000,6000 --seconds=30 --rounds=2
 */
import { strict as assert } from "node:assert";
import { existsSync, mkdtempSync, rmSync, statSync, unlinkSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { WeirProcess } from "../test/ledger/process.ts";
import { waitFor } from "../test/helpers/wait.ts";
import { listSegments, segmentName } from "../src/storage/rawlog.ts";
import { dedupeIndexFile } from "../src/storage/dedupe-index.ts";

const bounds = { rateMax: 20_000, secondsMax: 600, roundsMax: 10, ratesMax: 5 };
const batch = 100;
const seriesCount = 64;

function option(name: string, fallback: string): string {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? fallback : a.slice(name.length + 3);
}

const rates = option("rates", "1000,3000,6000").split(",").map(Number);
const seconds = Number(option("seconds", "60"));
const rounds = Number(option("rounds", "3"));
assert(rates.length <= bounds.ratesMax && rates.every((r) => r > 0 && r <= bounds.rateMax), `--rates: up to ${bounds.ratesMax} rates in (0, ${bounds.rateMax}]`);
assert(seconds >= 5 && seconds <= bounds.secondsMax, `--seconds within [5, ${bounds.secondsMax}]`);
assert(Number.isInteger(rounds) && rounds >= 1 && rounds <= bounds.roundsMax, `--rounds within [1, ${bounds.roundsMax}]`);

interface Recovered { recordsRead: number; idsFromIndex: number; idsInPlace: number; idsFromLog: number; dedupeIndex: string; ms: number; atMs: number }
/** spawn → recovery's start, recovery, → "weir listening", → /ready 200 (ms). */
interface Phases { toRecovery: number; recovery: number; toListening: number; toReady: number }
interface Restart { kind: "A" | "B"; ms: number; recovered: Recovered | null; phases: Phases | null }
interface RateResult { rate: number; sent: number; sentPerSec: number; rawBytes: number; indexBytes: number; restarts: Restart[] }

/** Posts `rate` events/s (100 per request, unique ids) for `seconds`; resolves the events acknowledged. */
async function send(url: string, rate: number, prefix: string): Promise<number> {
  const intervalMs = (1000 * batch) / rate;
  const t0 = performance.now();
  const ts0 = Date.now();
  let acked = 0;
  for (let k = 0; performance.now() - t0 < seconds * 1000; k++) {
    const due = t0 + k * intervalMs;
    const wait = due - performance.now();
    if (wait > 0) await Bun.sleep(wait); // pacing the sender, not waiting on weir
    const events = Array.from({ length: batch }, (_, i) => ({
      name: "restart.bench", tags: { s: String((k * batch + i) % seriesCount) }, value: i, ts: ts0 + Math.floor(k * intervalMs), id: `${prefix}-${k}-${i}`,
    }));
    const res = await fetch(`${url}/api/v1/events`, { method: "POST", body: JSON.stringify(events), headers: { "content-type": "application/json" } });
    await res.arrayBuffer();
    if (res.status === 202) acked += batch;
  }
  return acked;
}

/** The last log line of the current start with this message, parsed. */
function lastLine(w: WeirProcess, msg: string): Record<string, unknown> | null {
  const line = w.logTail(40).split("\n").reverse().find((l) => l.includes(`"msg":"${msg}"`));
  return line === undefined ? null : JSON.parse(line.slice(line.indexOf("{")));
}

/** The last "recovered" log line of the current start. */
function recoveredOf(w: WeirProcess): Recovered | null {
  const j = lastLine(w, "recovered") as Record<string, number & string> | null;
  if (j === null) return null;
  return { recordsRead: j.recordsRead, idsFromIndex: j.idsFromIndex, idsInPlace: j.idsInPlace ?? 0, idsFromLog: j.idsFromLog, dedupeIndex: j.dedupeIndex, ms: j.ms, atMs: Date.parse(j.ts) };
}

/** Where spawn → /ready went, from the log lines' times. */
function phasesOf(w: WeirProcess, spawnAtMs: number, readyMs: number, r: Recovered | null): Phases | null {
  const listening = lastLine(w, "weir listening");
  if (r === null || listening === null) return null;
  const listeningAt = Date.parse(listening.ts as string) - spawnAtMs;
  const recoveryEnd = r.atMs - spawnAtMs;
  return { toRecovery: recoveryEnd - r.ms, recovery: r.ms, toListening: listeningAt - recoveryEnd, toReady: readyMs - listeningAt };
}

async function measureRate(rate: number): Promise<RateResult> {
  const dataDir = mkdtempSync(join(tmpdir(), `issue19-restart-${rate}-`));
  const index = join(dataDir, "raw", dedupeIndexFile);
  const w = await WeirProcess.start({ dataDir, env: { WEIR_LAKE: "0" } });
  try {
    const sent = await send(w.url, rate, `r${rate}`);
    // Killed right after the traffic: the index lags it by up to a second (limits.dedupeIndexFlushMs), which the first A reads from the log.
    assert(existsSync(index), "an index was written while the traffic ran");
    const rawBytes = listSegments(join(dataDir, "raw")).reduce((n, s) => n + statSync(join(dataDir, "raw", segmentName(s))).size, 0);
    const indexBytes = statSync(index).size;
    const restarts: Restart[] = [];
    for (let i = 0; i < rounds * 2; i++) {
      const kind = i % 2 === 0 ? "A" : "B";
      await w.kill9();
      if (kind === "B") unlinkSync(index);
      const spawnAtMs = Date.now();
      const ms = await w.restart();
      const recovered = recoveredOf(w);
      restarts.push({ kind, ms, recovered, phases: phasesOf(w, spawnAtMs, ms, recovered) });
      // The next A needs an index: the one this start writes at its first tick (a B start had none).
      await waitFor(() => existsSync(index), 5_000, "the index after a restart");
      console.log(`  ${rate} events/s: restart ${kind} ${ms.toFixed(0)} ms ${JSON.stringify(recovered)} ${JSON.stringify(restarts.at(-1)!.phases)}`);
    }
    return { rate, sent, sentPerSec: sent / seconds, rawBytes, indexBytes, restarts };
  } finally {
    await w.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const results: RateResult[] = [];
const load0 = loadavg()[0];
for (const rate of rates) {
  console.log(`${rate} events/s for ${seconds} s …`);
  results.push(await measureRate(rate));
}
const load1 = loadavg()[0];

const rows = results.map((r) => {
  const a = r.restarts.filter((x) => x.kind === "A");
  const b = r.restarts.filter((x) => x.kind === "B");
  const ma = median(a.map((x) => x.ms));
  const mb = median(b.map((x) => x.ms));
  const read = (xs: Restart[]) => median(xs.map((x) => x.recovered?.recordsRead ?? NaN));
  const recoveryMs = (xs: Restart[]) => median(xs.map((x) => x.recovered?.ms ?? NaN));
  const inPlace = median(a.map((x) => x.recovered?.idsInPlace ?? NaN));
  const oneByOne = median(a.map((x) => (x.recovered?.idsFromIndex ?? NaN) - (x.recovered?.idsInPlace ?? NaN)));
  return `| ${r.rate.toLocaleString("en")} | ${r.sent.toLocaleString("en")} (${r.sentPerSec.toFixed(0)}/s) | ${(r.rawBytes / 2 ** 20).toFixed(1)} MiB | ${(r.indexBytes / 2 ** 20).toFixed(2)} MiB | ` +
    `${ma.toFixed(0)} (${a.map((x) => x.ms.toFixed(0)).join(", ")}) | ${mb.toFixed(0)} (${b.map((x) => x.ms.toFixed(0)).join(", ")}) | ${(mb / ma).toFixed(2)} | ${recoveryMs(a)} / ${recoveryMs(b)} | ${read(a)} / ${read(b)} | ` +
    `${inPlace.toLocaleString("en")} / ${oneByOne.toLocaleString("en")} |`;
});
const phaseNames: Array<keyof Phases> = ["toRecovery", "recovery", "toListening", "toReady"];
const phaseRows = results.flatMap((r) => (["A", "B"] as const).map((kind) => {
  const xs = r.restarts.filter((x) => x.kind === kind && x.phases !== null).map((x) => x.phases!);
  return `| ${r.rate.toLocaleString("en")} | ${kind} | ${phaseNames.map((k) => median(xs.map((p) => p[k])).toFixed(0)).join(" | ")} |`;
}));
const aMedians = results.map((r) => median(r.restarts.filter((x) => x.kind === "A").map((x) => x.ms)));
const bMedians = results.map((r) => median(r.restarts.filter((x) => x.kind === "B").map((x) => x.ms)));
console.log([
  "",
  `restart after kill -9, spawn → /ready 200, ${seconds} s of ingest per rate, ${batch} events/request with ids, ${seriesCount} series, 2 partitions; A = with the index, B = index deleted (full re-read); order A B A B …`,
  "",
  "| events/s | events sent | raw log | index | A: ms, median (each) | B: ms, median (each) | B / A | of which recovery (ids, series), ms, A / B | records read for it, A / B | A: ids in place / put back one by one |",
  "|---|---|---|---|---|---|---|---|---|---|",
  ...rows,
  "",
  "spawn → /ready, medians (ms): to recovery's start (Bun, imports, store and raw log opened), recovery, → listening (store writer, books, partition workers' start and replay), → /ready 200",
  "",
  "| events/s | run | to recovery | recovery | to listening | to /ready |",
  "|---|---|---|---|---|---|",
  ...phaseRows,
  "",
  `A at the highest rate / A at the lowest: ${(aMedians.at(-1)! / aMedians[0]).toFixed(2)}; B: ${(bMedians.at(-1)! / bMedians[0]).toFixed(2)}`,
  `load average (1 min) at start ${load0.toFixed(2)}, at end ${load1.toFixed(2)}; ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, Bun ${Bun.version}`,
].join("\n"));
