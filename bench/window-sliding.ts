/**
 * The quantile step of a sliding window alone: a 60s/10s window over 10 s
 * panes, slid one pane at a time over 3,000 panes, answered by a pane run
 * (SlidingMerge: the pane that left goes out, the new one comes in, then one
 * read) against the same run merged directly (QuantileSketch.quantilesOfMerge
 * over its 6 panes, as src/actors/window.ts does for small windows). Both
 * give the same answers bit for bit (test/window-sliding.test.ts); this says
 * what each costs a window. Pane sketches are built and sorted beforehand, as
 * the 10s window has sorted them by the time the sliding one closes. Prints
 * figures; asserts nothing on time.
 *
 * @example bun bench/window-sliding.ts
 */
import { createPrng } from "../src/sim/prng.ts";
import { QuantileSketch, SlidingMerge } from "../src/sketch/quantile.ts";

const percentileQs = [0.5, 0.95, 0.99];
const panesPerWindow = 6;
const slides = 3000;
const rounds = 5;

interface Shape { label: string; valuesPerPane: number; value: (rng: ReturnType<typeof createPrng>) => number }
const shapes: Shape[] = [
  { label: "50 lognormal values a pane (exact form)", valuesPerPane: 50, value: (r) => 50 * Math.exp(0.5 * r.gaussian()) },
  { label: "100 lognormal values a pane (exact form)", valuesPerPane: 100, value: (r) => 50 * Math.exp(0.5 * r.gaussian()) },
  { label: "1,000 lognormal values a pane (counts form)", valuesPerPane: 1000, value: (r) => 50 * Math.exp(0.5 * r.gaussian()) },
  { label: "1,000 values across zero a pane (counts form)", valuesPerPane: 1000, value: (r) => 20 + 10 * r.gaussian() },
];

export interface WindowSlidingResult { label: string; runUs: number; directUs: number; ratio: number }

/**
 * µs per window for each shape, the pane run beside the direct merge.
 * @example for (const r of benchWindowSliding()) console.log(r.label, r.ratio);
 */
export function benchWindowSliding(): WindowSlidingResult[] {
  return shapes.map((shape) => {
    const panes = panesOf(shape);
    const out = new Float64Array(percentileQs.length);
    const scratch = new QuantileSketch();
    const parts: QuantileSketch[] = new Array<QuantileSketch>(panesPerWindow);
    const directUs = usPerWindow(() => {
      for (let i = 0; i < slides; i++) {
        for (let k = 0; k < panesPerWindow; k++) parts[k] = panes[i + k];
        QuantileSketch.quantilesOfMerge(parts, panesPerWindow, percentileQs, out, scratch);
      }
    });
    const run = new SlidingMerge();
    const runUs = usPerWindow(() => {
      run.reset(panes[0].isExact);
      for (let k = 0; k < panesPerWindow - 1; k++) run.add(panes[k]);
      for (let i = 0; i < slides; i++) {
        if (i > 0) run.remove(panes[i - 1]);
        run.add(panes[i + panesPerWindow - 1]);
        run.quantiles(percentileQs, out, 0, Infinity); // the clamp range is not what is measured
      }
    });
    return { label: shape.label, runUs, directUs, ratio: directUs / runUs };
  });
}

function panesOf(shape: Shape): QuantileSketch[] {
  const rng = createPrng(7);
  const out = new Float64Array(1);
  return Array.from({ length: slides + panesPerWindow }, () => {
    const s = new QuantileSketch();
    for (let i = 0; i < shape.valuesPerPane; i++) s.add(shape.value(rng));
    s.quantiles([0.5], out); // sorted, as after its 10s window
    return s;
  });
}

/** The best of `rounds` timed rounds after two untimed ones, per window. */
function usPerWindow(round: () => void): number {
  round();
  round();
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const start = performance.now();
    round();
    best = Math.min(best, performance.now() - start);
  }
  return (best * 1000) / slides;
}

if (import.meta.main) {
  for (const r of benchWindowSliding()) {
    console.log(`${r.label}: pane run ${r.runUs.toFixed(2)} µs a window, direct merge of ${panesPerWindow} panes ${r.directUs.toFixed(2)} µs (${r.ratio.toFixed(2)}×)`);
  }
}
