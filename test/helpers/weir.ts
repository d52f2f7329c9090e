/**
 * Starts a real weir (engine, worker threads, SQLite, HTTP) on a free port
 * in a temporary data directory, for integration tests.
 *
 * @example
 *   const t = await startTestWeir({ WEIR_LATENESS: "0" });
 *   const res = await fetch(`${t.url}/health`);
 *   await t.stop();
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config.ts";
import { silentLog } from "../../src/runtime/log.ts";
import { startWeir, type Weir } from "../../src/server.ts";
import { partitionOf } from "../../src/runtime/series.ts";

export interface TestWeir extends Weir {
  dataDir: string;
}

export async function startTestWeir(env: Record<string, string> = {}, dataDir?: string): Promise<TestWeir> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), "weir-test-"));
  const cfg = loadConfig({ WEIR_PORT: "0", WEIR_DATA_DIR: dir, WEIR_PARTITIONS: "2", ...env });
  const weir = await startWeir(cfg, silentLog);
  return {
    ...weir,
    dataDir: dir,
    async stop() {
      await weir.stop();
      if (!dataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** POSTs a body to /api/v1/events; returns status, headers and parsed JSON. */
export async function postEvents(url: string, body: BodyInit, contentType = "application/json", headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/api/v1/events`, { method: "POST", body, headers: { "content-type": contentType, ...headers } });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text.length > 0 ? JSON.parse(text) : null };
}

/** The first series name `<prefix><i>` whose key lands in `partition` (of `partitions`, default 2). */
export function seriesIn(partition: number, prefix: string, partitions = 2): string {
  for (let i = 0; ; i++) if (partitionOf(`${prefix}${i}`, partitions) === partition) return `${prefix}${i}`;
}
