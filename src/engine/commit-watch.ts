/**
 * Tells when a raw-log record's effect is committed: once every partition
 * its batches went to has committed a checkpoint at or past its position
 * (a checkpoint at position p covers the records up to p). NATS messages
 * are acknowledged then, not before (commit-then-ack): a message whose
 * effect is not in a committed checkpoint is still redelivered.
 *
 * @example
 *   const watch = new CommitWatch(2, loadCheckpoints(db));
 *   watch.whenCommitted(out.logged.position, out.logged.partitions, () => msg.ack());
 *   watch.committed(0, 4096); // from the store writer's answer
 */
export class CommitWatch {
  private readonly positions: Float64Array;
  private waiting: Array<{ position: number; partitions: readonly number[]; done: () => void }> = [];

  constructor(partitions: number, checkpoints: ReadonlyMap<number, { pos: number }>) {
    this.positions = new Float64Array(partitions).fill(-1);
    for (const [p, c] of checkpoints) if (p < partitions) this.positions[p] = c.pos;
  }

  /** Records waiting for their commit (bounded by the caller: NATS' max_ack_pending). */
  get size(): number {
    return this.waiting.length;
  }

  /** The partition's last committed checkpoint position (−1: none). */
  position(partition: number): number {
    return this.positions[partition];
  }

  /** Calls `done` once the record at `position` is committed in each of `partitions` (at once if it is). */
  whenCommitted(position: number, partitions: readonly number[], done: () => void): void {
    if (this.covers(position, partitions)) done();
    else this.waiting.push({ position, partitions, done });
  }

  /** A checkpoint of `partition` at `position` is committed. */
  committed(partition: number, position: number): void {
    if (position <= this.positions[partition]) return;
    this.positions[partition] = position;
    const still: typeof this.waiting = [];
    for (const w of this.waiting) {
      if (this.covers(w.position, w.partitions)) w.done();
      else still.push(w);
    }
    this.waiting = still;
  }

  private covers(position: number, partitions: readonly number[]): boolean {
    for (const p of partitions) if (this.positions[p] < position) return false;
    return true;
  }
}
