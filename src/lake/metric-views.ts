/**
 * The metric views: those of the config file, and those the admin API puts
 * and deletes, kept in <data>/metric-views.db across restarts (the admin
 * API's win over the config file's of the same name, as with rules). Each
 * is checked as one read-only SELECT that DuckDB can bind before it is
 * made a view, so a bad one is a 400 at PUT, never a broken catalog.
 *
 * @example
 *   const book = await MetricViews.open(dataDir, sql, cfg.metricViews);
 *   await book.put({ name: "daily_purchases", sql: "SELECT …", description: "" });
 */
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { limits } from "../runtime/limits.ts";
import { LakeQueryError } from "./errors.ts";
import type { MetricViewDef } from "./metric-view-def.ts";
import { prepareReadOnly } from "./sql-guard.ts";
import type { SqlService } from "./sql-service.ts";
import { lakeTables } from "./tables.ts";

export interface MetricView extends MetricViewDef { source: "config" | "api"; updatedMs: number }

export class MetricViews {
  private readonly views = new Map<string, MetricView>();

  private constructor(private readonly db: Database, private readonly sql: SqlService) {}

  static async open(dataDir: string, sql: SqlService, fromConfig: MetricViewDef[]): Promise<MetricViews> {
    const db = new Database(join(dataDir, "metric-views.db"), { create: true, strict: true });
    db.exec("PRAGMA journal_mode = WAL; CREATE TABLE IF NOT EXISTS metric_views (name TEXT PRIMARY KEY, def TEXT NOT NULL, updated_ms INTEGER NOT NULL) WITHOUT ROWID");
    const book = new MetricViews(db, sql);
    for (const def of fromConfig) await book.install({ ...def, source: "config", updatedMs: 0 });
    for (const row of db.query("SELECT def, updated_ms FROM metric_views ORDER BY name").all() as Array<{ def: string; updated_ms: number }>) {
      await book.install({ ...(JSON.parse(row.def) as MetricViewDef), source: "api", updatedMs: row.updated_ms });
    }
    return book;
  }

  list(): MetricView[] {
    return [...this.views.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  get(name: string): MetricView | undefined {
    return this.views.get(name);
  }

  /** Checks and makes (or replaces) a view; true when it is new. LakeQueryError (400) naming why it is refused. */
  async put(def: MetricViewDef, nowMs = Date.now()): Promise<boolean> {
    const created = !this.views.has(def.name);
    if (created && this.views.size >= limits.metricViewsMax) throw new LakeQueryError(`name: at most ${limits.metricViewsMax} metric views (metricViewsMax)`);
    await this.install({ ...def, source: "api", updatedMs: nowMs });
    this.db.query("INSERT OR REPLACE INTO metric_views (name, def, updated_ms) VALUES (?, ?, ?)").run(def.name, JSON.stringify(def), nowMs);
    return created;
  }

  async delete(name: string): Promise<boolean> {
    if (!this.views.has(name)) return false;
    await this.sql.dropView(name);
    this.views.delete(name);
    this.db.query("DELETE FROM metric_views WHERE name = ?").run(name);
    return true;
  }

  close(): void {
    this.db.close();
  }

  private async install(v: MetricView): Promise<void> {
    if (lakeTables().some((t) => t.name === v.name)) throw new LakeQueryError(`name: "${v.name}" is a table of the lake`);
    await this.sql.withConnection(async (conn) => (await prepareReadOnly(conn, v.sql)).destroySync());
    await this.sql.createView(v.name, v.sql);
    this.views.set(v.name, v);
  }
}
