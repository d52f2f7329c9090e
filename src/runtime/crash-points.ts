/**
 * Test-only crash points (WEIR_CRASH_AT=point:n,…): the n-th time the
 * process reaches a named commit boundary it SIGKILLs itself, so tests can
 * check that each boundary is safe — before a commit, inside it, after it,
 * and between writing the raw log and answering 202. Off (no counting) when
 * the setting is empty.
 *
 * @example
 *   const crash = new CrashPoints({ "ingest.after-log": 3 });
 *   crash.reach("ingest.after-log"); // the third call kills the process
 */
export class CrashPoints {
  private readonly seen = new Map<string, number>();
  constructor(private readonly at: Record<string, number>) {}

  get enabled(): boolean {
    return Object.keys(this.at).length > 0;
  }

  reach(point: string): void {
    const n = this.at[point];
    if (n === undefined) return;
    const count = (this.seen.get(point) ?? 0) + 1;
    this.seen.set(point, count);
    if (count === n) {
      process.stderr.write(`weir: crash point ${point} reached (${n}): SIGKILL\n`);
      process.kill(process.pid, "SIGKILL");
    }
  }
}
