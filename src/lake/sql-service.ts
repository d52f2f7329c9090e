/**
 * Read-only SQL over the lake: one in-memory DuckDB whose views read the
 * Parquet files (tables.ts) and the metric views, locked down before any
 * query runs: no file outside lake/ (enable_external_access off,
 * allowed_directories the lake), configuration locked. Each query gets its
 * own connection, is checked (sql-guard.ts), interrupted at
 * WEIR_QUERY_TIMEOUT and cut at lakeQueryRowsMax rows. With `masked` (pii
 * configured), schema `masked` mirrors every table and metric view with
 * the pii tokens hidden, and a query or export for a token without the
 * `pii` grant runs there (sensitivity.ts).
 *
 * @example
 *   const sql = await SqlService.open({ dataDir, timeoutMs: 5000 });
 *   await sql.query("SELECT count(*) FROM events"); // { columns: ["count_star()"], rows: [[42]], truncated: false }
 */
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { existsSync, mkdirSync, renameSync, rmSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { limits } from "../runtime/limits.ts";
import { lowerDuckdbThreads, openDuckdb } from "./duck.ts";
import { LakeQueryError, LakeTimeoutError } from "./errors.ts";
import { Turns } from "./query-gate.ts";
import { prepareReadOnly, firstLine } from "./sql-guard.ts";
import { checkMaskedReach, lakeCatalog, maskedSchema, maskedSelect, textColumns } from "./sensitivity.ts";
import { curatedTables, eventColumns, lakePaths, lakeTables, rollupViews, sqlIdent, sqlString, type LakeColumn } from "./tables.ts";
import { jsonRow } from "./values.ts";

export interface QueryAnswer { columns: string[]; rows: unknown[][]; truncated: boolean }

/** DuckDB's error for a file its glob listed and then could not open. */
const fileGone = /IO Error: Cannot open file .*No such file or directory/;

export class SqlService {
  /** Names a masked query may read (the masked schema's views), or null when there is no masked schema. */
  private readonly maskedNames: Set<string> | null;
  /** Statements executing at once: each takes a core from ingest (lakeSqlRunningMax). */
  private readonly turns = new Turns(limits.lakeSqlRunningMax);

  private constructor(private readonly instance: DuckDBInstance, private readonly admin: DuckDBConnection, private readonly timeoutMs: number, masked: boolean) {
    this.maskedNames = masked ? new Set(lakeTables().map((t) => t.name)) : null;
  }

  static async open(o: { dataDir: string; timeoutMs: number; masked?: boolean }): Promise<SqlService> {
    const lake = lakePaths.root(o.dataDir);
    for (const dir of [lakePaths.raw(o.dataDir), lakePaths.tail(o.dataDir), lakePaths.curated(o.dataDir), lakePaths.materialized(o.dataDir), lakePaths.exports(o.dataDir)]) mkdirSync(dir, { recursive: true });
    const instance = await openDuckdb(join(lake, ".duckdb-tmp"), { autoinstall_known_extensions: "false", autoload_known_extensions: "false" });
    const admin = await instance.connect();
    await writeSeeds(admin, o.dataDir);
    await createViews(admin, o.dataDir);
    if (o.masked === true) await createMaskedViews(admin);
    // Locked last: the views above were made with file access; from here on only lake/ is readable, nothing settable.
    await admin.run(`SET allowed_directories = [${sqlString(lake + "/")}]`);
    await admin.run("SET enable_external_access = false");
    await admin.run("SET lock_configuration = true");
    return new SqlService(instance, admin, o.timeoutMs, o.masked === true);
  }

  /**
   * Runs one read-only SELECT; LakeQueryError (400) when refused,
   * LakeTimeoutError (503) when stopped. `masked`: over the masked schema
   * (a token without the pii grant), when there is one.
   */
  async query(sql: string, rowsMax: number = limits.lakeQueryRowsMax, masked = false): Promise<QueryAnswer> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.queryOnce(sql, rowsMax, masked);
      } catch (e) {
        // A glob matched a tail chunk that compaction then replaced with its hour files (compactor.ts): the files are whole again at once.
        if (!(e instanceof LakeQueryError && fileGone.test(e.message)) || attempt >= limits.lakeQueryAttemptsMax) throw e;
      }
    }
  }

  private async queryOnce(sql: string, rowsMax: number, masked: boolean): Promise<QueryAnswer> {
    return this.withConnection(async (conn) => {
      if (masked) await this.useMasked(conn, sql); // before it is bound: its names then bind in the masked schema
      const prepared = await prepareReadOnly(conn, sql);
      try {
        const reader = await prepared.streamAndReadUntil(rowsMax + 1);
        const rows = reader.getRowsJS().slice(0, rowsMax + 1);
        const truncated = rows.length > rowsMax;
        const types = reader.columnTypes();
        return { columns: reader.columnNames(), rows: rows.slice(0, rowsMax).map((r) => jsonRow(r, types)), truncated };
      } finally {
        prepared.destroySync();
      }
    });
  }

  /**
   * A connection for the duration of `work`, interrupted at the timeout.
   * Export and the metric views' checks use it too, so every statement a
   * client caused is bounded in time.
   */
  async withConnection<T>(work: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
    const release = await this.turns.take(performance.now() + this.timeoutMs);
    if (release === undefined) throw new LakeTimeoutError(this.timeoutMs);
    const conn = await this.instance.connect();
    lowerDuckdbThreads(); // a statement may have started a new pool thread
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      conn.interrupt();
    }, this.timeoutMs);
    try {
      return await work(conn);
    } catch (e) {
      if (timedOut) throw new LakeTimeoutError(this.timeoutMs);
      if (e instanceof LakeQueryError) throw e;
      throw new LakeQueryError(`sql: ${firstLine((e as Error).message)}`);
    } finally {
      clearTimeout(timer);
      conn.closeSync();
      release();
    }
  }

  /** LakeQueryError (400) naming why, unless `sql` is one read-only SELECT DuckDB can bind. */
  async checkReadOnly(sql: string): Promise<void> {
    await this.withConnection(async (conn) => (await prepareReadOnly(conn, sql)).destroySync());
  }

  /** A bare connection, for export (its own SQL, not a client's: bounded by the export's range, not the query timeout); `masked` as for query(). */
  async connect(masked = false): Promise<DuckDBConnection> {
    const conn = await this.instance.connect();
    if (masked && this.maskedNames !== null) await conn.run(`USE ${lakeCatalog}.${maskedSchema}`);
    return conn;
  }

  /** Points a client's connection at the masked schema, once its SQL is found to reach nothing else (LakeQueryError). */
  private async useMasked(conn: DuckDBConnection, sql: string): Promise<void> {
    if (this.maskedNames === null) return;
    await checkMaskedReach(conn, sql, this.maskedNames);
    await conn.run(`USE ${lakeCatalog}.${maskedSchema}`);
  }

  /** The columns of a table or view SQL can read (name and DuckDB type). */
  async describe(name: string): Promise<Array<{ name: string; type: string }>> {
    const r = await this.admin.runAndReadAll(`DESCRIBE ${sqlIdent(name)}`);
    return r.getRowsJS().map((row) => ({ name: String(row[0]), type: String(row[1]) }));
  }

  /** Makes (or replaces) a view; the admin connection may, clients may not. `sql` was checked by prepareReadOnly. */
  async createView(name: string, sql: string): Promise<void> {
    await this.admin.run(`CREATE OR REPLACE VIEW ${sqlIdent(name)} AS ${sql}`);
    if (this.maskedNames === null) return;
    // Its copy in the masked schema, made from there, so its own names bind to the masked tables.
    await this.admin.run(`USE ${lakeCatalog}.${maskedSchema}`);
    try {
      await this.admin.run(`CREATE OR REPLACE VIEW ${sqlIdent(name)} AS ${sql}`);
    } finally {
      await this.admin.run(`USE ${lakeCatalog}.main`);
    }
    this.maskedNames.add(name);
  }

  /**
   * Makes (or replaces) view `name` over the Parquet files in `dir` (a
   * materialised metric view's runs, read by column name, so runs of an
   * older definition still read), and its masked copy with every text
   * column's tokens hidden: derived rows may carry any pii column.
   */
  async createFileView(name: string, dir: string): Promise<void> {
    await this.admin.run(`CREATE OR REPLACE VIEW ${sqlIdent(name)} AS SELECT * FROM read_parquet(${sqlString(join(dir, "*.parquet"))}, union_by_name = true)`);
    if (this.maskedNames === null) return;
    const columns = await this.describe(name);
    await this.admin.run(`CREATE OR REPLACE VIEW ${maskedSchema}.${sqlIdent(name)} AS ${maskedSelect(name, columns, textColumns(columns))}`);
    this.maskedNames.add(name);
  }

  /**
   * Writes weir's own `select` (not a client's) to `target` as Parquet,
   * under a temporary name renamed into place; bounded by the query
   * timeout like any statement. Returns the rows written.
   */
  async copyToParquet(select: string, target: string): Promise<number> {
    const tmp = `${target}.tmp`;
    try {
      const rows = await this.withConnection(async (conn) => (await conn.runAndReadAll(`COPY (${select}) TO ${sqlString(tmp)} (FORMAT parquet)`)).getRowsJS()[0]?.[0]);
      renameSync(tmp, target);
      return Number(rows ?? 0);
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  async dropView(name: string): Promise<void> {
    await this.admin.run(`DROP VIEW IF EXISTS ${sqlIdent(name)}`);
    if (this.maskedNames === null) return;
    await this.admin.run(`DROP VIEW IF EXISTS ${lakeCatalog}.${maskedSchema}.${sqlIdent(name)}`);
    this.maskedNames.delete(name);
  }

  close(): void {
    this.admin.closeSync();
    this.instance.closeSync();
  }
}

/** An empty typed relation of these columns. */
function emptyOf(columns: LakeColumn[]): string {
  return `SELECT ${columns.map((c) => `NULL::${c.type} AS ${sqlIdent(c.name)}`).join(", ")} WHERE false`;
}

/** Zero-row Parquet files, so every view's glob matches a file before the first compaction or snapshot. */
async function writeSeeds(conn: DuckDBConnection, dataDir: string): Promise<void> {
  const seeds: Array<[string, LakeColumn[]]> = [
    [join(lakePaths.raw(dataDir), "date=1970-01-01", "hour=00", "_empty.parquet"), eventColumns],
    [join(lakePaths.tail(dataDir), "_empty.parquet"), eventColumns],
    ...curatedTables.map((t): [string, LakeColumn[]] => [join(lakePaths.curated(dataDir), `${t.name}.parquet`), t.columns]),
  ];
  for (const [path, columns] of seeds) {
    if (existsSync(path)) continue;
    mkdirSync(join(path, ".."), { recursive: true });
    await conn.run(`COPY (${emptyOf(columns)}) TO ${sqlString(path)} (FORMAT parquet)`);
    utimesSync(path, 0, 0); // older than any store: the first curated snapshot is due (curated.ts)
  }
}

async function createViews(conn: DuckDBConnection, dataDir: string): Promise<void> {
  const cols = eventColumns.map((c) => sqlIdent(c.name)).join(", ");
  const globs = [join(lakePaths.raw(dataDir), "*", "*", "*.parquet"), join(lakePaths.tail(dataDir), "*.parquet")];
  await conn.run(`CREATE VIEW events AS SELECT ${cols} FROM read_parquet([${globs.map(sqlString).join(", ")}], hive_partitioning = false)`);
  for (const t of curatedTables) {
    await conn.run(`CREATE VIEW ${sqlIdent(t.name)} AS SELECT * FROM read_parquet(${sqlString(join(lakePaths.curated(dataDir), `${t.name}.parquet`))})`);
  }
  for (const r of rollupViews) await conn.run(`CREATE VIEW ${sqlIdent(r.name)} AS SELECT * FROM windows WHERE "window" = ${sqlString(r.window)}`);
}

/** Schema `masked`: each lake table with its pii columns' tokens hidden (sensitivity.ts). */
async function createMaskedViews(conn: DuckDBConnection): Promise<void> {
  await conn.run(`CREATE SCHEMA ${maskedSchema}`);
  for (const t of lakeTables()) await conn.run(`CREATE VIEW ${maskedSchema}.${sqlIdent(t.name)} AS ${maskedSelect(t.name, t.columns)}`);
}
