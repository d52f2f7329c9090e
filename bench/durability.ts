/**
 * (f) The cost of WEIR_DURABILITY=durable (the raw log fsynced before each
 * 202, with group commit: the requests written in one event-loop turn share
 * one fsync) against the default `fast` profile (written to the OS before
 * the 202, no fsync), on the same load: HTTP JSON bodies from a separate
 * process, 8 requests in flight, 1,000 series, end to end through the
 * window workers. The two profiles alternate, fast–durable–fast–durable, so
 * drift on a shared machine falls on both; each figure is the mean of its
 * two runs (both are printed). Once with 1,000-event bodies, once with
 * 10-event bodies, where the per-request fsync weighs most. Baseline = the
 * fast profile; the ratio is durable / fast.
 *
 *   bun bench/durability.ts [seconds per run]
 */
import type { BenchResult } from "./fixtures/result.ts";
import { benchHttp } from "./http.ts";

interface ProfileFigures { eventsPerSec: number; runs: number[]; ackMsP50: number; ackMsP99: number }
export interface DurabilityBenchResult extends BenchResult { fast: ProfileFigures; durable: ProfileFigures }

const rounds = 2;

export async function benchDurability(opts: { batch: number; seconds?: number }): Promise<DurabilityBenchResult> {
  const seconds = opts.seconds ?? 15;
  const runs: Record<"fast" | "durable", Awaited<ReturnType<typeof benchHttp>>[]> = { fast: [], durable: [] };
  for (let r = 0; r < rounds; r++) {
    for (const durability of ["fast", "durable"] as const) {
      runs[durability].push(await benchHttp({ time: "now", durability, batch: opts.batch, seconds, events: 10_000_000, bareBaseline: false }));
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const figures = (rs: typeof runs.fast): ProfileFigures => ({
    eventsPerSec: mean(rs.map((r) => r.eventsPerSec)), runs: rs.map((r) => r.eventsPerSec),
    ackMsP50: mean(rs.map((r) => r.ackMsP50)), ackMsP99: mean(rs.map((r) => r.ackMsP99)),
  });
  const fast = figures(runs.fast);
  const durable = figures(runs.durable);
  const k = (n: number) => `${(n / 1000).toFixed(1)} k`;
  return {
    name: `(f) durable vs fast profile, HTTP JSON ${opts.batch.toLocaleString("en")}-event bodies, end to end`,
    eventsPerSec: durable.eventsPerSec, baselineEventsPerSec: fast.eventsPerSec, ratio: durable.eventsPerSec / fast.eventsPerSec,
    fast, durable,
    notes: `runs fast ${fast.runs.map(k).join(", ")}, durable ${durable.runs.map(k).join(", ")} events/s (alternating); ` +
      `ack latency p50/p99 fast ${fast.ackMsP50.toFixed(1)}/${fast.ackMsP99.toFixed(1)} ms, durable ${durable.ackMsP50.toFixed(1)}/${durable.ackMsP99.toFixed(1)} ms; baseline = fast profile in the same run`,
  };
}

if (import.meta.main) {
  const seconds = Number(process.argv[2] ?? 15);
  for (const batch of [1000, 10]) console.log(JSON.stringify(await benchDurability({ batch, seconds }), null, 1));
}
