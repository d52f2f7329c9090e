/**
 * One DuckDB instance with the lake's settings (one thread, a memory
 * limit, spill files under the lake), for the SQL service and for the
 * maintenance thread. Only the modules that run DuckDB import this file,
 * and they are loaded at the lake's first query, compaction or snapshot
 * (lake.ts, lake.worker.ts): a weir that never touches the lake does not
 * load DuckDB's library (BENCHMARKS.md "Lake": RSS).
 *
 * @example
 *   const instance = await openDuckdb(join(lake, ".duckdb-tmp"));
 */
import { DuckDBInstance } from "@duckdb/node-api";
import { limits } from "../runtime/limits.ts";
import { lowerThreadsNamed } from "../runtime/thread-priority.ts";

export async function openDuckdb(tempDirectory: string, settings: Record<string, string> = {}): Promise<DuckDBInstance> {
  const instance = await DuckDBInstance.create(":memory:", {
    threads: String(limits.lakeDuckdbThreads),
    memory_limit: `${limits.lakeDuckdbMemoryBytes}B`,
    temp_directory: tempDirectory,
    ...settings,
  });
  lowerDuckdbThreads();
  return instance;
}

/**
 * DuckDB's work runs on Bun's pool threads, not on the thread that asked:
 * they are made nicer (lakeThreadNice) than the main thread and the
 * partition workers, so on busy cores a query or a compaction takes what
 * ingest leaves. Called after each statement starts, as the pool may have
 * grown a thread.
 */
export function lowerDuckdbThreads(): void {
  lowerThreadsNamed("Bun Pool", limits.lakeThreadNice);
}
