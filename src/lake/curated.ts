/**
 * The curated tables written out: each SQLite store table of tables.ts
 * copied whole to lake/curated/<table>.parquet (a snapshot, replaced by
 * rename), on a schedule (WEIR_LAKE_CURATED_INTERVAL). DuckDB cannot read
 * the store itself (the SQLite scanner extension is not available here),
 * so rows go through a staging file, a chunk at a time.
 *
 * @example
 *   await writeCurated(dataDir, reader, conn); // every curated table
 */
import type { DuckDBConnection } from "@duckdb/node-api";
import type { Database } from "bun:sqlite";
import { join } from "node:path";
import { selectColumns, Stage } from "./stage.ts";
import { curatedTables, lakePaths } from "./tables.ts";

/** Writes every curated table's snapshot; returns the rows written by table. */
export async function writeCurated(dataDir: string, store: Database, conn: DuckDBConnection): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of curatedTables) {
    const stage = new Stage(join(lakePaths.staging(dataDir), `${t.name}.ndjson`));
    for (const row of store.query(t.source).iterate()) stage.add(row as object);
    out[t.name] = stage.rows;
    await stage.toParquet(conn, t.columns, selectColumns(t.columns), join(lakePaths.curated(dataDir), `${t.name}.parquet`));
  }
  return out;
}
