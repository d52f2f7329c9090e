/**
 * The lake's maintenance thread: compaction of the raw log, the raw tail,
 * curated snapshots and retention, off the main thread and niced below the
 * partition workers (lakeThreadNice; DuckDB's pool threads too, duck.ts),
 * so ingest does not wait on it. A curated table's snapshot is written
 * only when the store changed since its last one (curated.ts). The main thread
 * (maintenance.ts) asks for a pass; the worker answers when it is done.
 *
 * Messages in:  { op: "pass", id, curated: boolean, nowMs }
 * Messages out: { id, ok: true, result } | { id, ok: false, error }
 */
import type { DuckDBConnection } from "@duckdb/node-api";
import { join } from "node:path";
import { limits } from "../runtime/limits.ts";
import { lowerThreadPriority } from "../runtime/thread-priority.ts";
import { openReader } from "../storage/db.ts";
import { Compactor } from "./compactor.ts";
import { staleCurated, writeCurated } from "./curated.ts";
import { lakePaths } from "./tables.ts";

declare const self: Worker;

export interface LakeWorkerData { dataDir: string; retentionMs: number }
export interface PassRequest { op: "pass"; id: number; curated: boolean; nowMs: number }

lowerThreadPriority(limits.lakeThreadNice);
const { dataDir, retentionMs } = (await import("node:worker_threads")).workerData as LakeWorkerData;
/** DuckDB, loaded and opened at the first pass with rows to write: an idle weir's lake does not carry it. */
let duckdb: Promise<{ conn: DuckDBConnection; lower: () => void }> | null = null;
const duck = async (): Promise<DuckDBConnection> => {
  duckdb ??= (async () => {
    const { lowerDuckdbThreads, openDuckdb } = await import("./duck.ts");
    const instance = await openDuckdb(join(lakePaths.staging(dataDir), "duckdb-tmp"));
    return { conn: await instance.connect(), lower: lowerDuckdbThreads };
  })();
  const d = await duckdb;
  d.lower(); // the pool may have grown a thread for this statement
  return d.conn;
};
const store = openReader(join(dataDir, "weir.db"));
const series = store.query("SELECT key, name, tags FROM series WHERE partition = ? AND local = ?");
const compactor = new Compactor({
  dataDir, duck, retentionMs,
  lookup: (p, local) => {
    const r = series.get(p, local) as { key: string; name: string; tags: string } | null;
    return r === null ? undefined : { key: r.key, name: r.name, tags: JSON.parse(r.tags) as Record<string, string> };
  },
});

// One pass at a time, in order: requests queue on this promise.
let chain: Promise<unknown> = Promise.resolve();
self.onmessage = (e: MessageEvent<PassRequest>) => {
  const req = e.data;
  chain = chain.then(async () => {
    try {
      const raw = await compactor.pass(req.nowMs);
      const stale = req.curated ? staleCurated(dataDir, store) : [];
      const result = { ...raw, curated: stale.length > 0 ? await writeCurated(dataDir, store, await duck(), stale) : null };
      postMessage({ id: req.id, ok: true, result });
    } catch (err) {
      postMessage({ id: req.id, ok: false, error: (err as Error).message });
    }
  });
};
postMessage({ id: 0, ok: true, result: "ready" });
