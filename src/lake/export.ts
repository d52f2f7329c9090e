/**
 * A table (or metric view) between two times as a stream of bytes, never
 * held whole: NDJSON rows are encoded a DuckDB chunk at a time; Parquet is
 * written by DuckDB to lake/.exports/ and read back in pieces, the file
 * deleted when the stream ends or is cancelled.
 *
 * @example
 *   const body = await exportStream(conn, exportsDir, { table: "events", from, to, timeColumn: "ts", format: "ndjson" });
 *   return new Response(body);
 */
import { JSDuckDBValueConverter, type DuckDBConnection } from "@duckdb/node-api";
import { closeSync, openSync, readSync, rmSync } from "node:fs";
import { join } from "node:path";
import { sqlIdent, sqlString } from "./tables.ts";
import { jsonRow } from "./values.ts";

export interface ExportRequest { table: string; from: number; to: number; timeColumn: string | undefined; format: "parquet" | "ndjson" }

const pieceBytes = 256 * 1024; // a Parquet export is sent in pieces of this

export function exportSelect(r: ExportRequest): string {
  const where = r.timeColumn === undefined ? "" : ` WHERE ${sqlIdent(r.timeColumn)} >= ${r.from} AND ${sqlIdent(r.timeColumn)} < ${r.to}`;
  const order = r.timeColumn === undefined ? "" : ` ORDER BY ${sqlIdent(r.timeColumn)}`;
  return `SELECT * FROM ${sqlIdent(r.table)}${where}${order}`;
}

/** The export's bytes. `conn` is the export's own; it is closed when the stream ends. */
export async function exportStream(conn: DuckDBConnection, exportsDir: string, r: ExportRequest): Promise<ReadableStream<Uint8Array>> {
  if (r.format === "ndjson") return ndjsonStream(conn, r);
  const path = join(exportsDir, `${r.table}-${Date.now()}-${crypto.randomUUID()}.parquet`);
  try {
    await conn.run(`COPY (${exportSelect(r)}) TO ${sqlString(path)} (FORMAT parquet)`);
  } finally {
    conn.closeSync();
  }
  const fd = openSync(path, "r");
  const done = () => {
    closeSync(fd);
    rmSync(path, { force: true });
  };
  return new ReadableStream<Uint8Array>({
    pull(ctl) {
      const buf = new Uint8Array(pieceBytes);
      const n = readSync(fd, buf, 0, pieceBytes, null);
      if (n > 0) return ctl.enqueue(buf.subarray(0, n));
      done();
      ctl.close();
    },
    cancel: done,
  });
}

async function ndjsonStream(conn: DuckDBConnection, r: ExportRequest): Promise<ReadableStream<Uint8Array>> {
  const result = await conn.stream(exportSelect(r));
  const names = result.columnNames();
  const types = result.columnTypes();
  const enc = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      const chunk = await result.fetchChunk();
      if (chunk === null || chunk.rowCount === 0) {
        conn.closeSync();
        return ctl.close();
      }
      const lines = chunk.convertRows(JSDuckDBValueConverter).map((row) => {
        const values = jsonRow(row, types);
        return JSON.stringify(Object.fromEntries(names.map((n, i) => [n, values[i]])));
      });
      ctl.enqueue(enc.encode(lines.join("\n") + "\n"));
    },
    cancel: () => conn.closeSync(),
  });
}
