/**
 * Materialised metric views: a metric view with `materialize: {every,
 * retention?}` is run every `every`, and each run's rows, stamped
 * `materialized_at` (epoch ms of the run), are appended as one Parquet file
 * lake/materialized/<view>/<run ms>.parquet, which SQL reads as table
 * `<view>_materialized` (append-only: a run never changes an earlier one).
 * Runs older than the view's retention (default WEIR_RETENTION_LAKE) are
 * deleted. When a view is due comes from its files (the newest run), so a
 * restart neither repeats nor skips a run; a run missed while weir was
 * down is made once, at start, not once per missed period.
 *
 * @example
 *   const m = new Materializer({ dataDir, retentionMsDefault, views: () => book.list(), sql: () => lake.duck(), log });
 *   m.start();
 *   await m.pass(Date.now()); // { daily_purchases: 12 }: rows appended by view
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseDurationMs } from "../actors/window-spec.ts";
import { limits } from "../runtime/limits.ts";
import type { Log } from "../runtime/log.ts";
import { materializedName, type MetricViewDef } from "./metric-view-def.ts";
import type { SqlService } from "./sql-service.ts";
import { lakePaths, sqlIdent } from "./tables.ts";

export interface MaterializerOptions {
  dataDir: string;
  retentionMsDefault: number;
  views: () => MetricViewDef[];
  sql: () => Promise<SqlService>;
  log: Log;
}

const runFile = /^(\d+)\.parquet$/;
const seedFile = "_empty.parquet";

/** The directory of a view's runs. */
export function runsDir(dataDir: string, view: string): string {
  return join(lakePaths.materialized(dataDir), view);
}

/** The run times (epoch ms) of a view's files, oldest first. */
export function runTimes(dataDir: string, view: string): number[] {
  const dir = runsDir(dataDir, view);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((f) => {
    const m = runFile.exec(f);
    return m === null ? [] : [Number(m[1])];
  }).sort((a, b) => a - b);
}

/** Makes the view's table of runs: a zero-row file of its columns first (so the table binds before the first run), then the view over the files. */
export async function ensureRunsTable(s: SqlService, dataDir: string, view: string): Promise<void> {
  const dir = runsDir(dataDir, view);
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, seedFile))) await s.copyToParquet(`${stamped(view, "NULL")} WHERE false`, join(dir, seedFile));
  await s.createFileView(materializedName(view), dir);
}

/** Removes a view's table of runs and its files. */
export async function dropRuns(s: SqlService, dataDir: string, view: string): Promise<void> {
  await s.dropView(materializedName(view));
  rmSync(runsDir(dataDir, view), { recursive: true, force: true });
}

/** The view's rows with the run's time as a last column. */
function stamped(view: string, ms: string): string {
  return `SELECT *, ${ms}::BIGINT AS materialized_at FROM ${sqlIdent(view)}`;
}

export class Materializer {
  private chain: Promise<unknown> = Promise.resolve();
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly o: MaterializerOptions) {}

  /** Looks at the schedules every lakeMaterializeTickMs. */
  start(): void {
    this.timer = setInterval(() => {
      if (!this.o.views().some((v) => v.materialize !== undefined)) return;
      this.pass(Date.now()).catch((e: Error) => this.o.log.warn("lake: a metric view's run failed", { error: e.message }));
    }, limits.lakeMaterializeTickMs);
  }

  /** Runs every materialised view due at `nowMs` and applies retention; passes run one at a time. Rows appended, by view. */
  pass(nowMs: number): Promise<Record<string, number>> {
    const next = this.chain.then(() => this.runDue(nowMs));
    this.chain = next.catch(() => {});
    return next;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.chain;
  }

  private async runDue(nowMs: number): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const v of this.o.views()) {
      if (v.materialize === undefined) continue;
      const runs = runTimes(this.o.dataDir, v.name);
      const last = runs.at(-1);
      if (last === undefined || nowMs - last >= parseDurationMs(v.materialize.every)) {
        const s = await this.o.sql();
        out[v.name] = await s.copyToParquet(stamped(v.name, String(nowMs)), join(runsDir(this.o.dataDir, v.name), `${nowMs}.parquet`));
      }
      const retentionMs = v.materialize.retention === undefined ? this.o.retentionMsDefault : parseDurationMs(v.materialize.retention);
      for (const ms of runs) if (ms < nowMs - retentionMs) rmSync(join(runsDir(this.o.dataDir, v.name), `${ms}.parquet`), { force: true });
    }
    return out;
  }
}
