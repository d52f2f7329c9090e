/**
 * The lake as the HTTP routes and the server see it: SQL, the catalog,
 * export, the metric views and their scheduled runs (materialized.ts), and
 * the maintenance thread that keeps the Parquet files (maintenance.ts).
 * Visible to SQL: raw events within one maintenance pass
 * (WEIR_LAKE_INTERVAL, 10 s) of their 202; curated tables as of their last
 * snapshot (WEIR_LAKE_CURATED_INTERVAL, 60 s).
 *
 * DuckDB is loaded and opened at the first use (a query, the catalog, an
 * export, a metric view's check or run), not at start: a weir whose lake
 * is never asked does not carry its library (~54 MiB RSS). Config metric
 * views are checked at start, so they open it then.
 *
 * @example
 *   const lake = await Lake.start(cfg, log);
 *   await lake.sql.query("SELECT count(*) FROM events");
 *   await lake.stop();
 */
import { parseDurationMs } from "../actors/window-spec.ts";
import type { Config } from "../config.ts";
import { ConfigError } from "../config.ts";
import type { Log } from "../runtime/log.ts";
import type { Metrics } from "../runtime/metrics.ts";
import { lakeFloor } from "./compactor.ts";
import { LakeError, LakeQueryError } from "./errors.ts";
import type { ExportRequest } from "./export.ts";
import { LakeMaintenance, type MaintenanceStats } from "./maintenance.ts";
import { Materializer } from "./materialized.ts";
import { materializedName } from "./metric-view-def.ts";
import { MetricViews } from "./metric-views.ts";
import type { QueryAnswer, SqlService } from "./sql-service.ts";
import { sensitivityOf, textColumns } from "./sensitivity.ts";
import { lakePaths, lakeTables } from "./tables.ts";

export interface CatalogColumn { name: string; type: string; description: string; sensitivity: string[] }
export interface CatalogTable {
  name: string; kind: "raw" | "curated" | "metric_view" | "materialized"; description: string; columns: CatalogColumn[];
  retention: { ms: number | null; setting: string | null }; freshness: string;
}

/** What the HTTP routes reach of the lake. */
export interface LakePort {
  sql: Pick<SqlService, "query">;
  metricViews: Pick<MetricViews, "list" | "get" | "put" | "delete">;
  catalog(): Promise<CatalogTable[]>;
  exportable(name: string): { timeColumn: string | undefined } | undefined;
  export(r: ExportRequest, masked?: boolean): Promise<ReadableStream<Uint8Array>>;
}

const retentionSetting = { lake: "WEIR_RETENTION_LAKE", windows: "WEIR_RETENTION_WINDOWS", "1m": "WEIR_RETENTION_1M", "1h": "WEIR_RETENTION_1H", none: null } as const;

export class Lake implements LakePort {
  readonly metricViews: MetricViews;
  /** SQL as the routes call it: the service opened at the first query. */
  readonly sql = { query: async (sql: string, rowsMax?: number, masked?: boolean): Promise<QueryAnswer> => (await this.duck()).query(sql, rowsMax, masked) };
  private readonly materializer: Materializer;
  private opening: Promise<SqlService> | null = null;
  private maintenance: LakeMaintenance | undefined;

  private constructor(private readonly cfg: Config, private readonly log: Log) {
    this.metricViews = MetricViews.open(cfg.dataDir, () => this.duck(), cfg.metricViews, log);
    this.materializer = new Materializer({ dataDir: cfg.dataDir, retentionMsDefault: cfg.lake.retentionMs, views: () => this.metricViews.list(), sql: () => this.duck(), log });
  }

  /** `metrics`: where the maintenance's figures are shown (the engine's registry: /metrics); none in tests that do not ask. */
  static async start(cfg: Config, log: Log, metrics?: Metrics): Promise<Lake> {
    const lake = new Lake(cfg, log);
    try {
      if (cfg.metricViews.length > 0) await lake.duck(); // the config's views are checked now, not at the first query
    } catch (e) {
      lake.metricViews.close();
      if (e instanceof LakeQueryError) throw new ConfigError(`config metric_views: ${e.message}`);
      throw e;
    }
    if (cfg.lake.enabled) {
      lake.maintenance = await LakeMaintenance.start({ dataDir: cfg.dataDir, retentionMs: cfg.lake.retentionMs, intervalMs: cfg.lake.intervalMs, curatedIntervalMs: cfg.lake.curatedIntervalMs, deferMs: cfg.lake.deferMs, log });
      if (metrics !== undefined) registerLakeMetrics(metrics, lake.maintenance.stats);
    }
    lake.materializer.start();
    return lake;
  }

  /** The SQL service, loaded and opened at its first use (once; a failed open is tried again at the next). */
  duck(): Promise<SqlService> {
    this.opening ??= (async () => {
      const { SqlService } = await import("./sql-service.ts");
      const s = await SqlService.open({ dataDir: this.cfg.dataDir, timeoutMs: this.cfg.queryTimeoutMs, masked: this.cfg.pii !== undefined });
      try {
        await this.metricViews.installAll(s);
      } catch (e) {
        s.close();
        throw e;
      }
      return s;
    })().catch((e: Error) => {
      this.opening = null;
      throw e instanceof LakeQueryError ? e : new LakeError(`lake: DuckDB did not open: ${e.message}`, { cause: e });
    });
    return this.opening;
  }

  /** Whether DuckDB has been opened in this thread (it is not until the lake is first used). */
  get opened(): boolean {
    return this.opening !== null;
  }

  /** Every table and metric view SQL can read, with columns and retention. */
  async catalog(): Promise<CatalogTable[]> {
    const sql = await this.duck();
    const out: CatalogTable[] = [];
    const fresh = { raw: `within one maintenance pass (${this.cfg.lake.intervalMs / 1000} s) of ingest`, curated: `as of the last snapshot (every ${this.cfg.lake.curatedIntervalMs / 1000} s)` };
    const piiOn = this.cfg.pii !== undefined;
    for (const t of lakeTables()) {
      const described = new Map((await sql.describe(t.name)).map((c) => [c.name, c.type]));
      const ms = t.retention === "none" ? null : t.retention === "lake" ? this.cfg.lake.retentionMs : this.cfg.retentionMs[t.retention];
      out.push({
        name: t.name, kind: t.name === "events" ? "raw" : "curated", description: t.description,
        columns: t.columns.map((c) => ({ name: c.name, type: described.get(c.name) ?? c.type, description: c.description, sensitivity: sensitivityOf(t.name, c.name, piiOn) })),
        retention: { ms, setting: retentionSetting[t.retention] }, freshness: t.name === "events" ? fresh.raw : fresh.curated,
      });
    }
    for (const v of this.metricViews.list()) {
      const columns = (await sql.describe(v.name)).map((c) => ({ ...c, description: "", sensitivity: [] }));
      out.push({ name: v.name, kind: "metric_view", description: v.description, columns, retention: { ms: null, setting: null }, freshness: "computed when read" });
      if (v.materialize === undefined) continue;
      const name = materializedName(v.name);
      const described = await sql.describe(name);
      const tagged = new Set(piiOn ? textColumns(described) : []);
      out.push({
        name, kind: "materialized", description: `runs of metric view ${v.name}, appended every ${v.materialize.every}; materialized_at: the run's time, epoch ms`,
        columns: described.map((c) => ({ ...c, description: c.name === "materialized_at" ? "the run's time, epoch ms" : "", sensitivity: tagged.has(c.name) ? ["pii"] : [] })),
        retention: v.materialize.retention === undefined ? { ms: this.cfg.lake.retentionMs, setting: "WEIR_RETENTION_LAKE" } : { ms: parseDurationMs(v.materialize.retention), setting: null },
        freshness: `appended every ${v.materialize.every}`,
      });
    }
    return out;
  }

  /** The names export accepts, with their time column. */
  exportable(name: string): { timeColumn: string | undefined } | undefined {
    const t = lakeTables().find((x) => x.name === name);
    if (t !== undefined) return { timeColumn: t.timeColumn };
    if (this.metricViews.list().some((v) => v.materialize !== undefined && materializedName(v.name) === name)) return { timeColumn: "materialized_at" };
    return this.metricViews.get(name) === undefined ? undefined : { timeColumn: undefined };
  }

  /** `masked`: for a token without the pii grant (sensitivity.ts). */
  async export(r: ExportRequest, masked = false): Promise<ReadableStream<Uint8Array>> {
    const sql = await this.duck();
    const { exportStream } = await import("./export.ts");
    return exportStream(await sql.connect(masked), lakePaths.exports(this.cfg.dataDir), r);
  }

  /**
   * The raw-log position from which segments must outlive their retention
   * until compacted (engine.holdRawLog); undefined when WEIR_LAKE is off.
   */
  rawLogFloor(): number | undefined {
    return this.maintenance === undefined ? undefined : lakeFloor(this.cfg.dataDir);
  }

  /** Runs a maintenance pass now (compaction, raw tail, curated snapshot); a no-op when WEIR_LAKE is off. */
  async flush(): Promise<unknown> {
    return this.maintenance?.flush();
  }

  /** Runs the materialised metric views due at `nowMs` (default now) and applies their retention; rows appended by view. */
  materialize(nowMs = Date.now()): Promise<Record<string, number>> {
    return this.materializer.pass(nowMs);
  }

  async stop(): Promise<void> {
    await this.materializer.stop();
    await this.maintenance?.stop();
    this.metricViews.close();
    if (this.opening !== null) (await this.opening.catch(() => undefined))?.close();
  }
}

/** The maintenance's figures in /metrics (API.md "Operations"), read when rendered. */
function registerLakeMetrics(m: Metrics, s: MaintenanceStats): void {
  m.gauge("weir_lake_passes_total", "Lake maintenance passes (raw tail, compaction, curated snapshots), by result", () => [[{ result: "ok" }, s.passesOk], [{ result: "failed" }, s.passesFailed]], "counter");
  m.gauge("weir_lake_passes_deferred_total", "Lake maintenance ticks that waited because the host's cores were busy (WEIR_LAKE_DEFER)", () => s.deferred, "counter");
  m.gauge("weir_lake_pass_seconds", "How long the last lake maintenance pass that finished took", () => s.lastPassMs / 1000);
  m.gauge("weir_lake_behind_seconds", "Time since the start of the last lake pass that finished: SQL sees every event acknowledged before then (grows while ingest leaves the lake no CPU)",
    () => (Date.now() - s.freshAsOfMs) / 1000);
  m.gauge("weir_lake_tail_events_total", "Raw events written to the lake's tail (visible to SQL)", () => s.tailEvents, "counter");
  m.gauge("weir_lake_segments_compacted_total", "Raw-log segments compacted into the lake's hour files", () => s.compacted, "counter");
  m.gauge("weir_lake_segments_pending", "Closed raw-log segments not compacted yet after the last pass (their events are in the tail)", () => s.pending);
}
