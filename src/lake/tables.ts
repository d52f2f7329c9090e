/**
 * What SQL can read: the raw zone (`events`) and the curated tables, each a
 * DuckDB view over Parquet files under <data>/lake, with its columns'
 * descriptions and the time column export filters on. One list, read by
 * the writer (lake.worker.ts), the SQL service and the catalog alike.
 *
 * Layout:
 *   lake/raw/date=YYYY-MM-DD/hour=HH/<segment>-data_0.parquet   closed raw-log segments, by event hour
 *   lake/tail/<segment>-<position>-<hour>.parquet               records not compacted yet (the open segment's too), by event hour (hours since the epoch)
 *   lake/curated/<table>.parquet                         snapshots of the SQLite store's tables
 *   lake/materialized/<view>/<run ms>.parquet            runs of the materialised metric views (materialized.ts)
 */
import { join } from "node:path";

export interface LakeColumn { name: string; type: string; description: string }

export interface LakeTable {
  name: string;
  description: string;
  columns: LakeColumn[];
  /** The column export's from/to filter (epoch ms), if the table has one. */
  timeColumn?: string;
  /** Which retention setting bounds it (Config.retentionMs key, or "lake" for the raw zone, or none). */
  retention: "lake" | "windows" | "1m" | "1h" | "none";
}

const col = (name: string, type: string, description: string): LakeColumn => ({ name, type, description });

const windowColumns = [
  col("series", "VARCHAR", "series key: name{k=\"v\",…}"), col("window", "VARCHAR", "window spec (10s, 60s/10s, 1m, 1h, a view's)"),
  col("start", "BIGINT", "window start, epoch ms (inclusive)"), col("end", "BIGINT", "window end, epoch ms (exclusive)"),
  col("count", "BIGINT", "events in the window"), col("sum", "DOUBLE", "sum of values"), col("min", "DOUBLE", "least value"),
  col("max", "DOUBLE", "greatest value"), col("avg", "DOUBLE", "mean value"), col("p50", "DOUBLE", "median (≤ 1 % relative error)"),
  col("p95", "DOUBLE", "95th percentile"), col("p99", "DOUBLE", "99th percentile"), col("first", "DOUBLE", "first value by event time"),
  col("last", "DOUBLE", "last value by event time"),
];

/** The raw zone's columns, in the order the Parquet files hold them. */
export const eventColumns: LakeColumn[] = [
  col("ts", "BIGINT", "event time, epoch ms"), col("name", "VARCHAR", "event name"), col("series", "VARCHAR", "series key: name{k=\"v\",…}"),
  col("value", "DOUBLE", "event value"), col("tags", "MAP(VARCHAR, VARCHAR)", "tags; tags['page']"),
  col("props", "JSON", "props as sent (JSON); props->>'fw'"), col("id", "VARCHAR", "event id, when the producer gave one"),
];

/** The curated tables: SQLite store table → its Parquet snapshot (`source` is the SQLite SELECT). */
export interface CuratedTable extends LakeTable { source: string }

export const curatedTables: CuratedTable[] = [
  { name: "windows", description: "closed windows of every configured spec and of the views (all resolutions; filter on window)", columns: windowColumns, timeColumn: "start", retention: "windows",
    source: `SELECT series, window, start, "end", count, sum, min, max, avg, p50, p95, p99, first, last FROM windows` },
  { name: "anomalies", description: "anomalies detected, one row each", timeColumn: "ts", retention: "1m",
    columns: [col("series", "VARCHAR", "series key"), col("ts", "BIGINT", "event time, epoch ms"), col("value", "DOUBLE", "the value"), col("z", "DOUBLE", "z-score"), col("mean", "DOUBLE", "baseline mean"), col("std", "DOUBLE", "baseline spread"), col("severity", "VARCHAR", "warning or critical")],
    source: "SELECT series, ts, value, z, mean, std, severity FROM anomalies" },
  { name: "trends", description: "each series' latest trend", timeColumn: "ts", retention: "none",
    columns: [col("series", "VARCHAR", "series key"), col("ts", "BIGINT", "fitted up to, epoch ms"), col("slope", "DOUBLE", "slope per second"), col("class", "VARCHAR", "rising, falling, stable or unknown")],
    source: "SELECT series, ts, slope, class FROM trends" },
  { name: "alerts", description: "rule transitions and view alerts", timeColumn: "ts", retention: "none",
    columns: [col("kind", "VARCHAR", "rule or view"), col("rule", "VARCHAR", "rule or view name"), col("series", "VARCHAR", "series key"), col("state", "VARCHAR", "pending, firing, resolved"), col("ts", "BIGINT", "epoch ms"), col("value", "VARCHAR", "value (JSON)"), col("threshold", "VARCHAR", "threshold (JSON)"), col("severity", "VARCHAR", "severity"), col("labels", "VARCHAR", "labels (JSON)"), col("advice", "VARCHAR", "advice text")],
    source: "SELECT kind, rule, series, state, ts, value, threshold, severity, labels, advice FROM alerts" },
  { name: "deadletters", description: "rejected and late events with their reason", timeColumn: "ts", retention: "none",
    columns: [col("ts", "BIGINT", "epoch ms"), col("reason", "VARCHAR", "why it was rejected"), col("event", "VARCHAR", "the event (JSON)"), col("source", "VARCHAR", "where it came from")],
    source: "SELECT ts, reason, event, source FROM deadletters" },
  { name: "series", description: "every series weir knows", retention: "none",
    columns: [col("key", "VARCHAR", "series key"), col("name", "VARCHAR", "event name"), col("tags", "VARCHAR", "tags (JSON)")],
    source: "SELECT key, name, tags FROM series" },
  { name: "ref_tables", description: "reference tables (rows as JSON; the views join them)", retention: "none",
    columns: [col("name", "VARCHAR", "table name"), col("key", "VARCHAR", "key column"), col("version", "BIGINT", "version"), col("rows", "VARCHAR", "rows (JSON)"), col("updated_ms", "BIGINT", "last change, epoch ms")],
    source: "SELECT name, key, version, rows, updated_ms FROM ref_tables" },
];

/** Views over `windows` that the catalog lists by name (API.md: windows_1m, windows_1h). */
export const rollupViews = [
  { name: "windows_1m", window: "1m", description: "1-minute downsampled windows", retention: "1m" as const },
  { name: "windows_1h", window: "1h", description: "1-hour downsampled windows", retention: "1h" as const },
];

export const eventsTable: LakeTable = {
  name: "events", description: "the raw zone: every accepted event", columns: eventColumns, timeColumn: "ts", retention: "lake",
};

/** Every table SQL reads, by name. */
export function lakeTables(): LakeTable[] {
  const rollups = rollupViews.map((r): LakeTable => ({ name: r.name, description: r.description, columns: windowColumns, timeColumn: "start", retention: r.retention }));
  return [eventsTable, ...curatedTables, ...rollups];
}

export const lakePaths = {
  root: (dataDir: string) => join(dataDir, "lake"),
  raw: (dataDir: string) => join(dataDir, "lake", "raw"),
  tail: (dataDir: string) => join(dataDir, "lake", "tail"),
  curated: (dataDir: string) => join(dataDir, "lake", "curated"),
  materialized: (dataDir: string) => join(dataDir, "lake", "materialized"),
  staging: (dataDir: string) => join(dataDir, "lake", ".staging"),
  compacted: (dataDir: string) => join(dataDir, "lake", ".compacted"),
  exports: (dataDir: string) => join(dataDir, "lake", ".exports"),
};

/** A DuckDB SQL string literal. */
export function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** A DuckDB quoted identifier. */
export function sqlIdent(s: string): string {
  return `"${s.replaceAll('"', '""')}"`;
}
