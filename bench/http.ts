/**
 * (d) HTTP ingest of JSON batches of 1,000 events from a separate process,
 * through validation, the raw log, the rings and the window workers, until
 * every accepted event is aggregated. Baseline in the same run: a bare
 * Bun.serve that parses (JSON.parse) and discards the same bodies, driven by
 * the same load process.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../src/config.ts";
import { silentLog } from "../src/runtime/log.ts";
import { startWeir } from "../src/server.ts";

export interface HttpBenchResult { name: string; eventsPerSec: number; baselineEventsPerSec: number; ratio: number; notes: string; ackMsP50: number; ackMsP99: number }

const loadScript = join(import.meta.dir, "fixtures/http-load.ts");

async function runLoad(url: string, events: number, seconds: number, concurrency: number, time: "now" | "fast", batch = 1000) {
  const p = Bun.spawn(["bun", loadScript, url, String(events), String(batch), String(concurrency), String(seconds), "1000", time], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(p.stdout).text();
  await p.exited;
  return JSON.parse(out.trim().split("\n").pop()!) as { sent: number; accepted: number; refused: number; seconds: number; ackMsP50: number; ackMsP99: number };
}

/**
 * `time: "now"` stamps events when sent (a live producer); `"fast"` runs
 * event time ~100× faster than the wall, so windows close ~100× as often.
 */
export async function benchHttp(opts: { events?: number; seconds?: number; concurrency?: number; time?: "now" | "fast"; durability?: "fast" | "durable"; batch?: number; bareBaseline?: boolean } = {}): Promise<HttpBenchResult> {
  const durability = opts.durability ?? "fast";
  const batch = opts.batch ?? 1000;
  const time = opts.time ?? "now";
  const events = opts.events ?? 10_000_000;
  const seconds = opts.seconds ?? 20;
  const concurrency = opts.concurrency ?? 8;

  const bare = opts.bareBaseline === false ? null : Bun.serve({
    port: 0, hostname: "127.0.0.1", maxRequestBodySize: 16 * 2 ** 20,
    async fetch(req) {
      const parsed = JSON.parse(await req.text()) as unknown[];
      return Response.json({ accepted: parsed.length }, { status: 202 });
    },
  });
  // Without the bare baseline (a caller that brings its own), the ratio below is NaN.
  const base = bare === null ? { accepted: NaN, seconds: 1 } : await runLoad(`http://127.0.0.1:${bare.port}/`, events, seconds, concurrency, time, batch);
  await bare?.stop(true);

  const dir = mkdtempSync(join(tmpdir(), "weir-bench-http-"));
  const w = await startWeir(loadConfig({ WEIR_PORT: "0", WEIR_DATA_DIR: dir, WEIR_LOG_LEVEL: "error", WEIR_DURABILITY: durability }), silentLog);
  const t0 = performance.now();
  const r = await runLoad(`${w.url}/api/v1/events`, events, seconds, concurrency, time, batch);
  const processed = () => w.engine.processedEvents(0) + w.engine.processedEvents(1);
  const deadline = performance.now() + 30_000;
  while (processed() < r.accepted && performance.now() < deadline) await Bun.sleep(2);
  const elapsed = (performance.now() - t0) / 1000;
  const done = processed();
  const late = w.engine.metrics.late.get();
  await w.stop();
  rmSync(dir, { recursive: true, force: true });

  const eventsPerSec = done / elapsed;
  const baselineEventsPerSec = base.accepted / base.seconds;
  return {
    name: `(d) HTTP JSON ingest, ${batch.toLocaleString("en")}-event bodies, end to end, event time ${time === "now" ? "= send time" : "~100× the wall"}${durability === "durable" ? ", WEIR_DURABILITY=durable" : ""}`,
    eventsPerSec, baselineEventsPerSec, ratio: eventsPerSec / baselineEventsPerSec,
    ackMsP50: r.ackMsP50, ackMsP99: r.ackMsP99,
    notes: `${done} events through the window workers of ${r.accepted} accepted (${late} of them late) (${r.refused} refused with 503) in ${elapsed.toFixed(2)} s, ${concurrency} requests in flight, ${durability} profile; baseline = bare Bun.serve + JSON.parse`,
  };
}

if (import.meta.main) console.log(JSON.stringify(await benchHttp(), null, 1));
