/**
 * The embedded engine: wires its parts under a supervisor and owns their
 * lifecycle. The parts, each with one job:
 * - the ingest path (ingest-path.ts): admission, raw log, routing to the
 *   partitions' input rings;
 * - the partition workers (src/partition/), one per partition, supervised;
 * - the partition outputs (partition-outputs.ts): drain, decode, commit on
 *   the store writer thread, live hand-off;
 * - the read model (read-model.ts) that HTTP queries.
 * One instance per process; HTTP reaches it through the ports (ports.ts).
 *
 * @example
 *   const engine = await Engine.start(loadConfig(), log);
 *   const out = await engine.ingestBytes(body, "json"); // or throws
 *   await out.durable; // under WEIR_DURABILITY=durable: answer only after this
 *   await engine.stop();
 */
import { Encoder } from "@msgpack/msgpack";
import type { Database } from "bun:sqlite";
import { join } from "node:path";
import { AnomalyKnobTable } from "../actors/anomaly-knobs.ts";
import { DeadLetters } from "../actors/deadletters.ts";
import { scrubberOf } from "../actors/pii.ts";
import { DedupeSet } from "../actors/dedupe.ts";
import { RuleBook } from "./rule-book.ts";
import { TableBook } from "./table-book.ts";
import type { RefTable } from "../actors/views/table.ts";
import { ViewBook } from "./view-book.ts";
import { ViewRules } from "./view-rules.ts";
import { Fanout } from "../actors/fanout.ts";
import type { BodyFormat } from "../actors/ingest-body.ts";
import type { ParsedEvents } from "../actors/ingest-parse.ts";
import type { RejectReason } from "../actors/ingest-validate.ts";
import { PartitionPipeline, resultLabels, rollupsFor, type Rollup } from "../actors/partition-pipeline.ts";
import { SeriesRegistry } from "../actors/series-registry.ts";
import { checkpointPositions, loadCheckpoints, loadDeadletters, type ReplicaRows, StagedResults } from "../actors/store.ts";
import type { Config } from "../config.ts";
import type { PartitionData, TableData } from "../partition/partition-loop.ts";
import { partitionStatSlots } from "../partition/worker-stats.ts";
import { partitionWorkerUrl } from "../partition/worker-url.ts";
import { IngestClock } from "../runtime/ingest-clock.ts";
import { EventLoopLag } from "../runtime/process-metrics.ts";
import { limits } from "../runtime/limits.ts";
import { parseSeriesKey } from "../runtime/series.ts";
import type { Log } from "../runtime/log.ts";
import { Supervisor } from "../runtime/supervisor.ts";
import { openStore } from "../storage/db.ts";
import { DedupeIndexWriter } from "../storage/dedupe-index.ts";
import { CrashPoints } from "../runtime/crash-points.ts";
import { StoreWriter } from "../storage/store-writer.ts";
import { EngineStartError } from "./errors.ts";
import { CommitWatch } from "./commit-watch.ts";
import { type EngineOutcome, IngestPath, type MessageOrigin } from "./ingest-path.ts";
import { createEngineMetrics, type EngineMetrics } from "./metrics.ts";
import { createPartitionSlot, PartitionOutputs, type PartitionSlot, type ResultSink } from "./partition-outputs.ts";
import type { IngestPort, OpsPort } from "./ports.ts";
import { StoreReadModel } from "./read-model.ts";
import { recoverEngineState, type RecoveredState } from "./recovery.ts";

export { EngineStartError, OverloadedError, TooLargeError } from "./errors.ts";
export type { EngineOutcome, MessageOrigin } from "./ingest-path.ts";

export const version = "0.1.0";

export class Engine implements IngestPort, OpsPort {
  readonly registry: SeriesRegistry;
  readonly fanout: Fanout;
  readonly metrics: EngineMetrics;
  readonly supervisor: Supervisor;
  /** The newest rejected and late events (limits.deadlettersMax). */
  readonly deadletters: DeadLetters;
  readonly dedupe: DedupeSet;
  /**
   * Cluster mode: the prefix per partition of every de-duplication key it
   * remembers, renewed by each resetPartition. A partition taken back later
   * knows only the ids its checkpoint and the takeover's scan bring, not
   * those this process took in an earlier turn (which a checkpoint older
   * than them would otherwise make it skip: lost events).
   */
  private readonly dedupeScopes: string[] | undefined;
  private dedupeTurns = 0;
  /** The main thread's event-loop lag, for /metrics (started with the engine). */
  readonly loopLag = new EventLoopLag();
  /** Result labels by spec index: the configured specs, then the rollups. */
  readonly labels: string[];
  /** What start-up recovered from the store and the raw log (for /metrics and the logs). */
  recovered: RecoveredState | null = null;
  /** Keeps the de-duplication index beside the raw log (null in cluster mode); failed writes counted here. */
  private dedupeIndex: DedupeIndexWriter | null = null;
  dedupeIndexWriteErrors = 0;
  private readonly path: IngestPath;
  private readonly outputs: PartitionOutputs;
  /** The main thread's connection: start-up recovery and reads of checkpoints; the store writer thread does every write after. */
  private readonly db: Database;
  private readonly staged: StagedResults;
  private writer: StoreWriter | null = null;
  /** Receive times, shared with the workers: their quiet rule never passes a request still being admitted. */
  private readonly clock = IngestClock.create();
  /** Identifies the settings a checkpoint was taken with: a state restores only under the same ones. */
  readonly checkpointConfig: string;
  private readonly slots: PartitionSlot[];
  private readonly rollups: Rollup[];
  private readonly timers: Array<ReturnType<typeof setInterval>> = [];
  private drains: Promise<void>[] = [];
  private stopping = false;
  /** When a record's effect is committed in every partition it reached (set once recovery has read the checkpoints). */
  private commits: CommitWatch | null = null;
  private readonly readiness: Array<() => string | null> = [];
  private commitListener: ((partition: number, ck: { pos: number; state: Uint8Array }, incarnation: number) => void) | null = null;
  private emptyStateBytes: Uint8Array | null = null;
  private deadlettersWriting: Promise<void> | null = null;
  /** The alert rules' definitions, instances and actions (rule-book.ts); set by start(). */
  rules!: RuleBook;
  /** The reference tables (table-book.ts; onChange for the views); set by start(). */
  tables!: TableBook;
  /** The continuous views' definitions (view-book.ts); set by start(). */
  views!: ViewBook;
  /** The alert rules on views' results (view-rules.ts); null in cluster mode, where views do not run. */
  viewRules: ViewRules | null = null;

  private constructor(readonly cfg: Config, readonly log: Log) {
    this.db = openStore(join(cfg.dataDir, "weir.db"));
    this.staged = new StagedResults(cfg.partitions);
    this.registry = new SeriesRegistry(cfg.partitions, cfg.maxSeries, (s) => this.staged.addSeries(s));
    this.dedupe = new DedupeSet(cfg.dedupeWindowMs);
    this.deadletters = new DeadLetters(limits.deadlettersMax, (id, ts, value) => {
      const info = this.registry.info(id);
      return { name: info.name, tags: info.tags, ts, value };
    }, scrubberOf(cfg.pii)); // rejected events are kept as received: scrubbed there
    this.checkpointConfig = JSON.stringify({ partitions: cfg.partitions, windows: cfg.windowsText, latenessMs: cfg.latenessMs });
    this.rollups = rollupsFor(cfg.windows);
    this.labels = resultLabels(cfg.windows, this.rollups);
    this.fanout = new Fanout({ windows: cfg.windows.map((w) => w.label), rollups: this.rollups.map((r) => r.label), version });
    this.supervisor = new Supervisor({ log: (level, msg, fields) => log[level](msg, fields) });
    this.slots = Array.from({ length: cfg.partitions }, (_, id) => createPartitionSlot(id, cfg.ringBytes));
    this.metrics = createEngineMetrics(this);
    this.fanout.onDelivered = (ms) => this.metrics.e2eLatency.observe(ms / 1000);
    this.dedupeScopes = cfg.natsCluster ? Array.from({ length: cfg.partitions }, (_, p) => `${p}.0|`) : undefined;
    this.path = new IngestPath({
      cfg, log, registry: this.registry, dedupe: this.dedupe, idScopes: this.dedupeScopes, deadletters: this.deadletters, metrics: this.metrics,
      rings: this.slots.map((s) => s.inRing), clock: this.clock,
    });
    this.outputs = new PartitionOutputs({
      log, registry: this.registry, staged: this.staged, fanout: this.fanout, metrics: this.metrics, deadletters: this.deadletters,
      labels: this.labels, checkpointConfig: this.checkpointConfig, partitions: cfg.partitions, db: this.db, writer: () => this.writer!,
      views: {
        seen: (key, ts, value) => this.seeSeries(key, ts, value, true), // a later merge of the same window is more complete
        emitsChanges: (name) => this.views.emitOf(name) === "changes",
      },
      rules: {
        transition: (t) => this.rules.transition(t),
        committed: (rows) => this.rules.committed(rows),
      },
      onCommitted: (p, ck, incarnation) => {
        this.commits?.committed(p, ck.pos);
        this.commitListener?.(p, ck, incarnation);
      },
    });
  }

  static async start(cfg: Config, log: Log): Promise<Engine> {
    const e = new Engine(cfg, log);
    try {
      e.recovered = recoverEngineState({
        db: e.db, addSeries: (s) => e.staged.addSeries(s), registry: e.registry, dedupe: e.dedupe, rawDir: join(cfg.dataDir, "raw"),
        rawEnd: e.path.rawLog.end, checkpointConfig: e.checkpointConfig, dedupeWindowMs: cfg.dedupeWindowMs, log, cluster: cfg.natsCluster,
      });
      e.deadletters.restore(loadDeadletters(e.db, limits.deadlettersMax));
      e.writer = await StoreWriter.start(join(cfg.dataDir, "weir.db"), cfg.crashAt);
      e.views = ViewBook.load({
        cfg, db: e.db, log, writer: () => e.writer!,
        post: (views) => {
          for (const p of e.slots) e.supervisor.post(`partition-${p.id}`, { type: "views", views });
          e.viewRules?.setViews(e.views.parsed());
          e.hookViewRules();
        },
      });
      e.tables = TableBook.load({
        cfg, db: e.db, log, writer: () => e.writer!,
        busy: () => (e.path.markersWaitingMax() >= limits.tableMarkersWaitingMax ? `${limits.tableMarkersWaitingMax} changes wait for a full partition queue (tableMarkersWaitingMax)` : null),
      });
      // The views' joins read the tables in the partition workers: every change goes to each of them, and a marker
      // on each input ring says where among the events it takes effect.
      const versions = new Map(e.tables.all().map((t) => [t.name, t.version]));
      e.tables.onChange((name, table) => {
        // A deletion takes a version between the table's last and any later one (the book numbers all tables in one sequence).
        const data = tableData(name, table, (versions.get(name) ?? 0) + 0.5);
        versions.set(name, data.version);
        for (const p of e.slots) e.supervisor.post(`partition-${p.id}`, { type: "table", table: data });
        e.path.pushMarker(new Encoder().encode({ k: "tv", name, version: data.version }));
      });
      e.fanout.extraSpecs = () => e.views.list().map((v) => v.window);
      // Running values of plain series are computed where their open windows are: each partition hears who asks.
      e.fanout.onUpdatesInterest = (subs) => {
        for (const p of e.slots) e.supervisor.post(`partition-${p.id}`, { type: "updates", subs });
      };
      e.rules = RuleBook.load({
        cfg, db: e.db, log, writer: () => e.writer!,
        post: (rules) => {
          for (const p of e.slots) e.supervisor.post(`partition-${p.id}`, { type: "rules", rules });
          e.viewRules?.setRules(e.rules.parsed());
          e.hookViewRules();
        },
        series: (pick, max) => {
          const out: string[] = [];
          for (let id = 0; id < e.registry.size && out.length < max; id++) {
            const s = e.registry.info(id);
            if (pick(s.name, s.tags)) out.push(s.key);
          }
          return out;
        },
      });
      if (!cfg.natsCluster) {
        // Views run in one process only (README): their windows close here, for the rules that read them.
        const vr = ViewRules.load({ db: e.db, writer: () => e.writer!, log, committed: (rows) => e.outputs.viewTransitions(rows) });
        vr.setViews(e.views.parsed());
        vr.setRules(e.rules.parsed());
        e.viewRules = vr;
        e.hookViewRules();
      }
    } catch (err) {
      e.path.close();
      e.db.close();
      throw err;
    }
    // Cluster mode: partitions start empty, after a mark past every record of earlier runs.
    const floorPos = cfg.natsCluster ? e.path.appendMark() : e.recovered.floorPos;
    for (const p of e.slots) p.floorPos = floorPos;
    e.commits = new CommitWatch(cfg.partitions, loadCheckpoints(e.db));
    e.supervisor.onEvent((ev) => {
      if (ev.type === "failed") e.path.markFailed(Number(ev.id.slice("partition-".length)));
    });
    for (const p of e.slots) e.startPartition(p);
    e.drains = e.slots.map((p) => e.outputs.drain(p));
    e.timers.push(setInterval(() => e.outputs.flushStore(e.slots), limits.storeFlushMs));
    e.timers.push(setInterval(() => e.path.flushAllMarkers(), limits.storeFlushMs));
    e.timers.push(setInterval(() => void e.flushDeadletters(), limits.storeFlushMs));
    if (!cfg.natsCluster) {
      const crash = new CrashPoints(cfg.crashAt);
      e.dedupeIndex = new DedupeIndexWriter(join(cfg.dataDir, "raw"), e.dedupe, {
        midWrite: () => crash.reach("dedupe-index.mid-write"),
        onError: (err) => {
          e.dedupeIndexWriteErrors++;
          e.log.error("de-duplication index not written; start-up will read more of the raw log", { error: err.message });
        },
      });
      e.timers.push(setInterval(() => e.writeDedupeIndex(), limits.dedupeIndexFlushMs));
    }
    e.timers.push(setInterval(() => e.pruneRawLog(), limits.storePruneMs));
    e.timers.push(setInterval(() => e.prune(), limits.storePruneMs));
    e.timers.push(setInterval(() => e.publishStats(), limits.statsIntervalMs));
    e.timers.push(setInterval(() => e.fanout.flush(), fanoutTickMs));
    e.loopLag.start();
    await e.waitRunning(limits.recoveryTimeoutMs);
    return e;
  }

  /** The rules on views hear of records and view parts only while some rule reads a view (nothing per request otherwise). */
  private hookViewRules(): void {
    const on = this.viewRules?.active === true;
    this.outputs.viewRules = on ? this.viewRules : null;
    this.path.onRecord = on ? (pos, minTs) => this.outputs.recordLogged(pos, minTs) : null;
  }

  /** IngestPort: see IngestPath.shedEarly. */
  shedEarly(): void {
    this.path.shedEarly();
  }

  /** IngestPort: see IngestPath.ingestBytes. */
  ingestBytes(bytes: Uint8Array, format: BodyFormat): Promise<EngineOutcome> {
    return this.path.ingestBytes(bytes, format);
  }

  /** The simulators' entry: the same path, logged as JSON. */
  ingestEvents(events: readonly object[]): EngineOutcome {
    return this.path.ingestEvents(events);
  }

  /** A message that may come again (NATS): see IngestPath.ingestMessage. */
  ingestMessage(bytes: Uint8Array, format: BodyFormat, origin: MessageOrigin): Promise<EngineOutcome & { known: boolean }> {
    return this.path.ingestMessage(bytes, format, origin);
  }

  /** Events validated elsewhere (cluster mode: a share of a message another process split): see IngestPath.ingestParsed. */
  ingestParsed(parsed: ParsedEvents, origin: MessageOrigin): Promise<EngineOutcome & { known: boolean }> {
    return this.path.ingestParsed(parsed, origin);
  }

  /** Counts and dead-letters events refused before they reached the ingest path (NATS mode's HTTP front: a body with none valid; cluster mode's splitter), with where they came from. */
  refusedElsewhere(rejects: ReadonlyArray<{ event: unknown; error: string; reason: RejectReason }>, recvMs: number, source?: Record<string, unknown>): void {
    this.path.refusedElsewhere(rejects, recvMs, source);
  }

  /** Calls `done` once a logged record's effect is in a committed checkpoint of every partition it reached (CommitWatch). */
  whenCommitted(logged: { position: number; partitions: readonly number[] }, done: () => void): void {
    this.commits!.whenCommitted(logged.position, logged.partitions, done);
  }

  /** Records waiting for their commit (NATS messages not yet acknowledged). */
  get commitsWaiting(): number {
    return this.commits?.size ?? 0;
  }

  /** The read model over the store, read through `reader` (a connection of the caller's: HTTP's). */
  readModel(reader: Database): StoreReadModel {
    return new StoreReadModel({
      reader, registry: this.registry, staged: this.staged, latestTrends: this.outputs.latestTrends, openAnomalies: this.outputs.openAnomalies,
      deadletters: this.deadletters, labels: this.labels, specs: this.cfg.windows.map((w) => w.label), partitions: this.cfg.partitions,
      anomalyKnobs: new AnomalyKnobTable(this.cfg.anomalies),
    });
  }

  /** Adds a check to /ready (NATS: its connection): it answers why it is not ready, or null. */
  addReadinessCheck(check: () => string | null): void {
    this.readiness.push(check);
  }

  /** Sends every result first published live to `sink` as well (NATS: weir.out.*). */
  setResultSink(sink: ResultSink | null): void {
    this.outputs.sink = sink;
  }

  /** Cluster mode: every committed checkpoint, with the worker incarnation that took it (src/nats/cluster.ts shares them). */
  onPartitionCommitted(fn: ((partition: number, ck: { pos: number; state: Uint8Array }, incarnation: number) => void) | null): void {
    this.commitListener = fn;
  }

  /**
   * Cluster mode: a partition changes hands. Its worker is ended and a new
   * one starts from `from` (a checkpoint taken over from the previous owner,
   * with the series its state refers to, in local-id order) or empty;
   * nothing already in the local raw log is replayed into it. The caller
   * feeds the partition nothing meanwhile. Resolves to the new worker's
   * incarnation: commits of older ones are not the new owner's.
   */
  async resetPartition(partition: number, from: { state: Uint8Array; series: ReadonlyArray<{ key: string; name: string; tags: Record<string, string> }> } | null): Promise<number> {
    const p = this.slots[partition];
    await this.supervisor.recycle(`partition-${partition}`, async () => {
      if (from !== null) this.registry.adoptPartition(partition, from.series);
      p.floorPos = this.path.appendMark(); // every record before it: the new worker replays none, and skips those still on its ring
      if (this.dedupeScopes !== undefined) this.dedupeScopes[partition] = `${partition}.${++this.dedupeTurns}|`;
      this.emptyStateBytes ??= new Encoder().encode(new PartitionPipeline({ specs: this.cfg.windows, latenessMs: this.cfg.latenessMs, seriesMax: this.cfg.maxSeries, rollups: this.rollups }).snapshot());
      await this.outputs.replaceCheckpoint(p, { pos: p.floorPos, state: from?.state ?? this.emptyStateBytes });
    });
    return p.epoch;
  }

  /** The de-duplication key of an origin key or event id of `partition` (cluster mode: scoped to its current turn). */
  dedupeKey(partition: number, key: string): string {
    return this.dedupeScopes === undefined ? key : this.dedupeScopes[partition] + key;
  }

  /** Holds the partitions' quiet rule at `atMs` until the returned function is called (cluster mode: a partition's backlog is on its way). */
  holdClock(atMs: number): () => void {
    return this.clock.hold(atMs);
  }

  /**
   * Cluster mode: results another process computed for its partitions
   * (src/nats/results-replica.ts), into this store, the series listing and
   * the live feed, so any process answers for all series.
   */
  async acceptReplica(rows: ReplicaRows): Promise<void> {
    const seen = (key: string, ts: number, value: number) => this.seeSeries(key, ts, value);
    for (const r of rows.windows) {
      seen(r.series, r.end, r.last);
      this.fanout.publish("windows", r.window, r.series, { type: "window", ...r }, 0, `${r.series}|${r.start}`);
    }
    for (const a of rows.anomalies) {
      seen(a.series, a.ts, a.value);
      const msg = { series: a.series, ts: a.ts, value: a.value, z: a.z, mean: a.mean, std: a.std, severity: a.severity, source: a.source, baselineN: a.baseline_n, baselineFromTs: a.baseline_from, test: a.test, expected: [a.expected_lo, a.expected_hi] };
      this.fanout.publish("anomalies", undefined, a.series, { type: "anomaly", ...msg }, 0, `${a.series}|${a.ts}`);
      this.fanout.publish("alerts", undefined, a.series, { type: "alert", kind: "anomaly", ...msg }, 0, `${a.series}|${a.ts}`);
    }
    for (const t of rows.trends) {
      const { series, ...view } = t;
      this.outputs.latestTrends.set(series, view);
      this.fanout.publish("trends", undefined, series, { type: "trend", ...t }, 0, series);
    }
    for (const t of rows.alerts ?? []) {
      this.rules.transition(t);
      this.fanout.publish("alerts", undefined, t.series, { type: "alert", ...t }, 0, `r|${t.rule}|${t.series}|${t.ts}|${t.state}`);
    }
    await this.writer!.replicate(rows);
  }

  /**
   * A series whose results come from elsewhere than its own events (another
   * process's, a view's): listed, with its latest value, unless
   * WEIR_MAX_SERIES is reached (then stored, not listed).
   */
  private seeSeries(key: string, ts: number, value: number, sameTsWins = false): void {
    let id = this.registry.idOf(key);
    if (id === undefined) {
      const s = parseSeriesKey(key);
      if (s === null) return;
      id = this.registry.register(key, s.name, s.tags);
      if (id < 0) return;
    }
    const last = this.registry.lastTs[id];
    if (!(last >= ts) || (sameTsWins && last === ts)) {
      this.registry.lastTs[id] = ts;
      this.registry.lastValue[id] = value;
    }
  }

  /** The series of a partition in local-id order: what its checkpoint's state refers to. */
  partitionSeries(partition: number): Array<{ key: string; name: string; tags: Record<string, string> }> {
    return this.registry.partitionSeries(partition).map((s) => ({ key: s.key, name: s.name, tags: s.tags }));
  }

  /** OpsPort: partitions, store, disk and the added checks, for /ready; an empty list means ready. */
  notReady(): string[] {
    const out: string[] = [];
    for (const check of this.readiness) {
      const why = check();
      if (why !== null) out.push(why);
    }
    for (const s of this.supervisor.status()) if (s.state !== "running") out.push(`${s.id} is ${s.state}`);
    if (this.outputs.storeError) out.push(`store: ${this.outputs.storeError}`);
    const disk = this.path.diskCheck();
    if (!disk.ok) out.push(disk.message);
    if (this.stopping) out.push("shutting down");
    return out;
  }

  /** OpsPort: /metrics. */
  metricsText(): string {
    return this.metrics.registry.render();
  }

  /** Events the partition's worker has aggregated since start. */
  processedEvents(partition: number): number {
    return Number(Atomics.load(this.slots[partition].stats, partitionStatSlots.events));
  }

  /** Events replayed from the raw log by the partition's workers since start. */
  replayedEvents(partition: number): number {
    return Number(Atomics.load(this.slots[partition].stats, partitionStatSlots.replayed));
  }

  /** Events of the partition whose view update was refused (limits.viewGroupsMax aggregates open). */
  viewUpdatesRefused(partition: number): number {
    return Number(Atomics.load(this.slots[partition].stats, partitionStatSlots.viewsRefused));
  }

  /** Checkpoints the partition's workers have taken since start. */
  checkpointsTaken(partition: number): number {
    return Number(Atomics.load(this.slots[partition].stats, partitionStatSlots.checkpoints));
  }

  /**
   * Pushes an already validated columnar batch (codec.encodeEventBatch, ids
   * from the registry) to a partition, bypassing body parsing; false when its
   * ring is full. For producers that hold batches already: the benches.
   */
  pushBatch(partition: number, bytes: Uint8Array): boolean {
    return this.slots[partition].inRing.tryPush(bytes);
  }

  queueDepthBytes(partition: number): number {
    return this.slots[partition].inRing.usedBytes();
  }

  /** The raw log's end: the position its next record takes. */
  get rawLogEnd(): number {
    return this.path.rawLog.end;
  }

  /** fsync(2) calls on the raw log since start (durable profile: about one per group of requests). */
  get rawLogSyncs(): number {
    return this.path.rawLogSyncs;
  }

  /** Failpoint (WEIR_FAILPOINTS=1): the store writer blocks before its next job until the returned function is called. */
  holdStoreWriter(): () => void {
    if (!this.cfg.failpoints) throw new Error("holdStoreWriter needs WEIR_FAILPOINTS=1");
    return this.writer!.hold();
  }

  /** Whether a commit of the partition is on the store writer, not yet answered. */
  commitInFlight(partition: number): boolean {
    return this.slots[partition].inflight !== null;
  }

  /** Failpoint (WEIR_FAILPOINTS=1): the next raw-log fsync fails with EIO. */
  failNextFsync(): void {
    if (!this.cfg.failpoints) throw new Error("failNextFsync needs WEIR_FAILPOINTS=1");
    this.path.failNextFsync();
  }

  /**
   * Stops intake (503), lets the workers drain their rings and commit a
   * final checkpoint, commits it, closes the store: the next start replays
   * nothing.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.outputs.stop();
    this.path.stop(); // the requests already written are answered before the workers drain
    // Every record is in: the next start reads none for ids (after a base still being written, if any).
    await this.dedupeIndex?.settled();
    this.writeDedupeIndex();
    await this.dedupeIndex?.settled();
    this.dedupeIndex?.close();
    await this.supervisor.stop(); // the output drains keep running: a final checkpoint needs ring room
    await this.outputs.finish(this.slots, this.drains);
    await this.outputs.settleCommits(this.slots);
    await this.viewRules?.idle(); // the view windows the last commits made final are judged and written
    for (const t of this.timers) clearInterval(t);
    this.loopLag.stop();
    await this.writer!.writeSeries(this.staged.takeSeries()).catch((e: Error) => this.log.error("store: series not written at stop", { error: e.message }));
    await this.deadlettersWriting;
    await this.flushDeadletters();
    await this.rules.close(); // the actions' queues get limits.actionCloseTimeoutMs to drain
    this.fanout.flush(Number.MAX_SAFE_INTEGER);
    this.path.close();
    await this.writer!.close();
    this.db.close();
  }

  /**
   * The dead letters added since the last flush, to the store (the newest
   * limits.deadlettersMax kept there), so the list survives a restart; one
   * write at a time. A failed write is logged: those entries stay listed
   * until the restart, not after.
   */
  private flushDeadletters(): Promise<void> {
    if (this.deadlettersWriting !== null) return this.deadlettersWriting;
    const fresh = this.deadletters.takeFresh();
    if (fresh.length === 0) return Promise.resolve();
    this.deadlettersWriting = this.writer!.writeDeadletters(fresh, limits.deadlettersMax).then(() => {}, (e: Error) => {
      this.log.error("store: dead letters not written; listed until a restart", { entries: fresh.length, error: e.message });
    }).finally(() => {
      this.deadlettersWriting = null;
    });
    return this.deadlettersWriting;
  }

  /** Applies the retention of each resolution (WEIR_RETENTION_*), on the store writer thread; resolves to the rows deleted. */
  async prune(nowMs = Date.now()): Promise<number> {
    const r = this.cfg.retentionMs;
    const byLabel: Record<string, number> = {};
    for (const x of this.rollups) byLabel[x.label] = r[x.label as "1m" | "1h"];
    for (const w of this.cfg.windows) byLabel[w.label] = r.windows;
    try {
      return await this.writer!.prune(nowMs, byLabel, r["1m"]);
    } catch (e) {
      this.log.error("store prune failed", { error: (e as Error).message });
      return 0;
    }
  }

  private startPartition(p: PartitionSlot): void {
    this.supervisor.start({
      id: `partition-${p.id}`,
      script: partitionWorkerUrl,
      data: () => this.workerData(p),
    });
  }

  /** What a new incarnation of a partition's worker starts from: the last committed checkpoint and the raw log after it. */
  private workerData(p: PartitionSlot): PartitionData {
    const ck = this.outputs.beginIncarnation(p);
    const cfg = this.cfg;
    return {
      partition: p.id, inSab: p.inRing.sab, outSab: p.outRing.sab, statsSab: p.stats.buffer as SharedArrayBuffer, specs: cfg.windows, rollups: this.rollups,
      latenessMs: cfg.latenessMs, seriesMax: cfg.maxSeries, faults: cfg.failpoints, epoch: p.epoch,
      checkpoint: ck?.state ?? null, checkpointPos: ck?.pos ?? p.floorPos,
      replayTo: Math.max(this.path.durableEnd, p.floorPos + 1), rawDir: join(cfg.dataDir, "raw"),
      checkpointIntervalMs: cfg.checkpointIntervalMs, checkpointRowsMax: limits.checkpointRowsMax, checkpointBytesMax: limits.checkpointBytesMax,
      heapBytesMax: cfg.workerHeapBytesMax, clockSab: this.clock.sab,
      series: this.registry.partitionSeries(p.id).map((s) => [s.name, s.tags]), rules: this.rules.defs(), views: this.views.defs(),
      tables: this.tables.all().map((t) => tableData(t.name, t)),
      anomalies: cfg.anomalies, updates: this.fanout.updatesInterest(), capCloses: cfg.natsCluster,
    };
  }

  private lastStats = { atMs: Date.now(), ingested: 0, windows: 0 };

  /** The `stats` topic: engine figures each second (rates over the last interval, totals since start). */
  private publishStats(nowMs = Date.now()): void {
    const m = this.metrics;
    const ingested = m.ingested.get();
    const windows = m.windowsEmitted.get();
    const seconds = Math.max(0.001, (nowMs - this.lastStats.atMs) / 1000);
    const msg = {
      type: "stats", ts: nowMs,
      eventsPerSec: (ingested - this.lastStats.ingested) / seconds,
      windowsPerSec: (windows - this.lastStats.windows) / seconds,
      queueDepthBytes: this.slots.map((p) => p.inRing.usedBytes()),
      ingested, windows, late: m.late.get(), duplicates: m.duplicate.get(),
      rejected: m.rejected.total(), series: this.registry.size, clients: this.fanout.size,
      rssBytes: process.memoryUsage.rss(),
    };
    this.lastStats = { atMs: nowMs, ingested, windows };
    this.fanout.publish("stats", undefined, "", msg, 0, "stats");
  }

  /** Appends the ids added since the last call to the de-duplication index (failures: its onError). */
  private writeDedupeIndex(): void {
    this.dedupeIndex?.write(this.path.dedupeCut());
  }

  /**
   * Raw-log bytes pruned since start, by reason (past WEIR_RETENTION_RAW, over WEIR_RAW_MAX_BYTES), bytes over the
   * budget that nothing may drop yet, and segments the budget dropped before the lake had compacted them (lakeLost).
   */
  readonly rawPruned = { retention: 0, budget: 0, over: 0, lakeLost: 0 };
  private rawLogHold: (() => number | undefined) | undefined;

  /**
   * Keeps raw-log segments from `from()` on past their retention (the lake's
   * first segment not compacted yet: lake.ts); the byte budget still applies.
   * undefined from `from()`: nothing held.
   */
  holdRawLog(from: () => number | undefined): void {
    this.rawLogHold = from;
  }

  /**
   * Deletes raw-log segments past WEIR_RETENTION_RAW, then while the log is
   * over WEIR_RAW_MAX_BYTES, the oldest ones: never one a partition's replay
   * or the de-duplication window (ids are recovered from the log) needs;
   * segments the lake holds (holdRawLog) outlive their retention. Runs every
   * storePruneMs; a test may run it at a time of its choosing.
   */
  pruneRawLog(nowMs = Date.now()): void {
    const cks = checkpointPositions(this.db);
    let keepFrom = Number.MAX_SAFE_INTEGER;
    // Replay re-reads the record at a checkpoint's position (and skips it): its segment stays.
    for (const p of this.slots) keepFrom = Math.min(keepFrom, cks.get(p.id) ?? p.floorPos);
    try {
      const r = this.path.rawLog.pruneBy({
        olderThanMs: nowMs - this.cfg.rawRetentionMs, keepFrom: Math.max(0, keepFrom), bytesMax: this.cfg.rawBytesMax, neededAfterMs: nowMs - this.cfg.dedupeWindowMs,
        holdFrom: this.rawLogHold?.(),
      });
      this.rawPruned.retention += r.retentionBytes;
      this.rawPruned.budget += r.budgetBytes;
      this.rawPruned.lakeLost += r.heldDropped;
      if (r.heldDropped > 0) this.log.warn("raw log over WEIR_RAW_MAX_BYTES: segments the lake had not compacted yet dropped; their events are not in the lake", { segments: r.heldDropped });
      if (r.retentionBytes > 0) this.log.info("raw log segments pruned", { segments: r.segments, bytes: r.retentionBytes + r.budgetBytes });
      if (r.budgetBytes > 0) {
        this.log.warn("raw log over WEIR_RAW_MAX_BYTES: its oldest segments dropped before WEIR_RETENTION_RAW", { bytes: r.budgetBytes, budget: this.cfg.rawBytesMax });
      }
      if (r.overBytes > 0 && this.rawPruned.over === 0) {
        this.log.warn("raw log over WEIR_RAW_MAX_BYTES, and replay or the de-duplication window still needs every segment", { overBytes: r.overBytes });
      }
      this.rawPruned.over = r.overBytes;
    } catch (e) {
      this.log.error("raw log prune failed", { error: (e as Error).message });
    }
  }

  /**
   * Waits until every partition has recovered and runs. A partition that
   * fails during recovery (a damaged log, a checkpoint that does not
   * restore) would fail again on every retry: start-up stops and says why.
   */
  private async waitRunning(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = this.supervisor.status();
      if (status.every((s) => s.state === "running")) return;
      const down = status.find((s) => s.lastError !== undefined);
      const why = down ? `${down.id}: ${down.lastError}` : Date.now() > deadline ? `partitions not running after ${timeoutMs} ms` : null;
      if (why !== null) {
        await this.stop();
        throw new EngineStartError(`start-up failed: ${why}`);
      }
      await Bun.sleep(10);
    }
  }
}

/** How often the fanout sends what is due (the per-client throttle is on top). */
const fanoutTickMs = 20;

/** A reference table as the partition workers take it (partition-loop.ts TableData). */
function tableData(name: string, table: RefTable | null, deletedVersion = 0): TableData {
  return { name, version: table?.version ?? deletedVersion, rows: table === null ? null : [...table.rows] as Array<[string, Record<string, string>]> };
}
