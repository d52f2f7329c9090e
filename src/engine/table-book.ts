/**
 * The reference tables on the main thread (API.md "Views and reference
 * tables"): which tables there are, where each came from, and every change
 * to them, for the views to send on to the partition workers (onChange).
 *
 * - Sources, as the rule book's: the config file's `tables:` first (read
 *   and validated by config.ts), then the admin API's changes over them
 *   (PUT replaces, PATCH upserts by key, DELETE), each kept in the store's
 *   `ref_tables` table as the table's rows or a deletion, so they survive
 *   restarts and win over the file's table of the same name. A change is
 *   written to the store before it takes effect; a failed write changes
 *   nothing.
 * - One change at a time: a PATCH reads the table as the change before it
 *   left it, so two PATCHes at once both land.
 * - Versions: every change takes the next number of one sequence for the
 *   whole book, kept with the rows in the store, so a version names one
 *   state of one table, and a table deleted and made again never repeats
 *   a version a worker may still hold. The config file's tables take
 *   theirs at start, after every stored one.
 * - Tables are immutable (table.ts): a change makes a new RefTable, so
 *   whoever holds the old one reads it whole.
 *
 * @example
 *   const book = TableBook.load({ cfg, db, log, writer });
 *   book.onChange((name, table) => post({ type: "table", name, table }));
 *   await book.put("users", { text: "user_id,segment\nu1,gold\n", format: "csv" }, "user_id");
 */
import type { Database } from "bun:sqlite";
import {
  parseTable, type RefTable, replaceTable, type Row, TableError, type TableFormat, upsertTable,
} from "../actors/views/table.ts";
import type { Config } from "../config.ts";
import { OverloadedError } from "./errors.ts";
import { limits } from "../runtime/limits.ts";
import type { Log } from "../runtime/log.ts";
import type { StoreWriter } from "../storage/store-writer.ts";

export interface TableBookDeps {
  cfg: Config;
  db: Database;
  log: Log;
  writer: () => StoreWriter;
  /** Why a change must wait now (its markers could not be queued within their bound), or null. */
  busy?: () => string | null;
}

/** A request body of rows: CSV, JSON or NDJSON text. */
export interface TableBody { text: string; format: TableFormat }

/** One table as GET /api/v1/tables lists it. */
export interface TableSummary {
  name: string;
  key: string;
  columns: string[];
  count: number;
  version: number;
  source: "config" | "api";
}

/** A page of one table's rows (GET /api/v1/tables/{name}). */
export interface TablePage extends TableSummary { offset: number; rows: Row[]; more: boolean }

export type TableListener = (name: string, table: RefTable | null) => void;

interface Held { table: RefTable; source: "config" | "api" }

export class TableBook {
  private readonly tables = new Map<string, Held>();
  private readonly listeners = new Set<TableListener>();
  private nextVersion = 1;
  /** The change in progress: the next one waits for it. */
  private last: Promise<unknown> = Promise.resolve();

  private constructor(private readonly d: TableBookDeps) {}

  /** The config file's tables with the admin API's changes over them. */
  static load(d: TableBookDeps): TableBook {
    const book = new TableBook(d);
    const stored = d.db.query(`SELECT name, key, version, rows FROM ref_tables ORDER BY updated_ms`).all() as Array<
      { name: string; key: string | null; version: number; rows: string | null }
    >;
    book.nextVersion = 1 + stored.reduce((m, s) => Math.max(m, s.version), 0);
    for (const t of d.cfg.tables) book.tables.set(t.name, { table: replaceTable(t.name, t.rows, book.nextVersion++), source: "config" });
    for (const s of stored) {
      if (s.rows === null || s.key === null) {
        book.tables.delete(s.name);
        continue;
      }
      try {
        book.tables.set(s.name, { table: replaceTable(s.name, parseTable(s.rows, "json", s.key, "store"), s.version), source: "api" });
      } catch (e) {
        // Valid when it was put; the bounds changed since: said, and left out.
        d.log.warn("tables: a table kept from the admin API no longer fits the bounds; left out", { table: s.name, error: (e as Error).message });
      }
    }
    return book;
  }

  /**
   * Calls `fn` after every change, with the table as it now stands (null:
   * deleted); returns a function that stops the calls.
   */
  onChange(fn: TableListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Every table as it stands. */
  all(): RefTable[] {
    return [...this.tables.values()].map((h) => h.table);
  }

  table(name: string): RefTable | undefined {
    return this.tables.get(name)?.table;
  }

  list(): TableSummary[] {
    return [...this.tables.values()].map(summaryOf);
  }

  /** Rows from `offset` (in the table's order: as loaded, then new keys as upserted), at most `limit`. */
  get(name: string, offset: number, limit: number): TablePage | undefined {
    const h = this.tables.get(name);
    if (h === undefined) return undefined;
    const rows: Row[] = [];
    let i = 0;
    for (const row of h.table.rows.values()) {
      if (i++ < offset) continue;
      if (rows.length === limit) break;
      rows.push(row);
    }
    return { ...summaryOf(h), offset, rows, more: offset + rows.length < h.table.rows.size };
  }

  /**
   * Replaces a table's rows, or makes the table (PUT). `key` names the key
   * column; without it, the table's current one. Throws a TableError naming
   * the fault.
   * @example await book.put("users", { text: '[{"id": "u1"}]', format: "json" }, "id") // { created: true, table: {...} }
   */
  put(name: string, body: TableBody, key: string | undefined): Promise<{ created: boolean; table: TableSummary }> {
    return this.serially(async () => {
      const old = this.tables.get(name);
      if (old === undefined && this.tables.size >= limits.tablesMax) throw new TableError(`tables: ${this.tables.size} already, at most ${limits.tablesMax} (tablesMax)`);
      const k = key ?? old?.table.key;
      if (k === undefined) throw new TableError(`key: a new table needs its key column named (?key=<column>)`);
      const table = replaceTable(name, parseTable(body.text, body.format, k, "body"), this.nextVersion++);
      await this.keep(table);
      return { created: old === undefined, table: summaryOf(this.tables.get(name)!) };
    });
  }

  /**
   * Puts rows by key into a table (PATCH): a key it has gets the new row
   * whole, a new key is added. Undefined when there is no such table.
   */
  patch(name: string, body: TableBody, key: string | undefined): Promise<(TableSummary & { inserted: number; updated: number }) | undefined> {
    return this.serially(async () => {
      const old = this.tables.get(name);
      if (old === undefined) return undefined;
      if (key !== undefined && key !== old.table.key) throw new TableError(`key: the table's key column is ${old.table.key}, not ${key}`);
      const rows = parseTable(body.text, body.format, old.table.key, "body");
      const { table, inserted, updated } = upsertTable(old.table, rows, this.nextVersion++);
      await this.keep(table);
      return { ...summaryOf(this.tables.get(name)!), inserted, updated };
    });
  }

  /** Removes a table (also one of the config file, for good); false if there is none of that name. */
  delete(name: string): Promise<boolean> {
    return this.serially(async () => {
      if (!this.tables.has(name)) return false;
      await this.d.writer().writeTable(name, null, this.nextVersion++, null);
      this.tables.delete(name);
      for (const fn of this.listeners) fn(name, null);
      return true;
    });
  }

  /** In the store first, then in effect. */
  private async keep(table: RefTable): Promise<void> {
    await this.d.writer().writeTable(table.name, table.key, table.version, JSON.stringify([...table.rows.values()]));
    this.tables.set(table.name, { table, source: "api" });
    for (const fn of this.listeners) fn(table.name, table);
  }

  private serially<T>(change: () => Promise<T>): Promise<T> {
    const why = this.d.busy?.() ?? null;
    if (why !== null) return Promise.reject(new OverloadedError(`tables: ${why}; try again later`, 503));
    const run = this.last.then(change, change);
    this.last = run.catch(() => {});
    return run;
  }
}

function summaryOf(h: Held): TableSummary {
  const t = h.table;
  return { name: t.name, key: t.key, columns: [...t.columns], count: t.rows.size, version: t.version, source: h.source };
}
