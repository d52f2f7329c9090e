/**
 * The anomaly state's checkpoint at many series: the snapshot and the
 * restore in one piece against the same in slices (columns copied 1 MiB a
 * slice, yielding between: what the partition worker runs, beating between
 * slices). Prints, per round, each one's total and the longest stretch
 * without a yield (in one piece, the whole), alternating which runs first.
 *
 * @example bun bench/anomaly-snapshot.ts            # 100,000 series, 6 rounds
 *          bun bench/anomaly-snapshot.ts 20000 4
 */
import { createAnomalyLogic } from "../src/actors/anomaly.ts";
import type { EventBatch } from "../src/actors/window.ts";

const series = Number(process.argv[2] ?? 100_000);
const rounds = Number(process.argv[3] ?? 6);
const logic = createAnomalyLogic({ seriesMax: series });
const st = logic.init();
const b: EventBatch = { n: series, sid: new Uint32Array(series).map((_, i) => i), ts: new Float64Array(series), value: new Float64Array(series), recvMs: 0 };
for (let r = 0; r < 120; r++) {
  for (let i = 0; i < series; i++) {
    b.ts[i] = 1_700_000_000_000 + r * 1000;
    b.value[i] = Math.sin(i + r) * 10 + (r === 119 && i % 100 === 0 ? 500 : 0); // an alert on every 100th series
  }
  logic.handle(st, b, () => {});
}

/** Runs sliced work, timing each stretch between yields: [total ms, longest ms, slices]. */
function timed<T>(it: Generator<void, T>): { value: T; total: number; longest: number; slices: number } {
  const started = performance.now();
  let at = started;
  let longest = 0;
  let slices = 1;
  for (let r = it.next(); ; r = it.next()) {
    const now = performance.now();
    longest = Math.max(longest, now - at);
    at = now;
    if (r.done) return { value: r.value, total: now - started, longest, slices };
    slices++;
  }
}

const fmt = (x: { total: number; longest: number; slices: number }) => `${x.total.toFixed(1)} ms, longest ${x.longest.toFixed(1)} ms (${x.slices} slices)`;
console.log(`anomaly state of ${series} series (${rounds} rounds, orders alternating)`);
for (let k = 0; k < rounds; k++) {
  const cases = [
    () => {
      const s = timed(logic.snapshotSlices(st));
      const r = timed(logic.restoreSlices(s.value));
      return `sliced: snapshot ${fmt(s)}; restore ${fmt(r)}`;
    },
    () => {
      const t0 = performance.now();
      const snap = logic.snapshot(st);
      const t1 = performance.now();
      logic.restore(snap);
      const t2 = performance.now();
      return `one piece: snapshot ${(t1 - t0).toFixed(1)} ms; restore ${(t2 - t1).toFixed(1)} ms`;
    },
  ];
  if (k % 2 === 1) cases.reverse();
  for (const c of cases) console.log(`  round ${k + 1} ${c()}`);
}
