/**
 * The panes a partition's views still wait for, kept as they change rather
 * than found by a walk over every open pane (ViewSet's "Waiting panes"):
 * per series two pane starts, its oldest open pane's and its first
 * waiting pane's (+Infinity: none), and over all series the two questions
 * asked of them each second and each checkpoint: the earliest waiting pane
 * (low) and the series whose oldest open pane ended by a time (staleSids).
 * A walk over 100,000 series' panes took 25 ms a call in one piece
 * (bench/view-pane-walk.ts, BENCHMARKS.md).
 *
 * Per start, only how many series hold it: a pane opening or closing costs
 * two typed-array reads and at most four map updates. (A set of series per
 * start, tried first, cost the demo's three views about 8 % of the
 * pipeline's events/s against the walk; counts about 4 %, near the host's
 * noise: bench/views-pipeline.ts, BENCHMARKS.md.)
 * low() is O(distinct starts held): pane starts are multiples of the pane,
 * and a partition's open panes span a few of them (its series' lateness and
 * delays). staleSids() is O(distinct starts), and O(series ids) only when
 * some series is stale: a scan of a Float64Array (about 0.1 ms at 100,000).
 * Memory: 16 bytes a series id (below the series bound, seriesMax).
 *
 * @example
 *   const w = new WaitingPanes();
 *   w.set(7, 10_000, 20_000); // series 7: oldest open pane at 10 s, first waiting one at 20 s
 *   w.low(); // 20_000
 *   w.staleSids(10_000); // [7]: its oldest open pane starts at or before 10 s
 */
export class WaitingPanes {
  /** Per sid: the start of its oldest open pane, while it has a pane not cut (else +Infinity). */
  private oldest = new Float64Array(0);
  /** Per sid: the start of its first pane waiting for a view fed by pane (else +Infinity). */
  private first = new Float64Array(0);
  /** How many series have their oldest open pane (with one not cut) at each start. */
  private readonly oldestCount = new Map<number, number>();
  /** How many series have their first waiting pane at each start. */
  private readonly firstCount = new Map<number, number>();

  /** Series `sid`'s keys as they stand now (+Infinity: none). */
  set(sid: number, oldest: number, first: number): void {
    if (sid >= this.oldest.length) this.grow(sid);
    const o = this.oldest[sid];
    if (o !== oldest) {
      move(this.oldestCount, o, oldest);
      this.oldest[sid] = oldest;
    }
    const f = this.first[sid];
    if (f !== first) {
      move(this.firstCount, f, first);
      this.first[sid] = first;
    }
  }

  /**
   * Whether series `sid` holds panes before `start` in both keys (a series
   * no view fed by pane reads has no first): a pane opening there changes
   * neither.
   */
  holdsBefore(sid: number, start: number): boolean {
    if (!(this.oldest[sid] < start)) return false; // past the end: undefined, not held
    const f = this.first[sid];
    return f === Infinity || f < start;
  }

  /** The earliest first waiting pane's start over all series (+Infinity: none). */
  low(): number {
    return minKey(this.firstCount);
  }

  /** The series whose oldest open pane starts at or before `startMax`, in sid order (the order a walk meets them). */
  staleSids(startMax: number): number[] {
    const out: number[] = []; // what the caller then works on: O(series returned)
    if (minKey(this.oldestCount) > startMax) return out;
    for (let sid = 0; sid < this.oldest.length; sid++) if (this.oldest[sid] <= startMax) out.push(sid);
    return out;
  }

  /** No series holds a pane. */
  clear(): void {
    this.oldest.fill(Infinity);
    this.first.fill(Infinity);
    this.oldestCount.clear();
    this.firstCount.clear();
  }

  private grow(sid: number): void {
    const size = Math.max(sid + 1, this.oldest.length * 2, 64);
    for (const key of ["oldest", "first"] as const) {
      const grown = new Float64Array(size).fill(Infinity);
      grown.set(this[key]);
      this[key] = grown;
    }
  }
}

/** One series' key moved from `from` to `to` in a count per start (+Infinity: not counted). */
function move(counts: Map<number, number>, from: number, to: number): void {
  if (from !== Infinity) {
    const n = counts.get(from)! - 1;
    if (n === 0) counts.delete(from);
    else counts.set(from, n);
  }
  if (to !== Infinity) counts.set(to, (counts.get(to) ?? 0) + 1);
}

function minKey(counts: Map<number, number>): number {
  let min = Infinity;
  for (const k of counts.keys()) if (k < min) min = k;
  return min;
}
