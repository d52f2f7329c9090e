/**
 * Line protocol beside JSON, on the same weir: the events of
 * bench/vs-victoria.ts (1,000,000 over 1,000 series, event times spanning
 * the 120 s before the run, bodies of 5,000 from 4 concurrent senders,
 * bench/fixtures/vs-bodies.ts in its own process), once as JSON on POST
 * /api/v1/events (202), once as InfluxDB line protocol on POST
 * /write?precision=ms (204; one line per event: `load_vs,device=d<k>
 * value=<v> <ms>`, the body VictoriaMetrics takes in vs-victoria.ts). Each
 * run has a fresh weir and data directory; the order alternates by round.
 * Per run: accepted events/s (first POST → last 2xx), events per server
 * CPU-second over the same span, and the body bytes. Medians, and the ratio
 * line protocol / JSON (issue 18: "as fast per event as JSON ingest").
 *
 *   bun bench/line-protocol.ts                 (LINE_ROUNDS=3: 6 runs, about 40 s)
 */
import { loadavg } from "node:os";
import { join } from "node:path";
import { quantile, runFixture, startWeirProcess } from "./fixtures/weir-process.ts";

const events = 1_000_000;
const series = 1_000;
const spanMs = 120_000;
const bodyEvents = 5_000;
const senders = 4;
const sendSecondsMax = 120;
const rounds = Number(process.env.LINE_ROUNDS ?? 3);
const formats = ["json", "line"] as const;
type Format = (typeof formats)[number];

interface Sent { accepted: number; rejected: number; seconds: number; serverCpuSeconds: number; bodyBytes: number; otherStatus: number }

async function runOnce(format: Format, round: number) {
  const loadAvg1m = +loadavg()[0].toFixed(2);
  const weir = await startWeirProcess();
  try {
    const url = format === "json" ? `${weir.url}/api/v1/events` : `${weir.url}/write?precision=ms`;
    const t0 = Date.now() - spanMs;
    const sent = await runFixture<Sent>([join(import.meta.dir, "fixtures/vs-bodies.ts"), url, format === "json" ? "json" : "influx", String(events), String(series),
      String(spanMs), String(t0), String(bodyEvents), String(senders), String(sendSecondsMax), String(weir.pid)]).result;
    if (sent.accepted !== events) throw new Error(`${format}: ${sent.accepted} of ${events} events accepted (${sent.otherStatus} other statuses)`);
    return {
      round, format, loadAvg1m, acceptedPerSec: Math.round(sent.accepted / sent.seconds), eventsPerCpuS: Math.round(events / sent.serverCpuSeconds),
      serverCpuS: +sent.serverCpuSeconds.toFixed(2), bodyMiB: +(sent.bodyBytes / 2 ** 20).toFixed(1),
    };
  } finally {
    await weir.stop();
  }
}

const runs: Array<Awaited<ReturnType<typeof runOnce>>> = [];
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? formats : [...formats].reverse();
  for (const f of order) {
    const r = await runOnce(f, round);
    runs.push(r);
    console.log(JSON.stringify(r));
  }
}
const median = (f: Format, key: "acceptedPerSec" | "eventsPerCpuS" | "bodyMiB") =>
  quantile(runs.filter((r) => r.format === f).map((r) => r[key]).sort((a, b) => a - b), 0.5);
console.log("");
console.log(`${"median of the runs".padEnd(28)}  ${"JSON".padStart(10)}  ${"line".padStart(10)}  line/JSON`);
for (const [label, key] of [["accepted events/s", "acceptedPerSec"], ["events per server CPU-s", "eventsPerCpuS"], ["body MiB", "bodyMiB"]] as const) {
  const j = median("json", key);
  const l = median("line", key);
  console.log(`${label.padEnd(28)}  ${String(j).padStart(10)}  ${String(l).padStart(10)}  ${(l / j).toFixed(3)}`);
}
console.log(JSON.stringify({ bench: "line-protocol", rounds, events, series, bodyEvents, senders, runs }));
