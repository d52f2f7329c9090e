/**
 * The metric views: those of the config file, and those the admin API puts
 * and deletes, kept in <data>/metric-views.db across restarts (the admin
 * API's win over the config file's of the same name, as with rules). Each
 * is checked as one read-only SELECT that DuckDB can bind before it is
 * made a view, so a bad one is a 400 at PUT, never a broken catalog. A
 * materialised one also has its table of runs (materialized.ts).
 *
 * DuckDB opens at the lake's first use (lake.ts): the book is read at
 * start, and its views are made in DuckDB when DuckDB opens (installAll).
 *
 * @example
 *   const book = MetricViews.open(dataDir, () => lake.duck(), cfg.metricViews, log);
 *   await book.put({ name: "daily_purchases", sql: "SELECT …", description: "" });
 */
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { limits } from "../runtime/limits.ts";
import type { Log } from "../runtime/log.ts";
import { LakeQueryError } from "./errors.ts";
import { dropRuns, ensureRunsTable } from "./materialized.ts";
import { materializedName, type MetricViewDef } from "./metric-view-def.ts";
import type { SqlService } from "./sql-service.ts";
import { lakeTables } from "./tables.ts";

export interface MetricView extends MetricViewDef { source: "config" | "api"; updatedMs: number }

export class MetricViews {
  private readonly views = new Map<string, MetricView>();

  private constructor(private readonly db: Database, private readonly dataDir: string, private readonly sql: () => Promise<SqlService>, private readonly log: Log) {}

  /** Reads the definitions: the config file's, then the stored ones (which win). DuckDB checks them when it opens. */
  static open(dataDir: string, sql: () => Promise<SqlService>, fromConfig: MetricViewDef[], log: Log): MetricViews {
    const db = new Database(join(dataDir, "metric-views.db"), { create: true, strict: true });
    db.exec("PRAGMA journal_mode = WAL; CREATE TABLE IF NOT EXISTS metric_views (name TEXT PRIMARY KEY, def TEXT NOT NULL, updated_ms INTEGER NOT NULL) WITHOUT ROWID");
    const book = new MetricViews(db, dataDir, sql, log);
    for (const def of fromConfig) book.views.set(def.name, { ...def, source: "config", updatedMs: 0 });
    for (const row of db.query("SELECT def, updated_ms FROM metric_views ORDER BY name").all() as Array<{ def: string; updated_ms: number }>) {
      const def = JSON.parse(row.def) as MetricViewDef;
      book.views.set(def.name, { ...def, source: "api", updatedMs: row.updated_ms });
    }
    return book;
  }

  /**
   * Makes every view in a DuckDB that has just opened. A config view that
   * fails throws (LakeQueryError: the config is wrong); a stored one that
   * fails is logged and left out, so one view cannot break the lake.
   */
  async installAll(s: SqlService): Promise<void> {
    for (const v of [...this.views.values()]) {
      try {
        await this.make(s, v);
      } catch (e) {
        if (v.source === "config" || !(e instanceof LakeQueryError)) throw e;
        this.views.delete(v.name);
        this.log.warn("lake: a stored metric view no longer binds; left out", { name: v.name, error: e.message });
      }
    }
  }

  list(): MetricView[] {
    return [...this.views.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  get(name: string): MetricView | undefined {
    return this.views.get(name);
  }

  /** Checks and makes (or replaces) a view; true when it is new. LakeQueryError (400) naming why it is refused. */
  async put(def: MetricViewDef, nowMs = Date.now()): Promise<boolean> {
    const old = this.views.get(def.name);
    if (old === undefined && this.views.size >= limits.metricViewsMax) throw new LakeQueryError(`name: at most ${limits.metricViewsMax} metric views (metricViewsMax)`);
    const v: MetricView = { ...def, source: "api", updatedMs: nowMs };
    const s = await this.sql();
    await this.make(s, v);
    if (old?.materialize !== undefined && v.materialize === undefined) await dropRuns(s, this.dataDir, old.name);
    this.views.set(v.name, v);
    this.db.query("INSERT OR REPLACE INTO metric_views (name, def, updated_ms) VALUES (?, ?, ?)").run(def.name, JSON.stringify(def), nowMs);
    return old === undefined;
  }

  /** Removes a view, and its table of runs and their files if it was materialised. */
  async delete(name: string): Promise<boolean> {
    const v = this.views.get(name);
    if (v === undefined) return false;
    const s = await this.sql();
    await s.dropView(name);
    if (v.materialize !== undefined) await dropRuns(s, this.dataDir, name);
    this.views.delete(name);
    this.db.query("DELETE FROM metric_views WHERE name = ?").run(name);
    return true;
  }

  close(): void {
    this.db.close();
  }

  private async make(s: SqlService, v: MetricView): Promise<void> {
    const clash = this.clashOf(v);
    if (clash !== undefined) throw new LakeQueryError(`name: "${clash}" is ${lakeTables().some((t) => t.name === clash) ? "a table of the lake" : "already the name of another metric view or its runs"}`);
    await s.checkReadOnly(v.sql);
    await s.createView(v.name, v.sql);
    if (v.materialize !== undefined) await ensureRunsTable(s, this.dataDir, v.name);
  }

  /** A name `v` (or its table of runs) would take that a lake table, another view or another's runs already has. */
  private clashOf(v: MetricViewDef): string | undefined {
    const taken = new Set(lakeTables().map((t) => t.name));
    for (const o of this.views.values()) {
      if (o.name === v.name) continue;
      taken.add(o.name);
      if (o.materialize !== undefined) taken.add(materializedName(o.name));
    }
    if (taken.has(v.name)) return v.name;
    if (v.materialize !== undefined && taken.has(materializedName(v.name))) return materializedName(v.name);
    return undefined;
  }
}
