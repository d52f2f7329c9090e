/**
 * (f) The cost of WEIR_DURABILITY=durable (an fsync of the raw log before
 * every 202) against the default `fast` profile (written to the OS before
 * the 202, no fsync), measured back to back in one run on the same load: HTTP
 * JSON bodies from a separate process, 8 requests in flight, end to end
 * through the window workers. Once with 1,000-event bodies, once with
 * 10-event bodies, where the per-request fsync weighs most. Baseline = the
 * fast profile; the ratio is durable / fast.
 *
 *   bun bench/durability.ts [seconds]
 */
import type { BenchResult } from "./fixtures/result.ts";
import { benchHttp } from "./http.ts";

export interface DurabilityBenchResult extends BenchResult {
  fast: { eventsPerSec: number; ackMsP50: number; ackMsP99: number };
  durable: { eventsPerSec: number; ackMsP50: number; ackMsP99: number };
}

export async function benchDurability(opts: { batch: number; seconds?: number }): Promise<DurabilityBenchResult> {
  const seconds = opts.seconds ?? 15;
  const run = (durability: "fast" | "durable") => benchHttp({ time: "now", durability, batch: opts.batch, seconds, events: 10_000_000 });
  const fast = await run("fast");
  const durable = await run("durable");
  const pick = (r: typeof fast) => ({ eventsPerSec: r.eventsPerSec, ackMsP50: r.ackMsP50, ackMsP99: r.ackMsP99 });
  return {
    name: `(f) durable vs fast profile, HTTP JSON ${opts.batch.toLocaleString("en")}-event bodies, end to end`,
    eventsPerSec: durable.eventsPerSec, baselineEventsPerSec: fast.eventsPerSec, ratio: durable.eventsPerSec / fast.eventsPerSec,
    fast: pick(fast), durable: pick(durable),
    notes: `ack latency p50/p99: fast ${fast.ackMsP50.toFixed(1)}/${fast.ackMsP99.toFixed(1)} ms, durable ${durable.ackMsP50.toFixed(1)}/${durable.ackMsP99.toFixed(1)} ms; baseline = fast profile in the same run`,
  };
}

if (import.meta.main) {
  const seconds = Number(process.argv[2] ?? 15);
  for (const batch of [1000, 10]) console.log(JSON.stringify(await benchDurability({ batch, seconds }), null, 1));
}
