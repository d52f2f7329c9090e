/**
 * Partition outputs: the main thread's side of each partition's output
 * ring. It decodes result rows, stages them for the store, pushes them live
 * (once, even when a restarted worker computes them again), collects
 * checkpoint chunks and commits each checkpoint with its results on the
 * store writer, one commit in flight per partition.
 *
 * @example
 *   const outs = new PartitionOutputs({ slots, staged, writer, ... });
 *   const drains = slots.map((s) => outs.drain(s));
 */
import { Decoder } from "@msgpack/msgpack";
import type { DeadLetters } from "../actors/deadletters.ts";
import type { Fanout } from "../actors/fanout.ts";
import { anomalyRow, type AnomalyRow, type PartitionOutput, trendRow, type TrendRow, windowRow, type WindowRow } from "../actors/result-rows.ts";
import type { SeriesRegistry } from "../actors/series-registry.ts";
import type { RuleTransition } from "../actors/rules/rule-set.ts";
import { ViewAgg } from "../actors/views/view-agg.ts";
import { type CommitJob, loadCheckpoints, type StagedResults, type ViewWindow, type WindowRecord } from "../actors/store.ts";
import type { Database } from "bun:sqlite";
import type { CheckpointMessage, OutputMessage as RingOutputMessage } from "../runtime/codec.ts";
import { limits } from "../runtime/limits.ts";
import type { Log } from "../runtime/log.ts";
import { Ring } from "../runtime/ring.ts";
import { partitionStatSlots } from "../partition/worker-stats.ts";
import type { StoreWriter } from "../storage/store-writer.ts";
import type { EngineMetrics } from "./metrics.ts";

/** A partition worker's output message: its result rows (partition-pipeline.ts) on the ring envelope. */
type OutputMessage = RingOutputMessage<PartitionOutput>;

export interface TrendView { ts: number; slope: number; r2: number; n: number; change: number; level: number; class: string }
export interface AnomalyView { ts: number; value: number; z: number; mean: number; std: number; severity: string; source: string }

/**
 * Where results go besides the live clients (NATS: weir.out.*), each once
 * per process as it is first published live; `id` is the same for a result
 * recomputed after a restart (a Nats-Msg-Id, so an output stream stores it once).
 */
export interface ResultSink {
  window(label: string, id: string, result: WindowRecord): void;
  anomaly(id: string, anomaly: Record<string, unknown>): void;
  trend(id: string, trend: Record<string, unknown>): void;
  alert(id: string, alert: RuleTransition): void;
}

/** What the main thread holds of one partition: its rings, its workers' counters, and its commits. */
export interface PartitionSlot {
  id: number; inRing: Ring; outRing: Ring; stats: BigInt64Array;
  /** The worker incarnation whose output is current; a dead one's leftovers on the ring are dropped. */
  epoch: number;
  /** The checkpoint being received: its bytes (sized by its first chunk, at most limits.checkpointBytesMax), chunks and bytes so far. */
  ck: Uint8Array | null; ckChunks: number; ckBytes: number;
  /** A checkpoint received and not yet sent to the store writer (one is in flight, at most one waits). */
  unwritten: { pos: number; state: Uint8Array } | null;
  /**
   * The commit on the store writer: its job (retried as it is until it is
   * written: its rows are exactly those up to its checkpoint), its
   * checkpoint (a restarted worker starts from it), and the keys of the
   * live results it covers.
   */
  inflight: { job: CommitJob; ck: { pos: number; state: Uint8Array }; liveSent: Set<string>; epoch: number } | null;
  /** Where replay starts when the store has no checkpoint for the partition: -1, or the log end after a config change. */
  floorPos: number;
  /**
   * Keys of the results pushed live since the last committed checkpoint. A
   * restarted worker replays from that checkpoint and computes them again:
   * they are stored, not pushed a second time. Bounded by liveSentMax.
   */
  liveSent: Set<string>;
}

export function createPartitionSlot(id: number, ringBytes: number): PartitionSlot {
  return {
    id,
    inRing: Ring.create(ringBytes),
    outRing: Ring.create(limits.outRingBytesDefault),
    stats: new BigInt64Array(new SharedArrayBuffer(8 * partitionStatSlots.count)),
    epoch: 0, ck: null, ckChunks: 0, ckBytes: 0, unwritten: null, inflight: null, floorPos: -1, liveSent: new Set<string>(),
  };
}

/** A partition's uncommitted live results remembered at most (a checkpoint comes every checkpointRowsMax rows). */
const liveSentMax = limits.checkpointRowsMax * 4;

export interface PartitionOutputsDeps {
  log: Log;
  registry: SeriesRegistry;
  staged: StagedResults;
  fanout: Fanout;
  metrics: EngineMetrics;
  deadletters: DeadLetters;
  /** Result labels by spec index: the configured specs, then the rollups. */
  labels: readonly string[];
  /** Identifies the settings a checkpoint was taken with (stored beside it). */
  checkpointConfig: string;
  /** How many partitions there are (each must speak before a view window is final). */
  partitions: number;
  /** The main thread's store connection, for the last committed checkpoint. */
  db: Database;
  writer: () => StoreWriter;
  /** A view's group series seen with its latest window end and value (listed like any series). */
  views: { seen: (key: string, ts: number, value: number) => void; emitsChanges: (view: string) => boolean };
  /** Rule transitions: each as it arrives (the instances' states), and those of each commit once it is written (their actions). */
  rules: { transition: (t: RuleTransition) => void; committed: (rows: readonly RuleTransition[]) => void };
  /** A partition's checkpoint at `pos`, taken by worker incarnation `epoch`, is committed (NATS: acknowledgements, shared checkpoints). */
  onCommitted: (partition: number, ck: { pos: number; state: Uint8Array }, epoch: number) => void;
}

export class PartitionOutputs {
  /** The latest trend of each series (bounded by the series count), for /api/v1/trends and the series listing. */
  readonly latestTrends = new Map<string, TrendView>();
  /** The latest anomaly of each series while it is open, for the series listing. */
  readonly openAnomalies = new Map<string, AnomalyView>();
  /** The last store failure, until a commit succeeds (for /ready). */
  storeError: string | null = null;
  /** Results out (NATS), when set. */
  sink: ResultSink | null = null;
  /** The rules on views (view-rules.ts), when set: told of each view part, each merge and each new frontier. */
  viewRules: { part(end: number): void; merged(rows: readonly ViewWindow[]): void; frontier(g: number): void } | null = null;
  /** Per partition: how far its view windows are complete as it last said (−Infinity: not yet, this incarnation). */
  private readonly viewFrontier: number[];
  /** Per partition: the earliest end of a view part staged, and of one in its commit in flight (+Infinity: none). */
  private readonly viewStagedEnd: number[];
  private readonly viewInflightEnd: number[];
  /** Per partition: records logged and not yet taken by it, as [position, earliest event time] (recordLogged), oldest first; bounded by its ring. */
  private readonly viewRecords: Array<Array<[number, number]>>;
  /** Set once the workers are stopped: the drains end. */
  private drainsDone = false;
  private stopping = false;
  /** A series write on the store writer: at most one in flight, so a slow writer never piles up jobs. */
  private seriesWriting = false;
  private readonly outScratch = new Uint8Array(limits.ringMessageBytesMax);
  private readonly dec = new Decoder();

  constructor(private readonly d: PartitionOutputsDeps) {
    this.viewFrontier = new Array<number>(d.partitions).fill(-Infinity);
    this.viewStagedEnd = new Array<number>(d.partitions).fill(Infinity);
    this.viewInflightEnd = new Array<number>(d.partitions).fill(Infinity);
    this.viewRecords = Array.from({ length: d.partitions }, () => []);
  }

  /**
   * A new incarnation of the partition's worker starts: whatever the
   * previous one staged or left on the output ring is dropped (replay
   * recomputes it); resolves the checkpoint it starts from, the one in
   * flight before the last committed.
   */
  beginIncarnation(p: PartitionSlot): { pos: number; state: Uint8Array } | undefined {
    p.epoch++;
    Atomics.store(p.stats, partitionStatSlots.owner, BigInt(p.epoch)); // the previous incarnation stops consuming
    this.d.staged.discard(p.id); // a commit in flight is not: the new worker starts from its checkpoint
    this.viewFrontier[p.id] = -Infinity; // until the new worker says
    this.viewStagedEnd[p.id] = Infinity;
    p.ck = null;
    p.ckChunks = 0;
    p.ckBytes = 0;
    p.unwritten = null;
    return p.inflight?.ck ?? loadCheckpoints(this.d.db).get(p.id);
  }

  /**
   * Cluster mode, the partition changing hands: once its worker is gone and
   * its commit in flight answered, `ck` (a taken-over state, or an empty
   * one) is committed as its checkpoint, so its next incarnation starts
   * from it and replays nothing before `ck.pos`.
   */
  async replaceCheckpoint(p: PartitionSlot, ck: { pos: number; state: Uint8Array }): Promise<void> {
    while (p.inflight !== null) await Bun.sleep(limits.storeFlushMs);
    p.unwritten = null; // the ended worker's: superseded
    p.ck = null;
    p.ckChunks = 0;
    this.d.staged.discard(p.id);
    p.liveSent = new Set();
    const job = this.d.staged.take(p.id, { pos: ck.pos, state: ck.state, config: this.d.checkpointConfig });
    try {
      await this.d.writer().commit(job);
    } catch (e) {
      this.d.staged.restoreSeries(job.series); // they go with the next job
      throw e; // the caller (a takeover) fails and is tried again
    } finally {
      this.d.staged.settle(p.id);
    }
  }

  /** Reads the partition's output ring until stop() (a burst yields a turn to ingest and reads between rounds). */
  async drain(p: PartitionSlot): Promise<void> {
    while (!this.drainsDone) {
      // Staging is bounded by the worker: it checkpoints after limits.checkpointRowsMax rows, at the next
      // record boundary. Waiting here for room before its checkpoint arrived would deadlock; only a commit
      // that failed (disk full, I/O) stops the drain, and the worker then stops at its full output ring.
      if (p.unwritten !== null) {
        await Bun.sleep(limits.storeFlushMs);
        this.commitCheckpoint(p);
        continue;
      }
      if (!this.handleOutput(p, false)) await p.outRing.waitForDataAsync(limits.workerTickMs);
      else await new Promise((r) => setImmediate(r));
    }
  }

  /** Stop begins: a failed commit is no longer retried (the next start replays it). */
  stop(): void {
    this.stopping = true;
  }

  /** The workers are stopped: ends the drains and handles what is left on the rings. */
  async finish(slots: readonly PartitionSlot[], drains: readonly Promise<void>[]): Promise<void> {
    this.drainsDone = true;
    await Promise.all(drains);
    for (const p of slots) this.handleOutput(p, true);
  }

  /** Handles the output messages waiting on a partition's ring; false when there were none. */
  private handleOutput(p: PartitionSlot, all: boolean): boolean {
    let any = false;
    for (let i = 0; all || i < limits.outMessagesPerTurnMax; i++) {
      const len = p.outRing.popInto(this.outScratch);
      if (len < 0) break;
      any = true;
      const m = this.dec.decode(this.outScratch.subarray(0, len)) as OutputMessage | CheckpointMessage;
      if (m.e !== p.epoch) continue; // left by a dead incarnation: its replacement recomputes it
      if (m.k === "ck") {
        this.onCheckpointChunk(p, m);
        continue;
      }
      // Running values first: one of a window this message also closes was taken before it closed.
      for (const row of m.u ?? []) this.publishUpdate(p, row);
      for (const row of m.w) this.publishWindow(p, row);
      for (const row of m.a) this.publishAnomaly(p, row);
      for (const row of m.t) this.publishTrend(p, row);
      for (const t of m.r ?? []) this.publishTransition(p, t);
      // A delta's sketch and distinct registers are views of this ring's scratch buffer: copied, through the aggregate.
      for (const d of m.v ?? []) {
        this.d.staged.addViewDelta(p.id, { ...d, a: ViewAgg.restore(d.a).snapshot() });
        if (d.e < this.viewStagedEnd[p.id]) this.viewStagedEnd[p.id] = d.e;
        this.viewRules?.part(d.e);
      }
      if (m.f !== undefined) {
        this.viewFrontier[p.id] = m.f; // after its `v` rows: they are staged above
        const q = this.viewRecords[p.id];
        let k = 0;
        while (k < q.length && q[k][0] <= m.fp!) k++;
        if (k > 0) q.splice(0, k); // taken by the partition: in its frontier now
        this.advanceViews();
      }
      this.d.metrics.late.inc(m.late.length);
      const now = Date.now();
      for (const [sid, ts, value] of m.late) this.d.deadletters.addLate(now, this.d.registry.idAt(p.id, sid), ts, value);
    }
    if (any) this.d.fanout.flush(); // clients not inside their throttle get results now, not at the next tick
    return any;
  }

  /**
   * The view windows every partition has completed and committed: ending at
   * or before the least of the partitions' frontiers and before any part
   * still staged or in a commit (view-rules.ts judges them).
   */
  private advanceViews(): void {
    if (this.viewRules === null) return;
    let g = Infinity;
    for (let i = 0; i < this.d.partitions; i++) {
      let f = Math.min(this.viewFrontier[i], this.viewStagedEnd[i] - 1, this.viewInflightEnd[i] - 1);
      for (const [, minTs] of this.viewRecords[i]) if (minTs < f) f = minTs; // its events lie in windows ending after minTs
      if (f < g) g = f;
    }
    if (Number.isFinite(g)) this.viewRules.frontier(g); // +Infinity: no partition has a series yet
  }

  /** A record logged (IngestPath.onRecord): its events hold each partition's view frontier back until that partition has taken it. */
  recordLogged(pos: number, minTs: Float64Array): void {
    for (let p = 0; p < minTs.length; p++) if (minTs[p] !== Infinity) this.viewRecords[p].push([pos, minTs[p]]);
  }

  private publishWindow(p: PartitionSlot, row: WindowRow): void {
    const { sid, spec, start, end, count, sum, min, max, p50, p95, p99, first, last, closedMs } = windowRow.decode(row);
    const series = this.d.registry.keyOf(p.id, sid);
    const window = this.d.labels[spec];
    const r: WindowRecord = { series, window, start, end, count, sum, min, max, avg: sum / count, p50, p95, p99, first, last };
    this.d.staged.addWindow(p.id, r);
    if (!firstLive(p, `w|${window}|${series}|${start}`)) return;
    this.d.metrics.windowsEmitted.inc();
    // A window result is final: two windows of a series are two points, so only repeats of one window conflate.
    this.d.fanout.publish("windows", window, series, { type: "window", ...r }, closedMs, `${series}|${start}`);
    this.sink?.window(window, `w|${window}|${series}|${start}`, r);
  }

  /** The running values of an open window (updates:<spec>:<glob>): live only, never stored; conflated per series and window. */
  private publishUpdate(p: PartitionSlot, row: WindowRow): void {
    const { sid, spec, start, end, count, sum, min, max, p50, p95, p99, first, last } = windowRow.decode(row);
    const series = this.d.registry.keyOf(p.id, sid);
    const window = this.d.labels[spec];
    const msg = { type: "update", series, window, start, end, count, sum, min, max, avg: sum / count, p50, p95, p99, first, last };
    this.d.fanout.publish("updates", window, series, msg, 0, `${series}|${start}`);
  }

  private publishAnomaly(p: PartitionSlot, row: AnomalyRow): void {
    const { sid, ts, value, z, mean, std, severity, source, baselineN, baselineFromTs, closedMs, test, expectedLo, expectedHi } = anomalyRow.decode(row);
    const series = this.d.registry.keyOf(p.id, sid);
    const view: AnomalyView = { ts, value, z, mean, std, severity, source };
    this.openAnomalies.set(series, view);
    this.d.staged.addAnomaly(p.id, {
      series, ts, value, z, mean, std, severity, source, baseline_n: baselineN, baseline_from: baselineFromTs, test, expected_lo: expectedLo, expected_hi: expectedHi,
    });
    if (!firstLive(p, `a|${series}|${ts}`)) return;
    const msg = { series, ...view, baselineN, baselineFromTs, test, expected: [expectedLo, expectedHi] };
    this.d.fanout.publish("anomalies", undefined, series, { type: "anomaly", ...msg }, closedMs, `${series}|${ts}`);
    this.d.fanout.publish("alerts", undefined, series, { type: "alert", kind: "anomaly", ...msg }, closedMs, `${series}|${ts}`);
    this.sink?.anomaly(`a|${series}|${ts}`, msg);
  }

  private publishTrend(p: PartitionSlot, row: TrendRow): void {
    const { sid, end, slope, r2, n, change, level, class: cls } = trendRow.decode(row);
    const series = this.d.registry.keyOf(p.id, sid);
    const view: TrendView = { ts: end, slope, r2, n, change, level, class: cls };
    this.latestTrends.set(series, view);
    this.d.staged.setTrend(p.id, { series, ...view });
    if (!firstLive(p, `t|${series}|${end}`)) return;
    this.d.fanout.publish("trends", undefined, series, { type: "trend", series, ...view }, 0, series);
    this.sink?.trend(`t|${series}|${end}`, { series, ...view });
  }

  /**
   * View windows as a commit merged them (every partition's parts so far):
   * their series listed, their windows pushed (a window revised by a later
   * part is pushed again: same series and start, conflated), `having` hits
   * as alerts of kind view.
   */
  private publishViews(rows: readonly ViewWindow[]): void {
    for (const v of rows) {
      const r = v.record;
      this.d.views.seen(r.series, r.end, r.last);
      const msg = { view: v.view, ...r, ...(v.distinct === null ? {} : { count_distinct: v.distinct }) };
      this.d.fanout.publish("windows", r.window, r.series, { type: "window", ...msg }, 0, `${r.series}|${r.start}`);
      // emit: changes also on updates:<spec>:<glob>, the running values of the open window.
      if (this.d.views.emitsChanges(v.view)) this.d.fanout.publish("updates", r.window, r.series, { type: "update", ...msg }, 0, `${r.series}|${r.start}`);
      if (v.hit !== null) {
        this.d.fanout.publish("alerts", undefined, r.series, { type: "alert", ...v.hit }, 0, `v|${v.view}|${r.series}|${r.start}`);
      }
    }
    this.d.fanout.flush();
  }

  private publishTransition(p: PartitionSlot, t: RuleTransition): void {
    this.d.staged.addAlert(p.id, t);
    this.d.rules.transition(t);
    const id = `r|${t.rule}|${t.series}|${t.ts}|${t.state}`;
    if (!firstLive(p, id)) return;
    this.announceTransition(t, id);
  }

  /** Transitions of the rules on views once written (view-rules.ts): followed, published and handed to the actions as a partition's committed ones are. */
  viewTransitions(rows: readonly RuleTransition[]): void {
    for (const t of rows) {
      this.d.rules.transition(t);
      this.announceTransition(t, `r|${t.rule}|${t.series}|${t.ts}|${t.state}`);
    }
    this.d.rules.committed(rows);
    this.d.fanout.flush();
  }

  private announceTransition(t: RuleTransition, id: string): void {
    this.d.metrics.ruleTransitions.inc();
    this.d.fanout.publish("alerts", undefined, t.series, { type: "alert", ...t }, 0, id);
    this.sink?.alert(id, t);
  }

  /**
   * Collects a checkpoint's chunks into one buffer of its announced size (one
   * copy out of the ring's scratch: a 50,000-series partition's state is ~25 MB); the last
   * chunk commits it with the partition's staged results.
   */
  private onCheckpointChunk(p: PartitionSlot, m: CheckpointMessage): void {
    if (m.i !== p.ckChunks) throw new Error(`checkpoint chunk ${m.i} after ${p.ckChunks}`); // programmer error
    if (m.i === 0) {
      if (m.total > limits.checkpointBytesMax) throw new Error(`partition ${p.id}: checkpoint over ${limits.checkpointBytesMax} bytes`);
      p.ck = new Uint8Array(m.total);
      p.ckBytes = 0;
    }
    if (p.ckBytes + m.bytes.byteLength > p.ck!.byteLength) throw new Error(`partition ${p.id}: checkpoint chunks over their total`); // programmer error
    p.ck!.set(m.bytes, p.ckBytes); // the decoder's bytes are a view of the scratch buffer
    p.ckBytes += m.bytes.byteLength;
    p.ckChunks++;
    if (m.i + 1 < m.n) return;
    if (p.ckBytes !== p.ck!.byteLength) throw new Error(`partition ${p.id}: checkpoint of ${p.ckBytes} bytes, announced ${p.ck!.byteLength}`);
    p.unwritten = { pos: m.pos, state: p.ck! };
    p.ck = null;
    p.ckChunks = 0;
    this.commitCheckpoint(p);
  }

  /**
   * Sends a partition's waiting checkpoint, with its staged results, to the
   * store writer, unless one of its commits is in flight (then it waits for
   * that one).
   */
  commitCheckpoint(p: PartitionSlot): void {
    const ck = p.unwritten;
    if (ck === null || p.inflight !== null) return;
    p.unwritten = null;
    const job = this.d.staged.take(p.id, { pos: ck.pos, state: ck.state, config: this.d.checkpointConfig });
    this.viewInflightEnd[p.id] = this.viewStagedEnd[p.id];
    this.viewStagedEnd[p.id] = Infinity;
    p.inflight = { job, ck, liveSent: p.liveSent, epoch: p.epoch };
    p.liveSent = new Set();
    this.sendCommit(p);
  }

  /** One try of the partition's commit in flight; a failure (disk full, I/O) tries the same job again, until stop. */
  private sendCommit(p: PartitionSlot): void {
    const f = p.inflight!;
    this.d.writer().commit(f.job).then((res) => {
      this.d.staged.settle(p.id);
      p.inflight = null; // its live results are committed: no replay computes them again
      this.storeError = null;
      if (res.views.length > 0) {
        this.publishViews(res.views);
        this.viewRules?.merged(res.views);
      }
      if (this.viewInflightEnd[p.id] !== Infinity) {
        this.viewInflightEnd[p.id] = Infinity;
        this.advanceViews();
      }
      if (f.job.alerts.length > 0) this.d.rules.committed(f.job.alerts);
      this.d.onCommitted(p.id, f.ck, f.epoch);
      this.commitCheckpoint(p); // one that waited goes now
    }, (e: Error) => {
      // Retried every storeFlushMs: said once per cause, not at every try.
      if (this.storeError !== e.message) this.d.log.error("checkpoint commit failed; retrying", { partition: p.id, error: e.message });
      this.storeError = e.message;
      if (this.stopping) {
        p.inflight = null;
        return;
      }
      setTimeout(() => this.sendCommit(p), limits.storeFlushMs);
    });
  }

  /** The store timer: waiting checkpoints go, and the series registered since the last flush are written. */
  flushStore(slots: readonly PartitionSlot[]): void {
    for (const p of slots) this.commitCheckpoint(p);
    if (this.seriesWriting) return;
    const series = this.d.staged.takeSeries();
    if (series.length === 0) return;
    this.seriesWriting = true;
    this.d.writer().writeSeries(series).catch((e: Error) => {
      this.d.staged.restoreSeries(series);
      if (this.storeError !== e.message) this.d.log.error("store flush failed", { error: e.message });
      this.storeError = e.message;
    }).finally(() => {
      this.seriesWriting = false;
    });
  }

  /** At stop: every partition's last checkpoint sent and answered (a failure now is not retried: the next start replays). */
  async settleCommits(slots: readonly PartitionSlot[]): Promise<void> {
    const deadline = Date.now() + limits.storeStopTimeoutMs;
    for (;;) {
      for (const p of slots) this.commitCheckpoint(p);
      if (slots.every((p) => p.inflight === null && (p.unwritten === null || this.storeError !== null))) return;
      if (Date.now() > deadline) {
        this.d.log.error("store: commits still unanswered at stop; the next start replays them", { timeoutMs: limits.storeStopTimeoutMs });
        return;
      }
      await Bun.sleep(5);
    }
  }
}

/** Whether a result is pushed live now: not when a replay after a worker restart computes it again. */
function firstLive(p: PartitionSlot, key: string): boolean {
  const sent = p.liveSent;
  if (sent.has(key) || p.inflight?.liveSent.has(key)) return false;
  if (sent.size >= liveSentMax) sent.clear(); // no checkpoint for that long: a repeat is then possible, a leak is not
  sent.add(key);
  return true;
}
