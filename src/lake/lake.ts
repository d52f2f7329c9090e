/**
 * The lake as the HTTP routes and the server see it: SQL, the catalog,
 * export, the metric views, and the maintenance thread that keeps the
 * Parquet files (maintenance.ts). Visible to SQL: raw events within one
 * maintenance pass (WEIR_LAKE_INTERVAL, 10 s) of their 202; curated tables
 * as of their last snapshot (WEIR_LAKE_CURATED_INTERVAL, 60 s).
 *
 * @example
 *   const lake = await Lake.start(cfg, log);
 *   await lake.sql.query("SELECT count(*) FROM events");
 *   await lake.stop();
 */
import type { Config } from "../config.ts";
import { ConfigError } from "../config.ts";
import type { Log } from "../runtime/log.ts";
import { LakeQueryError } from "./errors.ts";
import { exportStream, type ExportRequest } from "./export.ts";
import { LakeMaintenance } from "./maintenance.ts";
import { MetricViews } from "./metric-views.ts";
import { SqlService } from "./sql-service.ts";
import { sensitivityOf } from "./sensitivity.ts";
import { lakePaths, lakeTables } from "./tables.ts";

export interface CatalogColumn { name: string; type: string; description: string; sensitivity: string[] }
export interface CatalogTable {
  name: string; kind: "raw" | "curated" | "metric_view"; description: string; columns: CatalogColumn[];
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
  private constructor(readonly sql: SqlService, readonly metricViews: MetricViews, private readonly maintenance: LakeMaintenance | undefined, private readonly cfg: Config) {}

  static async start(cfg: Config, log: Log): Promise<Lake> {
    const sql = await SqlService.open({ dataDir: cfg.dataDir, timeoutMs: cfg.queryTimeoutMs, masked: cfg.pii !== undefined });
    let views: MetricViews;
    try {
      views = await MetricViews.open(cfg.dataDir, sql, cfg.metricViews);
    } catch (e) {
      sql.close();
      if (e instanceof LakeQueryError) throw new ConfigError(`config metric_views: ${e.message}`);
      throw e;
    }
    const maintenance = cfg.lake.enabled
      ? await LakeMaintenance.start({ dataDir: cfg.dataDir, retentionMs: cfg.lake.retentionMs, intervalMs: cfg.lake.intervalMs, curatedIntervalMs: cfg.lake.curatedIntervalMs, log })
      : undefined;
    return new Lake(sql, views, maintenance, cfg);
  }

  /** Every table and metric view SQL can read, with columns and retention. */
  async catalog(): Promise<CatalogTable[]> {
    const out: CatalogTable[] = [];
    const fresh = { raw: `within one maintenance pass (${this.cfg.lake.intervalMs / 1000} s) of ingest`, curated: `as of the last snapshot (every ${this.cfg.lake.curatedIntervalMs / 1000} s)` };
    const piiOn = this.cfg.pii !== undefined;
    for (const t of lakeTables()) {
      const described = new Map((await this.sql.describe(t.name)).map((c) => [c.name, c.type]));
      const ms = t.retention === "none" ? null : t.retention === "lake" ? this.cfg.lake.retentionMs : this.cfg.retentionMs[t.retention];
      out.push({
        name: t.name, kind: t.name === "events" ? "raw" : "curated", description: t.description,
        columns: t.columns.map((c) => ({ name: c.name, type: described.get(c.name) ?? c.type, description: c.description, sensitivity: sensitivityOf(t.name, c.name, piiOn) })),
        retention: { ms, setting: retentionSetting[t.retention] }, freshness: t.name === "events" ? fresh.raw : fresh.curated,
      });
    }
    for (const v of this.metricViews.list()) {
      const columns = (await this.sql.describe(v.name)).map((c) => ({ ...c, description: "", sensitivity: [] }));
      out.push({ name: v.name, kind: "metric_view", description: v.description, columns, retention: { ms: null, setting: null }, freshness: "computed when read" });
    }
    return out;
  }

  /** The names export accepts, with their time column. */
  exportable(name: string): { timeColumn: string | undefined } | undefined {
    const t = lakeTables().find((x) => x.name === name);
    if (t !== undefined) return { timeColumn: t.timeColumn };
    return this.metricViews.get(name) === undefined ? undefined : { timeColumn: undefined };
  }

  /** `masked`: for a token without the pii grant (sensitivity.ts). */
  async export(r: ExportRequest, masked = false): Promise<ReadableStream<Uint8Array>> {
    return exportStream(await this.sql.connect(masked), lakePaths.exports(this.cfg.dataDir), r);
  }

  /** Runs a maintenance pass now (compaction, raw tail, curated snapshot); a no-op when WEIR_LAKE is off. */
  async flush(): Promise<unknown> {
    return this.maintenance?.flush();
  }

  async stop(): Promise<void> {
    await this.maintenance?.stop();
    this.metricViews.close();
    this.sql.close();
  }
}
