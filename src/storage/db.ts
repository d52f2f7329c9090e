/**
 * The SQLite file: schema, the one writer connection and read-only
 * connections for queries. WAL mode so readers never block the writer.
 *
 * @example
 *   const db = openStore("./data/weir.db");       // writer, creates the schema
 *   const r = openReader("./data/weir.db");       // queries
 */
import { WeirError } from "../runtime/errors.ts";
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { limits } from "../runtime/limits.ts";

export class StoreError extends WeirError {
  override name = "StoreError";
  constructor(message: string) {
    super("store", message);
  }
}

const schema = `
CREATE TABLE IF NOT EXISTS series (
  key TEXT PRIMARY KEY, name TEXT NOT NULL, tags TEXT NOT NULL,
  partition INTEGER NOT NULL, local INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS windows (
  series TEXT NOT NULL, window TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
  count INTEGER NOT NULL, sum REAL, min REAL, max REAL, avg REAL, p50 REAL, p95 REAL, p99 REAL,
  first REAL, last REAL,
  PRIMARY KEY (series, window, start)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS anomalies (
  id INTEGER PRIMARY KEY AUTOINCREMENT, series TEXT NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL,
  z REAL NOT NULL, mean REAL NOT NULL, std REAL NOT NULL, severity TEXT NOT NULL, source TEXT NOT NULL,
  baseline_n REAL NOT NULL, baseline_from INTEGER NOT NULL,
  test TEXT NOT NULL DEFAULT 'spike', expected_lo REAL, expected_hi REAL
);
CREATE INDEX IF NOT EXISTS anomalies_ts ON anomalies (ts);
CREATE INDEX IF NOT EXISTS anomalies_series ON anomalies (series, ts);
CREATE TABLE IF NOT EXISTS checkpoints (
  partition INTEGER PRIMARY KEY, pos INTEGER NOT NULL, state BLOB NOT NULL,
  config TEXT NOT NULL, committed_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deadletters (
  id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, reason TEXT NOT NULL, event TEXT NOT NULL, source TEXT
);
CREATE TABLE IF NOT EXISTS alerts (
  rule TEXT NOT NULL, series TEXT NOT NULL, state TEXT NOT NULL, ts INTEGER NOT NULL,
  value TEXT NOT NULL, threshold TEXT NOT NULL, severity TEXT NOT NULL, labels TEXT NOT NULL, advice TEXT,
  handed INTEGER NOT NULL DEFAULT 0, kind TEXT NOT NULL DEFAULT 'rule',
  PRIMARY KEY (rule, series, ts, state)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alerts_ts ON alerts (ts);
CREATE TABLE IF NOT EXISTS view_state (
  series TEXT NOT NULL, window TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, view TEXT NOT NULL, agg BLOB NOT NULL,
  PRIMARY KEY (series, window, start)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS view_state_end ON view_state ("end");
CREATE TABLE IF NOT EXISTS view_rules (
  id INTEGER PRIMARY KEY CHECK (id = 1), judged_to REAL NOT NULL, state BLOB NOT NULL, updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rules (
  name TEXT PRIMARY KEY, def TEXT, updated_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS views (
  name TEXT PRIMARY KEY, def TEXT, updated_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ref_tables (
  name TEXT PRIMARY KEY, key TEXT, version INTEGER NOT NULL, rows TEXT, updated_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trends (
  series TEXT PRIMARY KEY, ts INTEGER NOT NULL, slope REAL NOT NULL, r2 REAL NOT NULL, n INTEGER NOT NULL,
  change REAL NOT NULL, level REAL NOT NULL, class TEXT NOT NULL
) WITHOUT ROWID;
`;

export function openStore(path: string): Database {
  mkdirSync(dirname(path), { recursive: true });
  let db: Database;
  try {
    db = new Database(path, { create: true, strict: true });
    db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;");
    db.exec(`PRAGMA cache_size = -${limits.storeCacheBytes / 1024};`); // negative: KiB
    db.exec(schema);
    // A store made before alerts had a kind (rule or view) gets the column.
    const alertCols = db.query("PRAGMA table_info(alerts)").all() as Array<{ name: string }>;
    if (!alertCols.some((c) => c.name === "kind")) db.exec("ALTER TABLE alerts ADD COLUMN kind TEXT NOT NULL DEFAULT 'rule'");
    // A store made before anomalies carried their explanation gets its columns (old rows: a spike, no range).
    const anomalyCols = db.query("PRAGMA table_info(anomalies)").all() as Array<{ name: string }>;
    if (!anomalyCols.some((c) => c.name === "test")) {
      db.exec("ALTER TABLE anomalies ADD COLUMN test TEXT NOT NULL DEFAULT 'spike'; ALTER TABLE anomalies ADD COLUMN expected_lo REAL; ALTER TABLE anomalies ADD COLUMN expected_hi REAL;");
    }
    const check = db.query("PRAGMA quick_check").get() as { quick_check: string };
    if (check.quick_check !== "ok") throw new Error(check.quick_check);
  } catch (e) {
    throw new StoreError(`store ${path}: ${(e as Error).message}`);
  }
  return db;
}

export function openReader(path: string): Database {
  const db = new Database(path, { readonly: true, strict: true });
  db.exec("PRAGMA busy_timeout = 5000;");
  return db;
}
