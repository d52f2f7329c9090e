/**
 * The de-duplication index (src/storage/dedupe-index.ts): start-up loads the
 * ids up to the raw-log position the index covers and reads the log only
 * after it. Checked against the full re-read of the window it replaces:
 * the same has() answer for every id ever sent, at the same clock, with the
 * index whole, torn, corrupt or covering records the log no longer holds.
 */
import { describe, expect, test } from "bun:test";
import { Encoder } from "@msgpack/msgpack";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DedupeSet } from "../src/actors/dedupe.ts";
import { encodeIngestRecord, ingestRecordFormat } from "../src/actors/ingest-record.ts";
import { SeriesRegistry } from "../src/actors/series-registry.ts";
import { recoverEngineState, type RecoveredState } from "../src/engine/recovery.ts";
import { silentLog } from "../src/runtime/log.ts";
import { openStore } from "../src/storage/db.ts";
import { dedupeIndexFile, DedupeIndexWriter, readDedupeIndex } from "../src/storage/dedupe-index.ts";
import { RawLog, readRawLog, truncateRawLogAt } from "../src/storage/rawlog.ts";
import { WeirProcess } from "./ledger/process.ts";
import { waitFor } from "./helpers/wait.ts";

const windowMs = 60_000;

/** Runs `fn` in a new temporary directory, removed after. */
async function inFreshDir(fn: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "weir-dedupe-index-"));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const t0 = 1_800_000_000_000;

describe("dedupe index - the set's entries", () => {
  test("dedupe index - entries taken out and added to a new set give the same answers as adding the ids again, across eviction, rollback and expiry", () => {
    const live = new DedupeSet(10_000, 3_000);
    const replayed = new DedupeSet(10_000, 3_000);
    const ids: string[] = [];
    let mark = 0;
    const moved = new DedupeSet(10_000, 3_000);
    for (let i = 0; i < 20_000; i++) {
      const now = i * 2; // 500 ids a second of clock: past idsMax (3,000) within the horizon, so some go early
      const id = `e-${(i * 7919) % 12_000}`;
      ids.push(id);
      if (live.has(id, now)) continue;
      if (i % 97 === 0) {
        const m = live.mark(); // a refused group: its ids are forgotten, and never exported
        live.add(id, now);
        live.rollbackTo(m);
        continue;
      }
      live.add(id, now);
      replayed.add(id, now);
      if (i % 1_000 === 999) {
        moved.addEntries(live.entriesBetween(mark, live.mark()), now - 10_000);
        mark = live.mark();
      }
    }
    moved.addEntries(live.entriesBetween(mark, live.mark()), 40_000 - 10_000);
    const at = 40_000;
    const answers = (d: DedupeSet) => ids.map((id) => d.has(id, at));
    expect(answers(moved)).toEqual(answers(replayed));
    expect(answers(live)).toEqual(answers(replayed));
    expect(moved.size).toBe(replayed.size);
    expect(replayed.size).toBeGreaterThan(0);
  });
});

/** A raw log of 120 records one second apart, 5 ids each, with an index written after every 10th record up to `indexedTo`. */
async function buildLog(dir: string, indexedTo: number): Promise<{ ids: Array<{ id: string; recvMs: number }>; positions: number[] }> {
  const log = new RawLog(join(dir, "raw"), { profile: "fast" });
  const set = new DedupeSet(windowMs);
  const w = new DedupeIndexWriter(join(dir, "raw"), set);
  const enc = new Encoder();
  const ids: Array<{ id: string; recvMs: number }> = [];
  const positions: number[] = [];
  for (let k = 0; k < 120; k++) {
    const recvMs = t0 + k * 1000;
    const x = Array.from({ length: 5 }, (_, j) => [0, j, `id-${k}-${j}`, null] as [number, number, string, null]);
    positions.push(log.append(ingestRecordFormat, recvMs, encodeIngestRecord(enc, { s: [], b: [], x })));
    for (const row of x) {
      set.add(row[2], recvMs);
      ids.push({ id: row[2], recvMs });
    }
    if ((k + 1) % 10 === 0 && k + 1 <= indexedTo) {
      w.write({ mark: set.mark(), pos: log.end });
      await w.settled(); // the first write is a base, written asynchronously
    }
  }
  w.close();
  log.close();
  return { ids, positions };
}

/**
 * Start-up recovery into a fresh set at `nowMs`, as the engine runs it,
 * with both partitions checkpointed at the log's last record, so records
 * are read for their ids only.
 */
function recover(dir: string, nowMs: number): { set: DedupeSet; r: RecoveredState } {
  const log = new RawLog(join(dir, "raw"), { profile: "fast" });
  const rawEnd = log.end;
  log.close();
  let last = 0;
  for (const rec of readRawLog(join(dir, "raw"), 0, rawEnd)) last = rec.position;
  const db = openStore(join(dir, "weir.db"));
  const set = new DedupeSet(windowMs);
  try {
    for (const p of [0, 1]) db.query("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, x'', '{}', 0)").run(p, last);
    const r = recoverEngineState({
      db, addSeries: () => {}, registry: new SeriesRegistry(2, 1000), dedupe: set, rawDir: join(dir, "raw"), rawEnd,
      checkpointConfig: "{}", dedupeWindowMs: windowMs, log: silentLog, nowMs,
    });
    return { set, r };
  } finally {
    db.close();
  }
}

/** Each id's answer at `nowMs`. */
const answers = (set: DedupeSet, ids: ReadonlyArray<{ id: string }>, nowMs: number) => ids.map((x) => set.has(x.id, nowMs));

describe("dedupe index - start-up with the index gives the full re-read's decisions", () => {
  const nowMs = t0 + 130_000; // the window holds records 70..119
  const expected = (ids: ReadonlyArray<{ recvMs: number }>) => ids.map((x) => x.recvMs + windowMs > nowMs);

  test("dedupe index - whole: ids in the window refused, ids past it accepted, only the log after the covered position read", async () => {
    await inFreshDir(async (dir) => {
      const { ids, positions } = await buildLog(dir, 100);
      const withIndex = recover(dir, nowMs);
      expect(withIndex.r).toMatchObject({ dedupeIndex: "loaded", dedupeIndexPos: positions[100], idsFromIndex: 30 * 5, idsFromLog: 20 * 5, recordsRead: 20 });
      expect(answers(withIndex.set, ids, nowMs)).toEqual(expected(ids));
      rmSync(join(dir, "raw", dedupeIndexFile));
      const full = recover(dir, nowMs);
      expect(full.r).toMatchObject({ dedupeIndex: "missing", idsFromIndex: 0, idsFromLog: 50 * 5, recordsRead: 50 });
      expect(answers(full.set, ids, nowMs)).toEqual(expected(ids));
      expect(withIndex.set.size).toBe(full.set.size);
    });
  });

  test("dedupe index - torn last chunk: its valid part is used and the log read after it, same decisions", async () => {
    await inFreshDir(async (dir) => {
      const { ids, positions } = await buildLog(dir, 100);
      const path = join(dir, "raw", dedupeIndexFile);
      truncateSync(path, statSync(path).size - 30); // a kill in the middle of the last delta's write
      const got = recover(dir, nowMs);
      expect(got.r).toMatchObject({ dedupeIndex: "torn", dedupeIndexPos: positions[90], recordsRead: 30 });
      expect(answers(got.set, ids, nowMs)).toEqual(expected(ids));
    });
  });

  test("dedupe index - a corrupt base (a flipped byte, an empty file, garbage) falls back to the full re-read, same decisions", async () => {
    await inFreshDir(async (dir) => {
      const { ids } = await buildLog(dir, 100);
      const path = join(dir, "raw", dedupeIndexFile);
      const bytes = readFileSync(path);
      bytes[60] ^= 0x40; // inside the base's entries
      writeFileSync(path, bytes);
      const flipped = recover(dir, nowMs);
      expect(flipped.r).toMatchObject({ dedupeIndex: "corrupt", idsFromIndex: 0, recordsRead: 50 });
      expect(answers(flipped.set, ids, nowMs)).toEqual(expected(ids));
      writeFileSync(path, "");
      expect(recover(dir, nowMs).r).toMatchObject({ dedupeIndex: "corrupt", idsFromIndex: 0, recordsRead: 50 });
      writeFileSync(path, "not an index at all, what a bad disk left behind".repeat(10));
      const garbage = recover(dir, nowMs);
      expect(garbage.r).toMatchObject({ dedupeIndex: "corrupt", idsFromIndex: 0, recordsRead: 50 });
      expect(answers(garbage.set, ids, nowMs)).toEqual(expected(ids));
    });
  });

  test("dedupe index - chunks past the log's end (the log cut) are not used and are cut off the file: the ids of records gone are not duplicates", async () => {
    await inFreshDir(async (dir) => {
      const { ids, positions } = await buildLog(dir, 120);
      truncateRawLogAt(join(dir, "raw"), positions[95]); // records 95..119 are gone: their re-sends must be taken
      const kept = ids.filter((_, i) => i < 95 * 5);
      const got = recover(dir, nowMs);
      expect(got.r).toMatchObject({ dedupeIndex: "torn", dedupeIndexPos: positions[90], recordsRead: 5 });
      expect(answers(got.set, ids, nowMs)).toEqual([...expected(kept), ...ids.slice(95 * 5).map(() => false)]);
      expect(readDedupeIndex(join(dir, "raw"), positions[95]).state).toBe("loaded"); // the chunks past the end went
      // New records take the cut positions: the index says nothing of them.
      const log = new RawLog(join(dir, "raw"), { profile: "fast" });
      log.append(ingestRecordFormat, t0 + 121_000, encodeIngestRecord(new Encoder(), { s: [], b: [], x: [[0, 0, "new-1", null]] }));
      log.append(ingestRecordFormat, t0 + 122_000, encodeIngestRecord(new Encoder(), { s: [], b: [], x: [[0, 0, "new-2", null]] }));
      log.close();
      const after = recover(dir, nowMs);
      expect(answers(after.set, [...ids, { id: "new-1" }, { id: "new-2" }], nowMs)).toEqual([...expected(kept), ...ids.slice(95 * 5).map(() => false), true, true]);
    });
  });

  test("dedupe index - a base past the log's end (a log that lost its tail) falls back to the full re-read", async () => {
    await inFreshDir(async (dir) => {
      const { ids, positions } = await buildLog(dir, 120);
      const path = join(dir, "raw", dedupeIndexFile);
      const base = readFileSync(path).subarray(0, readFileSync(path).readUInt32LE(0) + 8);
      writeFileSync(path, base); // only the base, covering records 0..9
      truncateRawLogAt(join(dir, "raw"), positions[5]);
      const got = recover(dir, t0 + 30_000);
      expect(got.r).toMatchObject({ dedupeIndex: "ahead", idsFromIndex: 0, recordsRead: 5 });
      expect(answers(got.set, ids, t0 + 30_000)).toEqual(ids.map((_, i) => i < 25));
      expect(existsSync(path)).toBe(false); // the next start finds none, not the same fault again
    });
  });
});

describe("dedupe index - the writer", () => {
  test("dedupe index - deltas follow a base; past the slack a new base replaces the file, the same ids readable", async () => {
    await inFreshDir(async (dir) => {
      const set = new DedupeSet(1_000);
      const w = new DedupeIndexWriter(dir, set);
      const kinds: string[] = [];
      let pos = 0;
      for (let i = 0; i < 200; i++) {
        for (let j = 0; j < 500; j++) set.add(`w-${i}-${j}`, i * 100); // 5,000 ids a second, a 1 s horizon: most expire
        pos += 1000;
        kinds.push(w.write({ mark: set.mark(), pos })?.kind ?? "none");
        await w.settled();
      }
      expect(w.write({ mark: set.mark(), pos })).toBeNull(); // nothing moved
      w.close();
      expect(kinds[0]).toBe("base");
      expect(kinds.filter((k) => k === "base").length).toBeGreaterThan(1); // the expired ids were dropped by a rewrite
      expect(statSync(join(dir, dedupeIndexFile)).size).toBeLessThan(3 * 16 * 5_500 + 2 * 1024 * 1024);
      const r = readDedupeIndex(dir, pos);
      expect({ state: r.state, to: r.to }).toEqual({ state: "loaded", to: pos });
      const back = new DedupeSet(1_000);
      for (const c of r.chunks) back.addEntries(c, 199 * 100 - 1_000);
      expect(back.size).toBe(set.size);
      expect(back.has("w-199-0", 19_950)).toBe(true);
      expect(back.has("w-185-0", 19_950)).toBe(false);
    });
  });

  test("dedupe index - a write that fails is reported and leaves a torn tail at worst; the next write replaces the file with a base", async () => {
    await inFreshDir(async (dir) => {
      const set = new DedupeSet(60_000);
      let fail = false;
      const errors: string[] = [];
      const w = new DedupeIndexWriter(dir, set, { midWrite: () => { if (fail) throw new Error("EIO (test)"); }, onError: (e) => errors.push(e.message) });
      set.add("a", 1);
      w.write({ mark: set.mark(), pos: 100 });
      await w.settled();
      set.add("b", 2);
      fail = true;
      expect(w.write({ mark: set.mark(), pos: 200 })?.kind).toBe("delta");
      expect(errors).toEqual(["EIO (test)"]);
      expect(readDedupeIndex(dir, 1_000)).toMatchObject({ state: "torn", to: 100 });
      expect(w.write({ mark: set.mark(), pos: 200 })?.kind).toBe("base"); // the failed one's ids are in it
      await w.settled();
      expect(errors).toEqual(["EIO (test)", "EIO (test)"]); // a base fails alike, the old file stays
      expect(readDedupeIndex(dir, 1_000)).toMatchObject({ state: "torn", to: 100 });
      fail = false;
      set.add("c", 3);
      expect(w.write({ mark: set.mark(), pos: 300 })?.kind).toBe("base");
      expect(w.write({ mark: set.mark(), pos: 300 })).toBeNull(); // the base is being written: later writes wait for it
      await w.settled();
      const r = readDedupeIndex(dir, 1_000);
      expect({ state: r.state, to: r.to, ids: r.chunks.reduce((n, c) => n + c.hi.length, 0) }).toEqual({ state: "loaded", to: 300, ids: 3 });
      appendFileSync(join(dir, dedupeIndexFile), new Uint8Array(12)); // a few stray bytes after it: a torn chunk
      expect(readDedupeIndex(dir, 1_000)).toMatchObject({ state: "torn", to: 300 });
      w.close();
    });
  });
});

describe("dedupe index - weir killed in the middle of writing it", () => {
  /** 100 events with ids `<prefix>-0..99` over 4 series. */
  const batch = (prefix: string, ts: number) =>
    JSON.stringify(Array.from({ length: 100 }, (_, i) => ({ name: `ix.s${i % 4}`, value: i, ts: ts + i, id: `${prefix}-${i}` })));
  const post = async (url: string, body: string) => {
    const res = await fetch(`${url}/api/v1/events`, { method: "POST", body, headers: { "content-type": "application/json" } });
    return { status: res.status, body: await res.json() };
  };

  test("dedupe index - kill -9 mid-write of a delta (WEIR_CRASH_AT): the restart uses the base, reads the log after it, refuses every re-sent id and takes new ones; a SIGTERM restart loads it whole", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "weir-dedupe-index-kill-"));
    const index = join(dataDir, "raw", dedupeIndexFile);
    // The 1st write is the base (the first tick), the 2nd the delta holding batch a, the 3rd (batch b's) is killed halfway.
    const w = await WeirProcess.start({ dataDir, env: { WEIR_LATENESS: "60s" } }, { WEIR_CRASH_AT: "dedupe-index.mid-write:3" });
    let crashed = false;
    w.onCrash = () => { crashed = true; };
    try {
      const ts = Date.now() - 5_000;
      await waitFor(() => existsSync(index), 10_000, "the index's base");
      const baseBytes = statSync(index).size;
      expect((await post(w.url, batch("a", ts))).status).toBe(202);
      await waitFor(() => statSync(index).size > baseBytes, 10_000, "the delta holding batch a");
      expect((await post(w.url, batch("b", ts + 200))).status).toBe(202);
      await waitFor(() => crashed, 10_000, "the kill in the middle of batch b's delta");
      expect(w.logTail(5)).toContain("crash point dedupe-index.mid-write reached (3): SIGKILL");

      await w.restart();
      let m = (await w.scrape())!;
      expect(m.get("weir_dedupe_index_fallbacks_total")).toBe(1); // torn: its base and batch a's delta were used
      expect(w.logTail(40)).toContain("de-duplication index torn");
      // Every re-sent id is a duplicate (a's from the index, b's from the log after it); new ids are taken.
      expect((await post(w.url, batch("a", ts))).body).toEqual({ accepted: 100, rejected: 0, errors: [] });
      expect((await post(w.url, batch("b", ts + 200))).body).toEqual({ accepted: 100, rejected: 0, errors: [] });
      expect((await post(w.url, batch("c", ts + 400))).status).toBe(202);
      m = (await w.scrape())!;
      expect({ duplicates: m.get("weir_events_duplicate_total"), ingested: m.get("weir_events_ingested_total") }).toEqual({ duplicates: 200, ingested: 100 });

      expect(await w.term()).toBe(0); // the graceful stop writes the index up to the log's end
      await w.restart();
      m = (await w.scrape())!;
      expect(m.get("weir_dedupe_index_fallbacks_total")).toBe(0);
      expect(w.logTail(40)).toContain(`"idsFromLog":0,"idsFromIndex":300,"dedupeIndex":"loaded"`);
      for (const p of ["a", "b", "c"]) expect((await post(w.url, batch(p, ts))).body).toEqual({ accepted: 100, rejected: 0, errors: [] });
      m = (await w.scrape())!;
      expect({ duplicates: m.get("weir_events_duplicate_total"), ingested: m.get("weir_events_ingested_total") }).toEqual({ duplicates: 300, ingested: 0 });
    } catch (e) {
      console.error(w.logTail(80));
      throw e;
    } finally {
      await w.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});
