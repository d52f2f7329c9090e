/**
 * The raw-log record holds each accepted event once: its batch row (series,
 * ts, value) plus its props when it has some. A raw-zone reader gets every
 * event back, props included, from the record alone; version-1 records
 * (which also kept the body) are still read.
 */
import { describe, expect, test } from "bun:test";
import { Decoder, Encoder } from "@msgpack/msgpack";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeIngestRecord, encodeIngestRecord, IngestRecordError, ingestRecordFormat } from "../src/actors/ingest-record.ts";
import { BatchColumns, decodeMessage, type EventBatchMessage } from "../src/runtime/codec.ts";
import { readRawLog } from "../src/storage/rawlog.ts";
import { postEvents, startTestWeir } from "./helpers/weir.ts";

describe("ingest record", () => {
  test("ingest record - version 2 round-trips; version 1 reads with no props; anything else is an IngestRecordError", () => {
    const enc = new Encoder();
    const dec = new Decoder();
    const r = { s: [["a", "a", {}, 0, 0]] as never, b: [[0, new Uint8Array([1, 2])]] as Array<[number, Uint8Array]>, x: [[0, 0, null, { k: "v" }], [0, 1, "id-1", null]] as never };
    expect(decodeIngestRecord(dec, encodeIngestRecord(enc, r))).toEqual({ ...r, ids: ["id-1"] });
    const v1 = enc.encode({ v: 1, f: 1, raw: new Uint8Array([123]), s: [], ids: ["a", "b"], b: [] });
    expect(decodeIngestRecord(dec, v1)).toEqual({ s: [], b: [], x: [], ids: ["a", "b"] });
    expect(() => decodeIngestRecord(dec, enc.encode({ v: 3, s: [], ids: [], b: [] }))).toThrow(IngestRecordError);
  });

  test("ingest record - every accepted event is in the log once, with its id and props, and the body is not", async () => {
    const dir = mkdtempSync(join(tmpdir(), "weir-record-"));
    const w = await startTestWeir({}, dir);
    const ts = Date.now() - 5000;
    const sent = [
      { name: "shop.view", value: 1, ts, tags: { user: "u1" }, props: { email: "a@example.com", n: [1, 2] } },
      { name: "shop.view", value: 2, ts: ts + 1, tags: { user: "u2" }, id: "evt-2" },
      { name: "shop.buy", value: 30, ts: ts + 2, tags: { user: "u1" }, props: { sku: "X" } },
      { name: "shop.view", value: 3, ts: ts + 3, tags: { user: "u1" } },
    ];
    expect((await postEvents(w.url, JSON.stringify(sent))).status).toBe(202);
    await w.stop();
    const dec = new Decoder();
    const columns = new BatchColumns(16);
    const seen: object[] = [];
    const records = [...readRawLog(join(w.dataDir, "raw"))].filter((r) => r.format === ingestRecordFormat);
    expect(records.length).toBe(1);
    const raw = new Decoder().decode(records[0].payload) as Record<string, unknown>;
    expect(Object.keys(raw).sort()).toEqual(["b", "s", "v", "x"]);
    expect(decodeIngestRecord(dec, records[0].payload).ids).toEqual(["evt-2"]);
    const rec = decodeIngestRecord(dec, records[0].payload);
    const series = new Map(rec.s.map(([key, name, tags, p, local]) => [`${p}/${local}`, { key, name, tags }]));
    const extras = new Map(rec.x.map(([p, i, id, props]) => [`${p}/${i}`, { id, props }]));
    const index = [0, 0];
    for (const [p, bytes] of rec.b) {
      const b = columns.view(decodeMessage(dec, bytes) as EventBatchMessage);
      for (let i = 0; i < b.n; i++, index[p]++) {
        const s = series.get(`${p}/${b.sid[i]}`)!;
        const x = extras.get(`${p}/${index[p]}`);
        seen.push({ name: s.name, value: b.value[i], ts: b.ts[i], tags: s.tags, ...(x?.id ? { id: x.id } : {}), ...(x?.props ? { props: x.props } : {}) });
      }
    }
    const byTs = (a: { ts: number }, b: { ts: number }) => a.ts - b.ts;
    expect((seen as Array<{ ts: number }>).sort(byTs)).toEqual(sent.sort(byTs));
    rmSync(dir, { recursive: true, force: true });
  });
});
