/**
 * The raw zone's compaction on real files: closed raw-log segments become
 * Parquet files by event hour, once (a second pass changes nothing), the
 * open segment stays in the tail, and an interrupted compaction (no marker)
 * is redone to the same names without duplicates. Every row the raw zone
 * holds is checked against the events the records were made from (a
 * model that does not decode), including ids, props, NaN values, series
 * the store must name, a local id that comes to name another series, and
 * chunks that span hours.
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
import { Compactor, lakeFloor } from "../src/lake/compactor.ts";
import { listSegments, segmentName } from "../src/storage/rawlog.ts";
import { eventColumns } from "../src/lake/tables.ts";

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
    expect(first).toEqual({ compacted: 3, tailEvents: 12, hoursDeleted: 0, pending: 0 });
    const hours = readdirSync(join(dir, "lake", "raw", "date=2026-01-02"));
    expect(hours).toEqual(["hour=10", "hour=11"]);
    const compacted = await rows(join(dir, "lake", "raw", "*", "*", "*.parquet"));
    expect(compacted.length).toBe(9);
    expect(compacted[1]).toEqual([BigInt(t0 + 1), 'cpu{host="a"}', 2, "a", "0", "id-0"]);
    expect((await rows(join(dir, "lake", "tail", "*.parquet"))).map((r) => r[0])).toEqual([0, 1, 2].map((i) => BigInt(t0 + hour + 30 + i)));
    expect(await c.pass(t0)).toEqual({ compacted: 0, tailEvents: 0, hoursDeleted: 0, pending: 0 });
    expect((await rows(join(dir, "lake", "raw", "*", "*", "*.parquet"))).length).toBe(9);
  });

  test("lake compactor - a segment whose marker is missing is compacted again to the same files, not twice", async () => {
    const marker = readdirSync(join(dir, "lake", ".compacted"))[0];
    rmSync(join(dir, "lake", ".compacted", marker));
    const c = new Compactor({ dataDir: dir, duck: async () => conn, lookup: () => undefined, retentionMs: 3650 * 24 * hour });
    expect(await c.pass(t0)).toEqual({ compacted: 1, tailEvents: 6, hoursDeleted: 0, pending: 0 });
    expect((await rows(join(dir, "lake", "raw", "*", "*", "*.parquet"))).length).toBe(9);
  });

  test("lake compactor - the floor the raw log must keep is the first segment not compacted; a pruned segment's marker goes", async () => {
    const segs = listSegments(join(dir, "raw"));
    expect(segs.length).toBe(4);
    expect(lakeFloor(dir)).toBe(segs[3]); // every closed one is compacted: the open one
    const markers = join(dir, "lake", ".compacted");
    rmSync(join(markers, segmentName(segs[1])));
    expect(lakeFloor(dir)).toBe(segs[1]);
    const c = new Compactor({ dataDir: dir, duck: async () => conn, lookup: () => undefined, retentionMs: 3650 * 24 * hour });
    expect(await c.pass(t0)).toEqual({ compacted: 1, tailEvents: 6, hoursDeleted: 0, pending: 0 });
    expect(lakeFloor(dir)).toBe(segs[3]);
    rmSync(join(dir, "raw", readdirSync(join(dir, "raw")).sort()[0])); // the raw log's retention pruned segment 0
    expect(readdirSync(markers).sort()).toEqual(segs.slice(0, 3).map(segmentName));
    await c.pass(t0);
    expect(readdirSync(markers).sort()).toEqual(segs.slice(1, 3).map(segmentName));
    expect((await rows(join(dir, "lake", "raw", "*", "*", "*.parquet"))).length).toBe(9); // the lake keeps its events
  });

  test("lake compactor - hours past the retention are deleted", async () => {
    const c = new Compactor({ dataDir: dir, duck: async () => conn, lookup: () => undefined, retentionMs: hour });
    expect((await c.pass(t0 + 2 * hour + 1)).hoursDeleted).toBe(1);
    expect(readdirSync(join(dir, "lake", "raw", "date=2026-01-02"))).toEqual(["hour=11"]);
  });
});

/** One event as the raw zone must hold it. */
interface Expected { ts: number; name: string; series: string; value: number | null; tags: string; props: string | null; id: string | null }

/**
 * Records of two partitions' batches crossing two hour boundaries, with an id
 * on every third event and props on every fifth; returns what each event must
 * read back as. Partition 1's local id 7 is never introduced (the lookup names
 * it), local 8 neither (unknown); partition 0's local 3 names another series
 * from record 4 on.
 */
function writeMixedLog(logDir: string, records: number, perBatch: number, segmentBytesMax: number): Expected[] {
  const log = new RawLog(logDir, { profile: "fast", segmentBytesMax });
  const enc = new Encoder();
  const start = Date.UTC(2026, 0, 3, 8, 43, 0); // hours end inside records and chunks
  const stepMs = Math.ceil((2 * hour) / (records * 2 * perBatch)); // the events span 08:43 to past 10:43
  const named = new Map<string, { key: string; name: string; tags: Record<string, string> }>();
  const out: Expected[] = [];
  let seq = 0;
  for (let r = 0; r < records; r++) {
    const s: Array<[string, string, Record<string, string>, number, number]> = [];
    const b: Array<[number, Uint8Array]> = [];
    const x: Array<[number, number, string | null, Record<string, unknown> | null]> = [];
    for (const p of [0, 1]) {
      const sid = new Uint32Array(perBatch);
      const ts = new Float64Array(perBatch);
      const v = new Float64Array(perBatch);
      for (let i = 0; i < perBatch; i++, seq++) {
        sid[i] = p === 1 && i % 11 === 0 ? 7 + (i % 2) : i % 4;
        ts[i] = start + seq * stepMs;
        v[i] = i % 13 === 0 ? Number.NaN : i % 17 === 0 ? Number.POSITIVE_INFINITY : seq / 4;
        const pk = `${p}:${sid[i]}`;
        const renamed = p === 0 && sid[i] === 3 && r >= 4;
        if ((!named.has(pk) || (renamed && !named.get(pk)!.key.startsWith("moved"))) && !(p === 1 && sid[i] >= 7)) {
          const tags = { host: `h${p}${sid[i]}`, "zone": renamed ? "ü-2" : "eu" };
          const key = `${renamed ? "moved" : "cpu"}{host="${tags.host}",zone="${tags.zone}"}`;
          named.set(pk, { key, name: renamed ? "moved" : "cpu", tags });
          s.push([key, named.get(pk)!.name, tags, p, sid[i]]);
        }
        const id = i % 3 === 0 ? `id-${seq}-✓` : null;
        const props = i % 5 === 0 ? { fw: `v${i % 3}`, n: i, nested: { a: [1, "x\"y"] }, "ключ": null } : null;
        if (id !== null || props !== null) x.push([p, i, id, props]);
        const ser = p === 1 && sid[i] === 7 ? lookedUp : named.get(pk) ?? { key: `unknown:${p}:${sid[i]}`, name: "unknown", tags: {} };
        out.push({ ts: ts[i], name: ser.name, series: ser.key, value: Number.isFinite(v[i]) ? v[i] : null, tags: JSON.stringify(ser.tags), props: props === null ? null : JSON.stringify(props), id });
      }
      b.push([p, encodeEventBatch(new Encoder(), perBatch, sid, ts, v, start).slice()]);
    }
    log.append(ingestRecordFormat, start, encodeIngestRecord(enc, { s, b, x }));
  }
  log.close();
  return out;
}

const lookedUp = { key: 'disk{dev="sda"}', name: "disk", tags: { dev: "sda" } };

describe("lake compactor against a model", () => {
  // Small chunks of two records (one is cut after the record that reaches 100 events): several a pass, some across an hour's end.
  // Then records of 200 events in segments of about 3 records: DuckDB data chunks (2,048 rows) and the extras' fill up more than once.
  test.each([[24, 30, 12_000, 100], [40, 100, 30_000, undefined]])("lake compactor - every event reads back as sent, in the hour file or tail chunk of its own hour, with the raw zone's types (%d records of 2 x %d)", async (records, perBatch, segmentBytesMax, tailChunkRowsMax) => {
    const d = mkdtempSync(join(tmpdir(), "weir-compact-model-"));
    try {
      const expected = writeMixedLog(join(d, "raw"), records, perBatch, segmentBytesMax);
      const c = new Compactor({ dataDir: d, duck: async () => conn, lookup: (p, l) => (p === 1 && l === 7 ? lookedUp : undefined), retentionMs: 3650 * 24 * hour, tailChunkRowsMax });
      const tailOnly = await c.pass(t0); // compacts up to lakeSegmentsPerPassMax segments, the rest into the tail
      for (let i = 0; i < 20 && (await c.pass(t0)).compacted > 0; i++) { /* until only the open segment is left */ }
      expect(tailOnly.compacted).toBeGreaterThan(0);
      const got = (await conn.runAndReadAll(`SELECT ts, name, series, value, to_json(tags)::VARCHAR, props::VARCHAR, id, filename
        FROM read_parquet(['${join(d, "lake", "raw", "*", "*", "*.parquet")}', '${join(d, "lake", "tail", "*.parquet")}'], filename = true, hive_partitioning = false) ORDER BY ts`)).getRowsJS();
      expect(got.map((r) => ({ ts: Number(r[0]), name: r[1], series: r[2], value: r[3], tags: r[4], props: r[5], id: r[6] }))).toEqual(expected);
      for (const r of got) {
        const hourOf = new Date(Number(r[0])).toISOString();
        const file = String(r[7]);
        if (file.includes("/lake/raw/")) expect(file).toContain(`/date=${hourOf.slice(0, 10)}/hour=${hourOf.slice(11, 13)}/`);
        else expect(Number(/-(-?\d+)(?:\.\d+)?\.parquet$/.exec(file)![1])).toBe(Math.floor(Number(r[0]) / hour));
      }
      const types = await conn.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${join(d, "lake", "raw", "*", "*", "*.parquet")}', hive_partitioning = false)`);
      expect(types.getRowsJS().map((r) => [r[0], r[1]])).toEqual(eventColumns.map((col) => [col.name, col.type]));
      expect(readdirSync(join(d, "lake", "tail")).filter((f) => f.endsWith(".parquet")).length).toBeGreaterThan(0);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
