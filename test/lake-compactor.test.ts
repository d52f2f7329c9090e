/**
 * The raw zone's compaction on real files: closed raw-log segments become
 * Parquet files by event hour, once (a second pass changes nothing), the
 * open segment stays in the tail, and an interrupted compaction (no marker)
 * is redone to the same names without duplicates.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { Encoder } from "@msgpack/msgpack";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeIngestRecord, ingestRecordFormat } from "../src/actors/ingest-record.ts";
import { encodeEventBatch } from "../src/runtime/codec.ts";
import { RawLog } from "../src/storage/rawlog.ts";
import { Compactor } from "../src/lake/compactor.ts";

const hour = 3600_000;
const t0 = Date.UTC(2026, 0, 2, 10, 0, 0);
let dir: string;
let conn: DuckDBConnection;

/** Four records of three events each, two hours apart in pairs, in segments of about one record. */
function writeLog(): void {
  const log = new RawLog(join(dir, "raw"), { profile: "fast", segmentBytesMax: 64 });
  const enc = new Encoder();
  for (let r = 0; r < 4; r++) {
    const ts = new Float64Array([0, 1, 2].map((i) => t0 + (r >= 2 ? hour : 0) + r * 10 + i));
    const bin = encodeEventBatch(new Encoder(), 3, new Uint32Array([0, 0, 0]), ts, new Float64Array([1, 2, 3]), t0).slice();
    const s: Array<[string, string, Record<string, string>, number, number]> = r === 0 ? [["cpu{host=\"a\"}", "cpu", { host: "a" }, 0, 0]] : [];
    log.append(ingestRecordFormat, t0, encodeIngestRecord(enc, { s, b: [[0, bin]], x: [[0, 1, `id-${r}`, { r }]] }));
  }
  log.close();
}

async function rows(glob: string): Promise<unknown[][]> {
  return (await conn.runAndReadAll(`SELECT ts::BIGINT, series, value, tags['host'], props->>'r', id FROM read_parquet('${glob}') ORDER BY ts`)).getRowsJS();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "weir-compact-"));
  writeLog();
  conn = await (await DuckDBInstance.create(":memory:")).connect();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("lake compactor", () => {
  test("lake compactor - closed segments become hour files once; the open one stays in the tail", async () => {
    const c = new Compactor({ dataDir: dir, duck: async () => conn, lookup: () => undefined, retentionMs: 3650 * 24 * hour });
    const first = await c.pass(t0);
    expect(first).toEqual({ compacted: 3, tailEvents: 3, hoursDeleted: 0 });
    const hours = readdirSync(join(dir, "lake", "raw", "date=2026-01-02"));
    expect(hours).toEqual(["hour=10", "hour=11"]);
    const compacted = await rows(join(dir, "lake", "raw", "*", "*", "*.parquet"));
    expect(compacted.length).toBe(9);
    expect(compacted[1]).toEqual([BigInt(t0 + 1), 'cpu{host="a"}', 2, "a", "0", "id-0"]);
    expect((await rows(join(dir, "lake", "tail", "*.parquet"))).map((r) => r[0])).toEqual([0, 1, 2].map((i) => BigInt(t0 + hour + 30 + i)));
    expect(await c.pass(t0)).toEqual({ compacted: 0, tailEvents: 0, hoursDeleted: 0 });
    expect((await rows(join(dir, "lake", "raw", "*", "*", "*.parquet"))).length).toBe(9);
  });

  test("lake compactor - a segment whose marker is missing is compacted again to the same files, not twice", async () => {
    const marker = readdirSync(join(dir, "lake", ".compacted"))[0];
    rmSync(join(dir, "lake", ".compacted", marker));
    const c = new Compactor({ dataDir: dir, duck: async () => conn, lookup: () => undefined, retentionMs: 3650 * 24 * hour });
    expect(await c.pass(t0)).toEqual({ compacted: 1, tailEvents: 3, hoursDeleted: 0 });
    expect((await rows(join(dir, "lake", "raw", "*", "*", "*.parquet"))).length).toBe(9);
  });

  test("lake compactor - hours past the retention are deleted", async () => {
    const c = new Compactor({ dataDir: dir, duck: async () => conn, lookup: () => undefined, retentionMs: hour });
    expect((await c.pass(t0 + 2 * hour + 1)).hoursDeleted).toBe(1);
    expect(readdirSync(join(dir, "lake", "raw", "date=2026-01-02"))).toEqual(["hour=11"]);
  });
});
