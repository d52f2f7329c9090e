/**
 * The curated tables written out: each SQLite store table of tables.ts
 * copied whole to lake/curated/<table>.parquet (a snapshot, replaced by
 * rename), on a schedule (WEIR_LAKE_CURATED_INTERVAL). DuckDB cannot read
 * the store itself (the SQLite scanner extension is not available here),
 * so rows go through a staging file, a chunk at a time. Each file's mtime
 * is set to when its snapshot began reading, so a snapshot is due exactly
 * when the store has changed since (staleCurated); a seed file (a table
 * never written out) has mtime 0.
 *
 * @example
 *   await writeCurated(dataDir, reader, conn); // every curated table
 */
import type { DuckDBConnection } from "@duckdb/node-api";
import type { Database } from "bun:sqlite";
import { existsSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { selectColumns, Stage } from "./stage.ts";
import { curatedTables, lakePaths, type CuratedTable } from "./tables.ts";

/** Writes the snapshots of `tables` (default: every curated table); returns the rows written by table. */
export async function writeCurated(dataDir: string, store: Database, conn: DuckDBConnection, tables: readonly CuratedTable[] = curatedTables): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of tables) {
    const readFrom = new Date();
    const stage = new Stage(join(lakePaths.staging(dataDir), `${t.name}.ndjson`));
    for (const row of store.query(t.source).iterate()) stage.add(row as object);
    out[t.name] = stage.rows;
    const target = join(lakePaths.curated(dataDir), `${t.name}.parquet`);
    await stage.toParquet(conn, t.columns, selectColumns(t.columns), target);
    utimesSync(target, readFrom, readFrom);
  }
  return out;
}

/**
 * The curated tables whose snapshot is out of date: the store (weir.db and
 * its WAL) changed at or after the snapshot began, and the table has rows
 * or had a real snapshot (not a seed, mtime 0, nor none). An idle store
 * needs none, so an idle weir's lake never opens DuckDB for them.
 */
export function staleCurated(dataDir: string, store: Database): CuratedTable[] {
  const mtimeMs = (path: string) => (existsSync(path) ? statSync(path).mtimeMs : Number.NEGATIVE_INFINITY);
  const storeMs = Math.max(mtimeMs(join(dataDir, "weir.db")), mtimeMs(join(dataDir, "weir.db-wal")));
  const hasRows = (t: CuratedTable) => (store.query(`SELECT EXISTS (${t.source} LIMIT 1) AS x`).get() as { x: number }).x === 1;
  return curatedTables.filter((t) => {
    const snapshotMs = mtimeMs(join(lakePaths.curated(dataDir), `${t.name}.parquet`));
    return snapshotMs <= storeMs && (snapshotMs > 0 || hasRows(t));
  });
}
