/**
 * Rows to a Parquet file without holding them: rows are appended to a
 * newline-delimited JSON staging file a chunk at a time, then DuckDB copies
 * that file to Parquet (streaming), under a temporary name renamed into
 * place, so a crash never leaves a half-written Parquet file visible.
 *
 * @example
 *   const st = new Stage(join(staging, "x.ndjson"));
 *   for (const r of rows) st.add(r);
 *   await st.toParquet(conn, eventColumns, "SELECT * FROM rows", join(lake, "x.parquet"));
 */
import type { DuckDBConnection } from "@duckdb/node-api";
import { closeSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { limits } from "../runtime/limits.ts";
import type { LakeColumn } from "./tables.ts";
import { sqlIdent, sqlString } from "./tables.ts";

export class Stage {
  private readonly fd: number;
  private lines: string[] = [];
  rows = 0;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, "w");
  }

  add(row: object): void {
    this.addLine(JSON.stringify(row));
  }

  /** A row already serialised as one line of JSON. */
  addLine(line: string): void {
    this.lines.push(line);
    this.rows++;
    if (this.lines.length >= limits.lakeNdjsonChunkRows) this.flush();
  }

  /**
   * Closes the staging file and writes `select` over it (the staged rows
   * are the relation `rows`) to `target` as Parquet; then deletes the
   * staging file. `copyOptions` adds to COPY's options (PARTITION_BY…).
   */
  async toParquet(conn: DuckDBConnection, columns: LakeColumn[], select: string, target: string, copyOptions = ""): Promise<void> {
    this.close();
    const types = columns.map((c) => `${sqlString(c.name)}: ${sqlString(c.type)}`).join(", ");
    const rows = `read_json(${sqlString(this.path)}, format = 'newline_delimited', columns = {${types}})`;
    const tmp = `${target}.tmp`;
    mkdirSync(dirname(target), { recursive: true });
    try {
      await conn.run(`COPY (WITH rows AS (SELECT * FROM ${rows}) ${select}) TO ${sqlString(tmp)} (FORMAT parquet${copyOptions})`);
      renameSync(tmp, target);
    } finally {
      rmSync(this.path, { force: true });
      rmSync(tmp, { force: true, recursive: true });
    }
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }

  private flush(): void {
    if (this.lines.length === 0) return;
    writeSync(this.fd, this.lines.join("\n") + "\n");
    this.lines = [];
  }
}

/** SELECT of the columns by name, in order, from `rows`. */
export function selectColumns(columns: LakeColumn[]): string {
  return `SELECT ${columns.map((c) => sqlIdent(c.name)).join(", ")} FROM rows`;
}
