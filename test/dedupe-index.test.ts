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
import { baseSlotsFor, type DedupeBase, DedupeSet, fillBaseSlots } from "../src/actors/dedupe.ts";
import { encodeIngestRecord, ingestRecordFormat } from "../src/actors/ingest-record.ts";
import { SeriesRegistry } from "../src/actors/series-registry.ts";
import { recoverEngineState, type RecoveredState } from "../src/engine/recovery.ts";
import { limits } from "../src/runtime/limits.ts";
import { silentLog } from "../src/runtime/log.ts";
import { openStore } from "../src/storage/db.ts";
import { dedupeIndexFile, DedupeIndexWriter, type IndexRead, readDedupeIndex } from "../src/storage/dedupe-index.ts";
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

/** A chunk as the file holds it, checksummed: `n` entries from `e` (zeros past its length) and `slots` table slots from `slot(i)`. */
function chunkBytes(kind: number, from: number, to: number, e: { hi: Uint32Array; lo: Uint32Array; addedMs: Float64Array }, n: number, slot: (i: number) => number, slots: number): Buffer {
  const body = 32 + 16 * n + 4 * slots;
  const bytes = Buffer.alloc(8 + body);
  const at = 8 + 32;
  bytes.writeUInt32LE(body, 0);
  bytes.writeUInt8(kind, 8);
  bytes.writeDoubleLE(from, 8 + 8);
  bytes.writeDoubleLE(to, 8 + 16);
  bytes.writeUInt32LE(n, 8 + 24);
  bytes.writeUInt32LE(slots, 8 + 28);
  for (let k = 0; k < Math.min(n, e.hi.length); k++) {
    bytes.writeDoubleLE(e.addedMs[k], at + 8 * k);
    bytes.writeUInt32LE(e.hi[k], at + 8 * n + 4 * k);
    bytes.writeUInt32LE(e.lo[k], at + 12 * n + 4 * k);
  }
  for (let i = 0; i < slots; i++) bytes.writeUInt32LE(slot(i), at + 16 * n + 4 * i);
  bytes.writeUInt32LE(Bun.hash.crc32(bytes.subarray(8)) >>> 0, 4);
  return bytes;
}

/** What recovery does with a read: the base in place, then the chunks id by id. */
function loadRead(set: DedupeSet, r: IndexRead, fromMs: number): DedupeSet {
  if (r.base !== null) set.attachBase(r.base, fromMs);
  for (const c of r.chunks) set.addEntries(c, fromMs);
  return set;
}

/** The ids a read holds, base and chunks. */
const idsIn = (r: IndexRead) => (r.base?.hi.length ?? 0) + r.chunks.reduce((n, c) => n + c.hi.length, 0);

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

/** A set's ids as a base: its entries and their table. */
function baseOf(d: DedupeSet): DedupeBase {
  const e = d.entriesBetween(0, d.mark());
  const b = { ...e, slots: new Uint32Array(baseSlotsFor(e.hi.length)) };
  for (let k = 0; k < b.hi.length; k += 1_000) fillBaseSlots(b, k, Math.min(b.hi.length, k + 1_000)); // in slices, as the writer builds it
  return b;
}

describe("dedupe index - a base used in place", () => {
  test("dedupe index - a set with a base attached answers as one the same ids were put back into one by one, across expiry, eviction past idsMax, rollback and a base taken again from it", () => {
    const seed = Number(process.env.SEED ?? Date.now() % 100_000);
    let x = seed;
    const rand = () => (x = (Math.imul(x, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32;
    const horizonMs = 2_000;
    const live = new DedupeSet(horizonMs, 3_000);
    let now = 0;
    const step = (d: DedupeSet[], ids: string[]) => {
      now += Math.floor(rand() * 4); // 0 to 3 ms: equal times too
      const rollback = rand() < 0.01;
      const marks = d.map((s) => s.mark());
      const answers: boolean[][] = d.map(() => []);
      for (const id of ids) {
        d.forEach((s, j) => answers[j].push(s.has(id, now)));
        d.forEach((s, j) => { if (!answers[j].at(-1)) s.add(id, now); });
      }
      if (rollback) d.forEach((s, j) => s.rollbackTo(marks[j])); // a refused group
      return answers;
    };
    // Busy phases pass idsMax within the horizon (the oldest evicted), quiet ones let ids expire.
    const idsAt = (i: number) => Array.from({ length: Math.floor(rand() * (Math.floor(i / 1_500) % 2 === 0 ? 9 : 2)) }, () => `e-${Math.floor(rand() * 40_000)}`);
    let expiredSome = false;
    for (let i = 0; i < 3_000; i++) step([live], idsAt(i));
    live.has("", now); // the restart's clock: what expired by now goes (a quiet step called nothing)
    const fromMs = now - horizonMs + 1; // the ids live still holds: added + horizon > now
    const attached = new DedupeSet(horizonMs, 3_000);
    expect(attached.attachBase(baseOf(live), fromMs)).toBe(live.size);
    const oneByOne = new DedupeSet(horizonMs, 3_000);
    oneByOne.addEntries(live.entriesBetween(0, live.mark()), fromMs);
    let again: DedupeSet | null = null;
    const sets = [live, attached, oneByOne];
    for (let i = 0; i < 12_000; i++) {
      const a = step(again === null ? sets : [...sets, again], idsAt(i));
      if (a.some((y) => JSON.stringify(y) !== JSON.stringify(a[0]))) throw new Error(`seed ${seed}: answers differ at step ${i}: ${JSON.stringify(a)}`);
      expect(new Set([...sets, ...(again ? [again] : [])].map((s) => s.size)).size).toBe(1);
      expiredSome ||= attached.size < 2_000;
      if (i === 2_000) { // a base taken from a set that has one: base and FIFO in one chain
        for (const d of sets) d.has("", now);
        again = new DedupeSet(horizonMs, 3_000);
        again.attachBase(baseOf(attached), now - horizonMs + 1);
      }
    }
    expect(attached.evicted).toBe(oneByOne.evicted);
    expect({ evicted: attached.evicted > 0, expiredSome }).toEqual({ evicted: true, expiredSome: true }); // both ways out were taken
    const tail = (d: DedupeSet) => d.entriesBetween(0, d.mark());
    expect(tail(attached)).toEqual(tail(oneByOne));
    expect(tail(again!)).toEqual(tail(oneByOne));
  });

  test("dedupe index - a base that expires leaves the set, and its ids can be taken again", () => {
    const d = new DedupeSet(1_000);
    const src = new DedupeSet(1_000);
    for (let i = 0; i < 100; i++) src.add(`b-${i}`, i);
    d.attachBase(baseOf(src), 0);
    expect([d.size, d.has("b-0", 500), d.has("b-99", 500)]).toEqual([100, true, true]);
    d.add("n-0", 600);
    expect([d.has("b-0", 1_000), d.has("b-1", 1_000), d.size]).toEqual([false, true, 100]); // b-0 expired at 1,000
    d.add("b-0", 1_001); // taken again, now in the set's own table
    expect([d.has("b-0", 1_500), d.has("b-99", 1_500), d.size]).toEqual([true, false, 2]);
    expect(d.entriesBetween(0, d.mark())).toEqual({ hi: expect.any(Uint32Array), lo: expect.any(Uint32Array), addedMs: new Float64Array([600, 1_001]) });
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
  test("dedupe index - a new base at least every dedupeIndexBaseMs, used in place at start-up: only the deltas after it are put back one by one", async () => {
    await inFreshDir(async (dir) => {
      const raw = join(dir, "raw");
      const log = new RawLog(raw, { profile: "fast" });
      const set = new DedupeSet(windowMs);
      let clock = 0;
      const w = new DedupeIndexWriter(raw, set, { nowMs: () => clock });
      const enc = new Encoder();
      const ids: Array<{ id: string; recvMs: number }> = [];
      const kinds: string[] = [];
      for (let k = 0; k < 120; k++) { // as the engine: one record a second, a write after each
        const recvMs = t0 + k * 1000;
        clock = k * 1000;
        const x = Array.from({ length: 5 }, (_, j) => [0, j, `id-${k}-${j}`, null] as [number, number, string, null]);
        log.append(ingestRecordFormat, recvMs, encodeIngestRecord(enc, { s: [], b: [], x }));
        for (const row of x) {
          set.add(row[2], recvMs);
          ids.push({ id: row[2], recvMs });
        }
        kinds.push(w.write({ mark: set.mark(), pos: log.end })?.kind ?? "none");
        await w.settled();
      }
      w.close();
      log.close();
      const every = limits.dedupeIndexBaseMs / 1000;
      expect(kinds.map((k, i) => (k === "base" ? i : -1)).filter((i) => i >= 0)).toEqual(Array.from({ length: Math.ceil(120 / every) }, (_, j) => j * every));
      const nowMs = t0 + 130_000;
      const got = recover(dir, nowMs);
      const lastBase = Math.floor(119 / every) * every; // its record and those before it, inside the window, are in place
      expect(got.r).toMatchObject({ dedupeIndex: "loaded", idsInPlace: (lastBase - 70 + 1) * 5, idsFromIndex: 50 * 5, idsFromLog: 0, recordsRead: 0 });
      expect(got.r.idsFromIndex - got.r.idsInPlace).toBeLessThanOrEqual(every * 5);
      expect(answers(got.set, ids, nowMs)).toEqual(ids.map((x) => x.recvMs + windowMs > nowMs));
    });
  });

  test("dedupe index - a base whose table has no empty slot (whole, checksummed) is corrupt: the full re-read, not an endless probe", async () => {
    await inFreshDir(async (dir) => {
      const { ids } = await buildLog(dir, 100);
      const n = 20;
      const slots = 16; // a power of two, but not more than the entries
      const bytes = chunkBytes(3, 0, 10, new DedupeSet(1).entriesBetween(0, 0), n, (i) => 1 + (i % n), slots);
      writeFileSync(join(dir, "raw", dedupeIndexFile), bytes);
      const r = readDedupeIndex(join(dir, "raw"), 1_000_000);
      expect({ state: r.state, detail: r.detail }).toEqual({ state: "corrupt", detail: `bad table size at byte 0 of ${bytes.byteLength}` });
      const nowMs = t0 + 130_000;
      const got = recover(dir, nowMs);
      expect(got.r).toMatchObject({ dedupeIndex: "corrupt", idsFromIndex: 0, recordsRead: 50 });
      expect(answers(got.set, ids, nowMs)).toEqual(ids.map((x) => x.recvMs + windowMs > nowMs));
    });
  });

  test("dedupe index - a base without a table (an earlier version's file) is read id by id, with the deltas after it", async () => {
    await inFreshDir(async (dir) => {
      const { ids, positions } = await buildLog(dir, 100); // a table base, then deltas
      const path = join(dir, "raw", dedupeIndexFile);
      const r = readDedupeIndex(join(dir, "raw"), positions[119]);
      const listBase = chunkBytes(1, 0, positions[10], r.base!, r.base!.hi.length, () => 0, 0);
      const deltas = readFileSync(path).subarray(8 + readFileSync(path).readUInt32LE(0));
      writeFileSync(path, Buffer.concat([listBase, deltas]));
      const nowMs = t0 + 130_000;
      const got = recover(dir, nowMs);
      expect(got.r).toMatchObject({ dedupeIndex: "loaded", dedupeIndexPos: positions[100], idsInPlace: 0, recordsRead: 20 });
      expect(answers(got.set, ids, nowMs)).toEqual(ids.map((x) => x.recvMs + windowMs > nowMs));
    });
  });

  test("dedupe index - a flipped byte in a base's table is caught by its checksum: the full re-read", async () => {
    await inFreshDir(async (dir) => {
      const { ids } = await buildLog(dir, 100);
      const path = join(dir, "raw", dedupeIndexFile);
      const bytes = readFileSync(path);
      const body = bytes.readUInt32LE(0);
      bytes[8 + body - 3] ^= 0x01; // the base's last table slot
      writeFileSync(path, bytes);
      const nowMs = t0 + 130_000;
      const got = recover(dir, nowMs);
      expect(got.r).toMatchObject({ dedupeIndex: "corrupt", idsFromIndex: 0, recordsRead: 50 });
      expect(answers(got.set, ids, nowMs)).toEqual(ids.map((x) => x.recvMs + windowMs > nowMs));
    });
  });

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
      const back = loadRead(new DedupeSet(1_000), r, 199 * 100 - 1_000);
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
      expect({ state: r.state, to: r.to, ids: idsIn(r) }).toEqual({ state: "loaded", to: 300, ids: 3 });
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
      expect(w.logTail(40)).toMatch(/"idsFromLog":0,"idsFromIndex":300,"idsInPlace":(200|300),"dedupeIndex":"loaded"/); // a base in place (a and b, or all: as the first tick came before the stop or not)
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

  test("dedupe index - kill -9 mid-write of a base (WEIR_CRASH_AT): the old file stays whole and is loaded, every re-sent id refused", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "weir-dedupe-index-kill-base-"));
    const index = join(dataDir, "raw", dedupeIndexFile);
    const runs: WeirProcess[] = [];
    try {
      runs.push(await WeirProcess.start({ dataDir, env: { WEIR_LATENESS: "60s" } }));
      const ts = Date.now() - 5_000;
      expect((await post(runs[0].url, batch("a", ts))).status).toBe(202);
      expect(await runs[0].term()).toBe(0); // the stop writes the index up to the log's end
      const before = readFileSync(index);
      // A new process's first write is a base, at its first tick: killed halfway through writing it beside the file
      // (before or after /ready, as the machine goes).
      try {
        const doomed = await WeirProcess.start({ dataDir, env: { WEIR_LATENESS: "60s" } }, { WEIR_CRASH_AT: "dedupe-index.mid-write:1" });
        runs.push(doomed);
        await waitFor(() => !doomed.alive, 10_000, "the kill in the middle of the base");
        expect(doomed.logTail(5)).toContain("crash point dedupe-index.mid-write reached (1): SIGKILL");
      } catch (e) {
        expect((e as Error).message).toContain("crash point dedupe-index.mid-write reached (1): SIGKILL");
      }
      expect(existsSync(`${index}.tmp`)).toBe(true); // the half-written base
      expect(readFileSync(index).equals(before)).toBe(true);
      const w = await WeirProcess.start({ dataDir, env: { WEIR_LATENESS: "60s" } });
      runs.push(w);
      expect((await w.scrape())!.get("weir_dedupe_index_fallbacks_total")).toBe(0);
      expect(w.logTail(20)).toContain(`"idsFromLog":0,"idsFromIndex":100,`);
      expect((await post(w.url, batch("a", ts))).body).toEqual({ accepted: 100, rejected: 0, errors: [] });
      expect((await post(w.url, batch("c", ts))).body).toEqual({ accepted: 100, rejected: 0, errors: [] }); // then taken
      expect((await w.scrape())!.get("weir_events_duplicate_total")).toBe(100);
    } catch (e) {
      console.error(runs.at(-1)?.logTail(80));
      throw e;
    } finally {
      for (const r of runs) await r.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});
