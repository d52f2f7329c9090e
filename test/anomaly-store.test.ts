/**
 * Anomalies as stored: a store made before anomalies carried their
 * explanation (`test`, `expected`) gets the columns at open, and its old
 * rows read back as a spike with no range (API.md: `expected` null).
 */
import { expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../src/storage/db.ts";
import { expectedOf } from "../src/engine/staged-merge.ts";

test("anomaly store - an old store gets the explanation's columns; its rows read as a spike with no range", () => {
  const dir = mkdtempSync(join(tmpdir(), "weir-anomaly-store-"));
  try {
    const path = join(dir, "weir.db");
    const old = new Database(path, { create: true });
    old.exec(`CREATE TABLE anomalies (
      id INTEGER PRIMARY KEY AUTOINCREMENT, series TEXT NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL,
      z REAL NOT NULL, mean REAL NOT NULL, std REAL NOT NULL, severity TEXT NOT NULL, source TEXT NOT NULL,
      baseline_n REAL NOT NULL, baseline_from INTEGER NOT NULL)`);
    old.exec(`INSERT INTO anomalies (series, ts, value, z, mean, std, severity, source, baseline_n, baseline_from) VALUES ('a', 1, 9, 6, 3, 1, 'critical', 'value', 200, 0)`);
    old.close();
    const db = openStore(path);
    const cols = (db.query("PRAGMA table_info(anomalies)").all() as Array<{ name: string }>).map((c) => c.name);
    expect(cols.slice(-3)).toEqual(["test", "expected_lo", "expected_hi"]);
    const row = db.query("SELECT test, expected_lo, expected_hi FROM anomalies").get() as { test: string; expected_lo: number | null; expected_hi: number | null };
    expect(row).toEqual({ test: "spike", expected_lo: null, expected_hi: null });
    expect(expectedOf(row.expected_lo, row.expected_hi)).toBeNull();
    expect(expectedOf(1, 5)).toEqual([1, 5]);
    db.close();
    const again = openStore(path); // opening once more changes nothing
    expect((again.query("PRAGMA table_info(anomalies)").all() as unknown[]).length).toBe(cols.length);
    again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
