import { describe, expect, test } from "bun:test";
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, unlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  RawLog, RawLogError, rawLogPositionBefore, readRawLog, truncateRawLogAt, verifyRawLog, type DurabilityProfile, type RawLogRepair,
} from "../src/storage/rawlog.ts";
import { withTmpfs } from "./helpers/tmpfs.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const freshDir = () => mkdtempSync(join(tmpdir(), "weir-raw-"));
const seg0 = "raw-0000000000000000.log";
const segName = (start: number) => `raw-${String(start).padStart(16, "0")}.log`;
const hint = "stop weir and run 'bun run weir repair-log' to cut the log there, losing what follows";
const recordBytes = (payloadBytes: number) => 17 + payloadBytes;

/** Writes "first", "second", "third" to a new log in `dir`; returns the position of "second". */
function writeThree(dir: string): number {
  const log = new RawLog(dir, { profile: "fast" });
  log.append(1, 1, bytes("first"));
  const p1 = log.append(1, 2, bytes("second"));
  log.append(1, 3, bytes("third"));
  log.close();
  return p1;
}

/** What `fn` threw, so a test can assert every field of it. */
function thrown(fn: () => unknown): RawLogError {
  try {
    fn();
  } catch (err) {
    if (err instanceof RawLogError) return err;
    throw err;
  }
  throw new Error("expected a RawLogError, nothing was thrown");
}

describe("rawlog - append and read", () => {
  test("rawlog - records read back in order with format, receive time and positions; reopen appends", () => {
    const dir = freshDir();
    const log = new RawLog(dir, { profile: "fast" });
    const p0 = log.append(1, 1000, bytes('{"name":"a"}'));
    const p1 = log.append(3, 2000, bytes("xyz"));
    log.close();
    const again = new RawLog(dir, { profile: "durable" });
    const p2 = again.append(2, 3000, bytes("line\n"));
    again.close();
    const recs = [...readRawLog(dir)];
    expect(recs.map((r) => [r.position, r.format, r.recvMs, text(r.payload)])).toEqual([
      [p0, 1, 1000, '{"name":"a"}'], [p1, 3, 2000, "xyz"], [p2, 2, 3000, "line\n"],
    ]);
    expect([p0, p1, p2]).toEqual([0, 29, 49]);
    expect(recs[0].next).toBe(p1);
    expect([...readRawLog(dir, p1)].map((r) => r.position)).toEqual([p1, p2]);
    expect([...readRawLog(dir, 0, p2)].map((r) => r.position)).toEqual([p0, p1]);
    expect([...readRawLog(dir, p1, p1)]).toEqual([]);
    expect(verifyRawLog(dir)).toEqual({ segments: 1, records: 3, bytes: 71, firstRecvMs: 1000, lastRecvMs: 3000 });
  });

  test("rawlog - an empty log verifies as nothing and starts at position 0", () => {
    const dir = freshDir();
    const log = new RawLog(dir, { profile: "durable" });
    expect([log.end, log.firstPosition()]).toEqual([0, 0]);
    expect(verifyRawLog(dir)).toEqual({ segments: 1, records: 0, bytes: 0 });
    log.close();
  });
});

describe("rawlog - profiles", () => {
  test("rawlog - durable syncs the segment before append returns, once per record; fast never does", () => {
    for (const profile of ["fast", "durable"] as DurabilityProfile[]) {
      const dir = freshDir();
      const synced: number[] = [];
      const log = new RawLog(dir, { profile, fsync: () => synced.push(statSync(join(dir, seg0)).size) });
      log.append(1, 1, bytes("first"));
      log.append(1, 2, bytes("second"));
      log.close();
      // The file size at each sync: the record it acknowledges is entirely written by then.
      expect({ profile, synced }).toEqual({ profile, synced: profile === "durable" ? [recordBytes(5), recordBytes(5) + recordBytes(6)] : [] });
    }
  });

  test("rawlog - durable: a failed fsync (EIO) is a failed append: cut back, not readable, the next append takes its place", () => {
    const dir = freshDir();
    let failNext = false;
    const log = new RawLog(dir, {
      profile: "durable",
      fsync: () => {
        if (failNext) throw Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" });
      },
    });
    const p0 = log.append(1, 1, bytes("kept"));
    failNext = true;
    const err = thrown(() => log.append(1, 2, bytes("lost")));
    expect([err.name, err.errno]).toEqual(["RawLogError", "EIO"]);
    failNext = false;
    const p1 = log.append(1, 3, bytes("next"));
    log.close();
    expect(p1).toBe(recordBytes(4));
    expect([...readRawLog(dir)].map((r) => [r.position, text(r.payload)])).toEqual([[p0, "kept"], [p1, "next"]]);
  });
});

describe("rawlog - group commit (sync)", () => {
  test("rawlog - appends without sync become durable with one sync; a failed sync cuts them all off", () => {
    const dir = freshDir();
    let fail = false;
    let syncs = 0;
    const log = new RawLog(dir, {
      profile: "durable",
      fsync: () => {
        syncs++;
        if (fail) throw Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" });
      },
    });
    const p0 = log.append(1, 1, bytes("a"), false);
    log.append(1, 2, bytes("b"), false);
    log.sync(p0);
    expect(syncs).toBe(1);
    const p2 = log.append(1, 3, bytes("c"), false);
    log.append(1, 4, bytes("d"), false);
    fail = true;
    const err = thrown(() => log.sync(p2));
    expect([err.errno, err.position, log.end]).toEqual(["EIO", p2, p2]);
    fail = false;
    const p3 = log.append(1, 5, bytes("e"), false);
    log.sync(p3);
    log.close();
    expect([...readRawLog(dir)].map((r) => text(r.payload))).toEqual(["a", "b", "e"]);
  });

  test("rawlog - a failed sync of appends that began in an earlier segment leaves the log refusing appends", () => {
    const dir = freshDir();
    let fail = false;
    const log = new RawLog(dir, {
      profile: "durable", segmentMs: 1000,
      fsync: () => {
        if (fail) throw Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" });
      },
    });
    const p0 = log.append(1, 1000, bytes("a"), false);
    log.append(1, 2500, bytes("b"), false); // rolls: the old segment is synced as it closes
    fail = true;
    expect(thrown(() => log.sync(p0)).message).toMatch(/^raw log unusable: an fsync failed .* for appends that began before raw-\d+\.log; restart weir$/);
    fail = false;
    expect(thrown(() => log.append(1, 2600, bytes("c"))).message).toMatch(/^raw log unusable/);
    log.close();
  });
});

describe("rawlog - recovery at open", () => {
  const tails: [string, (whole: Buffer) => Buffer, number][] = [
    ["an incomplete final record", (w) => w.subarray(0, w.length - 3), recordBytes(6) - 3],
    ["a final record whose checksum fails", (w) => { const b = Buffer.from(w); b[b.length - 1] ^= 0xff; return b; }, recordBytes(6)],
    ["a final record cut inside its header", (w) => w.subarray(0, w.length - recordBytes(6) + 5), 5],
    ["a zero-filled tail after a power loss", (w) => Buffer.concat([w.subarray(0, w.length - recordBytes(6)), Buffer.alloc(4096)]), 4096],
  ];
  for (const [what, damage, bytesDropped] of tails) {
    test(`rawlog - ${what} is cut at open and reported; acknowledged records survive`, () => {
      const dir = freshDir();
      const log = new RawLog(dir, { profile: "fast" });
      log.append(1, 1, bytes("first"));
      const p1 = log.append(1, 2, bytes("second"));
      log.close();
      const file = join(dir, seg0);
      writeFileSync(file, damage(readFileSync(file)));
      expect(thrown(() => verifyRawLog(dir)).position).toBe(p1);
      const repairs: RawLogRepair[] = [];
      const reopened = new RawLog(dir, { profile: "fast", onRepair: (r) => repairs.push(r) });
      expect(repairs).toEqual([{ segment: seg0, position: p1, bytesDropped }]);
      expect(statSync(file).size).toBe(p1);
      expect(reopened.append(2, 3, bytes("third"))).toBe(p1);
      reopened.close();
      expect([...readRawLog(dir)].map((r) => text(r.payload))).toEqual(["first", "third"]);
      expect(verifyRawLog(dir)).toEqual({ segments: 1, records: 2, bytes: 2 * 17 + 10, firstRecvMs: 1, lastRecvMs: 3 });
    });
  }

  test("rawlog - a clean log reopens without a repair", () => {
    const dir = freshDir();
    new RawLog(dir, { profile: "fast" }).append(1, 1, bytes("only"));
    const repairs: RawLogRepair[] = [];
    new RawLog(dir, { profile: "fast", onRepair: (r) => repairs.push(r) }).close();
    expect(repairs).toEqual([]);
  });

  test("rawlog - a checksum mismatch mid-segment is refused at open, by verify and by read, naming segment and position", () => {
    const dir = freshDir();
    const p1 = writeThree(dir);
    const file = join(dir, seg0);
    const damaged = readFileSync(file);
    damaged[p1 + 17] ^= 0xff; // first payload byte of "second"
    writeFileSync(file, damaged);
    const message = `raw log corrupt: checksum mismatch at position ${p1} in ${seg0}; ${hint}`;
    const atOpen = thrown(() => new RawLog(dir, { profile: "fast", onRepair: () => { throw new Error("must not repair"); } }));
    expect([atOpen.name, atOpen.message, atOpen.segment, atOpen.position]).toEqual(["RawLogError", message, seg0, p1]);
    expect(thrown(() => verifyRawLog(dir)).message).toBe(message);
    expect(thrown(() => [...readRawLog(dir)]).message).toBe(message);
    expect(readFileSync(file).equals(damaged)).toBe(true);
  });

  test("rawlog - read in pieces smaller than a record (the buffer grows for it), the records and their payloads are the same as read whole; a torn tail is still seen", () => {
    const dir = freshDir();
    const log = new RawLog(dir, { profile: "fast", segmentBytesMax: 4096 });
    const payloads = Array.from({ length: 60 }, (_, i) => bytes(`${i}:`.padEnd(1 + ((i * 37) % 300), String.fromCharCode(97 + (i % 26)))));
    for (const [i, p] of payloads.entries()) log.append(1 + (i % 3), 1_000 + i, p);
    log.close();
    const whole = [...readRawLog(dir)].map((r) => [r.position, r.next, r.format, r.recvMs, text(r.payload)]);
    expect(whole.map((r) => r[4])).toEqual(payloads.map(text));
    for (const chunk of [20, 64, 333]) {
      const pieces = [...readRawLog(dir, 0, Number.POSITIVE_INFINITY, chunk)].map((r) => [r.position, r.next, r.format, r.recvMs, text(r.payload)]);
      expect([chunk, pieces]).toEqual([chunk, whole]);
      const from = whole[17][0] as number;
      expect([...readRawLog(dir, from, whole[40][0] as number, chunk)].map((r) => r.position)).toEqual(whole.slice(17, 40).map((r) => r[0] as number));
    }
    const last = readdirSync(dir).sort().at(-1)!;
    appendFileSync(join(dir, last), Buffer.from([200, 0, 0, 0, 1, 2])); // a record cut short after its length
    expect(() => [...readRawLog(dir, 0, Number.POSITIVE_INFINITY, 20)]).toThrow(/^raw log corrupt: torn record at position \d+ in raw-\d{16}\.log/);
  });

  test("rawlog - a flipped length in the last record but one is corruption, not a torn tail", () => {
    const dir = freshDir();
    const p1 = writeThree(dir);
    const file = join(dir, seg0);
    const damaged = readFileSync(file);
    damaged.writeUInt32LE(1_000_000, p1); // now claims to run past the end of the file
    writeFileSync(file, damaged);
    const message = `raw log corrupt: torn record at position ${p1} in ${seg0}; ${hint}`;
    expect(thrown(() => new RawLog(dir, { profile: "fast" })).message).toBe(message);
    expect(statSync(file).size).toBe(damaged.length);
  });

  test("rawlog - a torn record at the end of an earlier segment is reported by verify, not repaired at open", () => {
    const dir = freshDir();
    const log = new RawLog(dir, { profile: "fast", segmentBytesMax: 1 });
    log.append(1, 1, bytes("a"));
    const p1 = log.append(1, 2, bytes("b"));
    log.append(1, 3, bytes("c"));
    log.close();
    expect(readdirSync(dir).sort()).toEqual([seg0, segName(p1), segName(2 * p1)]);
    writeFileSync(join(dir, segName(p1)), readFileSync(join(dir, segName(p1))).subarray(0, 10));
    new RawLog(dir, { profile: "fast", onRepair: () => { throw new Error("must not repair"); } }).close();
    expect(thrown(() => verifyRawLog(dir)).message).toBe(`raw log corrupt: torn record at position ${p1} in ${segName(p1)}; ${hint}`);
  });

  test("rawlog - a missing middle segment is reported as a gap", () => {
    const dir = freshDir();
    const log = new RawLog(dir, { profile: "fast", segmentBytesMax: 1 });
    log.append(1, 1, bytes("a"));
    const p1 = log.append(1, 2, bytes("b"));
    const p2 = log.append(1, 3, bytes("c"));
    log.close();
    unlinkSync(join(dir, segName(p1)));
    const message = `raw log corrupt: gap at position ${p1}: ${seg0} ends there but the next segment is ${segName(p2)}; ${hint}`;
    expect(thrown(() => verifyRawLog(dir)).message).toBe(message);
    expect(thrown(() => [...readRawLog(dir)]).message).toBe(message);
  });
});

describe("rawlog - truncateRawLogAt", () => {
  /** Three segments of two 1-byte records each; returns the record positions. */
  function threeSegments(dir: string): number[] {
    const log = new RawLog(dir, { profile: "fast", segmentBytesMax: 2 * recordBytes(1) });
    const positions = ["a", "b", "c", "d", "e", "f"].map((s, i) => log.append(1, i, bytes(s)));
    log.close();
    return positions;
  }

  test("rawlog - truncateRawLogAt cuts at a corrupt record's position, deleting later segments", () => {
    const dir = freshDir();
    const p = threeSegments(dir);
    expect(p).toEqual([0, 18, 36, 54, 72, 90]);
    const file = join(dir, segName(36));
    const damaged = readFileSync(file);
    damaged[recordBytes(1) + 17] ^= 0xff; // payload of "d" at 54
    writeFileSync(file, damaged);
    const err = thrown(() => verifyRawLog(dir));
    expect([err.position, err.segment]).toEqual([54, segName(36)]);
    expect(truncateRawLogAt(dir, err.position!)).toEqual({ segmentsDeleted: 1, bytesDropped: 3 * recordBytes(1) });
    expect(readdirSync(dir).sort()).toEqual([seg0, segName(36)]);
    expect(verifyRawLog(dir)).toEqual({ segments: 2, records: 3, bytes: 54, firstRecvMs: 0, lastRecvMs: 2 });
    const log = new RawLog(dir, { profile: "fast", onRepair: () => { throw new Error("must not repair"); } });
    expect(log.end).toBe(54);
    expect(log.append(1, 9, bytes("g"))).toBe(54);
    log.close();
    expect([...readRawLog(dir)].map((r) => text(r.payload))).toEqual(["a", "b", "c", "g"]);
  });

  test("rawlog - truncateRawLogAt at a segment's start empties it and keeps positions", () => {
    const dir = freshDir();
    threeSegments(dir);
    expect(truncateRawLogAt(dir, 36)).toEqual({ segmentsDeleted: 1, bytesDropped: 4 * recordBytes(1) });
    expect(readdirSync(dir).sort()).toEqual([seg0, segName(36)]);
    expect(statSync(join(dir, segName(36))).size).toBe(0);
    expect(new RawLog(dir, { profile: "fast" }).end).toBe(36);
  });

  test("rawlog - truncateRawLogAt refuses positions that are not record boundaries or not in the log", () => {
    const dir = freshDir();
    threeSegments(dir);
    const cut = (position: number) => thrown(() => truncateRawLogAt(dir, position)).message;
    expect(cut(40)).toBe(`cannot cut the raw log at position 40: inside the record at position 36 in ${segName(36)}`);
    expect(cut(200)).toBe(`cannot cut the raw log at position 200: ${segName(72)} ends at position 108`);
    expect(cut(-1)).toBe("cannot cut the raw log at position -1: the oldest retained position is 0");
    const file = join(dir, segName(36));
    const damaged = readFileSync(file);
    damaged[17] ^= 0xff; // payload of "c" at 36
    writeFileSync(file, damaged);
    expect(cut(54)).toBe(`cannot cut the raw log at position 54: checksum mismatch earlier, at position 36 in ${segName(36)}; cut there`);
    expect(readdirSync(dir).length).toBe(3);
  });
});

describe("rawlog - segments by size and time", () => {
  test("rawlog - a segment rolls when its first record is segmentMs older than the next", () => {
    const dir = freshDir();
    const log = new RawLog(dir, { profile: "durable", segmentMs: 1000 });
    expect([5000, 5999, 6000, 6999, 7000].map((t) => log.append(1, t, bytes("x")))).toEqual([0, 18, 36, 54, 72]);
    log.close();
    expect(readdirSync(dir).sort()).toEqual([seg0, segName(36), segName(72)]);
    expect(verifyRawLog(dir)).toEqual({ segments: 3, records: 5, bytes: 90, firstRecvMs: 5000, lastRecvMs: 7000 });
    expect([...readRawLog(dir, 18, 72)].map((r) => [r.position, r.recvMs])).toEqual([[18, 5999], [36, 6000], [54, 6999]]);
  });

  test("rawlog - rawLogPositionBefore: the start of the last segment whose first record is no newer than the time", () => {
    const dir = freshDir();
    const log = new RawLog(dir, { profile: "fast", segmentMs: 1000 });
    expect([5000, 5999, 6000, 6999, 7000].map((t) => log.append(1, t, bytes("x")))).toEqual([0, 18, 36, 54, 72]);
    log.close();
    expect([4999, 5000, 5999, 6000, 6500, 7000, 99_999].map((t) => rawLogPositionBefore(dir, t))).toEqual([0, 0, 0, 36, 36, 72, 72]);
    // Every record at or after the time is read from there: none is skipped.
    for (const t of [5500, 6500, 7000]) {
      expect([...readRawLog(dir, rawLogPositionBefore(dir, t))].filter((r) => r.recvMs >= t).length).toBe([5000, 5999, 6000, 6999, 7000].filter((x) => x >= t).length);
    }
  });

  test("rawlog - a reopened segment keeps its age from its first record", () => {
    const dir = freshDir();
    new RawLog(dir, { profile: "fast", segmentMs: 1000 }).append(1, 5000, bytes("x"));
    const log = new RawLog(dir, { profile: "fast", segmentMs: 1000 });
    expect([log.append(1, 5999, bytes("y")), log.append(1, 6000, bytes("z"))]).toEqual([18, 36]);
    log.close();
    expect(readdirSync(dir).sort()).toEqual([seg0, segName(36)]);
  });

  test("rawlog - a segment rolls once it reaches segmentBytesMax", () => {
    const dir = freshDir();
    const log = new RawLog(dir, { profile: "fast", segmentBytesMax: 40 });
    expect([1, 2, 3, 4].map((t) => log.append(1, t, bytes("0123456789")))).toEqual([0, 27, 54, 81]);
    log.close();
    expect(readdirSync(dir).sort()).toEqual([seg0, segName(54)]);
  });
});

describe("rawlog - prune", () => {
  /** One record per segment, received at 0, 1000, 2000, 3000; returns the segment starts. */
  function fourSegments(dir: string): { log: RawLog; starts: number[] } {
    const log = new RawLog(dir, { profile: "fast", segmentMs: 1000 });
    const starts = [0, 1000, 2000, 3000].map((t) => log.append(1, t, bytes("x")));
    return { log, starts };
  }

  test("rawlog - prune deletes whole old segments, stopping at keepFrom and at newer records", () => {
    const dir = freshDir();
    const { log, starts } = fourSegments(dir);
    expect(starts).toEqual([0, 18, 36, 54]);
    expect(log.prune({ olderThanMs: 2500, keepFrom: 17 })).toBe(0); // segment 0 ends at 18, past keepFrom
    expect(log.prune({ olderThanMs: 2500, keepFrom: 18 })).toBe(1);
    expect(log.firstPosition()).toBe(18);
    expect(log.prune({ olderThanMs: 2500, keepFrom: 1_000_000 })).toBe(1); // segment 2 holds a record from 2000..3000
    expect(log.prune({ olderThanMs: 2000, keepFrom: 1_000_000 })).toBe(0);
    expect(log.firstPosition()).toBe(36);
    expect(readdirSync(dir).sort()).toEqual([segName(36), segName(54)]);
    expect([...readRawLog(dir)].map((r) => [r.position, r.recvMs])).toEqual([[36, 2000], [54, 3000]]);
    log.close();
  });

  test("rawlog - the byte budget drops the oldest segments before their retention, but never one a replay or the dedupe window needs, and says what is left over", () => {
    const dir = freshDir();
    const { log } = fourSegments(dir); // 4 segments of 18 bytes: 72
    const none = { olderThanMs: 0 }; // nothing is past retention here
    expect(log.pruneBy({ ...none, keepFrom: 1_000_000, bytesMax: 72 })).toEqual({ segments: 0, retentionBytes: 0, budgetBytes: 0, overBytes: 0, heldDropped: 0 });
    expect(log.pruneBy({ ...none, keepFrom: 18, bytesMax: 36 })).toEqual({ segments: 1, retentionBytes: 0, budgetBytes: 18, overBytes: 18, heldDropped: 0 }); // replay needs 18 on
    expect(log.pruneBy({ ...none, keepFrom: 1_000_000, bytesMax: 36, neededAfterMs: 1500 })).toEqual({ segments: 0, retentionBytes: 0, budgetBytes: 0, overBytes: 18, heldDropped: 0 }); // segment 18 holds a record of 1000..2000, ids the window needs
    expect(log.pruneBy({ ...none, keepFrom: 1_000_000, bytesMax: 36, neededAfterMs: 2500 })).toEqual({ segments: 1, retentionBytes: 0, budgetBytes: 18, overBytes: 0, heldDropped: 0 });
    expect([...readRawLog(dir)].map((r) => r.position)).toEqual([36, 54]);
    expect(log.pruneBy({ olderThanMs: 3500, keepFrom: 1_000_000, bytesMax: 1 })).toEqual({ segments: 1, retentionBytes: 18, budgetBytes: 0, overBytes: 17, heldDropped: 0 }); // past retention first; the current segment always stays
    log.close();
  });

  test("rawlog - a segment the lake holds outlives its retention, not the budget, and is counted when the budget takes it", () => {
    const dir = freshDir();
    const { log } = fourSegments(dir); // segments 0, 18, 36, 54 of 18 bytes, records received at 0, 1000, 2000, 3000
    const all = { olderThanMs: Number.MAX_SAFE_INTEGER, keepFrom: 1_000_000 };
    expect(log.pruneBy({ ...all, holdFrom: 18 })).toEqual({ segments: 1, retentionBytes: 18, budgetBytes: 0, overBytes: 0, heldDropped: 0 }); // 0 is in the lake: it goes
    expect([...readRawLog(dir)].map((r) => r.position)).toEqual([18, 36, 54]);
    expect(log.pruneBy({ ...all, holdFrom: 18 })).toEqual({ segments: 0, retentionBytes: 0, budgetBytes: 0, overBytes: 0, heldDropped: 0 }); // 18 is not: it stays past retention
    expect(log.pruneBy({ ...all, holdFrom: 18, bytesMax: 36 })).toEqual({ segments: 1, retentionBytes: 0, budgetBytes: 18, overBytes: 0, heldDropped: 1 }); // the budget takes it anyway
    expect(log.pruneBy({ ...all, holdFrom: 54 })).toEqual({ segments: 1, retentionBytes: 18, budgetBytes: 0, overBytes: 0, heldDropped: 0 }); // the lake caught up to 54
    expect([...readRawLog(dir)].map((r) => r.position)).toEqual([54]);
    log.close();
  });

  test("rawlog - prune never deletes the current segment", () => {
    const dir = freshDir();
    const { log } = fourSegments(dir);
    expect(log.prune({ olderThanMs: Number.MAX_SAFE_INTEGER, keepFrom: Number.MAX_SAFE_INTEGER })).toBe(3);
    expect([log.firstPosition(), log.end]).toEqual([54, 72]);
    expect(log.append(1, 3001, bytes("y"))).toBe(72);
    log.close();
    expect(new RawLog(dir, { profile: "fast" }).firstPosition()).toBe(54);
    expect(verifyRawLog(dir)).toEqual({ segments: 1, records: 2, bytes: 36, firstRecvMs: 3000, lastRecvMs: 3001 });
  });

  test("rawlog - prune dates a segment followed by an empty one by its file mtime", () => {
    const dir = freshDir();
    new RawLog(dir, { profile: "fast" }).append(1, 1, bytes("x"));
    writeFileSync(join(dir, segName(18)), ""); // a roll whose first append failed
    utimesSync(join(dir, seg0), 1000, 1000); // seconds
    const log = new RawLog(dir, { profile: "fast" });
    expect(log.prune({ olderThanMs: 1_000_000, keepFrom: 18 })).toBe(0);
    expect(log.prune({ olderThanMs: 1_000_001, keepFrom: 18 })).toBe(1);
    expect(readdirSync(dir)).toEqual([segName(18)]);
    log.close();
  });
});

describe("rawlog - append failure on a full disk", () => {
  const mib = 1024 * 1024;
  const payloadBytes = 48 * 1024;
  const payload = (i: number) => new Uint8Array(payloadBytes).fill(i & 0xff);
  const recordsPerSegment = Math.ceil(mib / recordBytes(payloadBytes)); // 22: a segment rolls once it reaches 1 MiB

  for (const profile of ["fast", "durable"] as DurabilityProfile[]) {
    test(`rawlog - ${profile}: ENOSPC leaves every acknowledged record readable, and appends resume once space returns`, () => {
      withTmpfs("4m", (mnt) => {
        const filler = join(mnt, "filler");
        writeFileSync(filler, new Uint8Array(mib));
        const dir = join(mnt, "raw");
        mkdirSync(dir);
        const log = new RawLog(dir, { profile, segmentBytesMax: mib });
        try {
          const acked: [number, number, Buffer][] = [];
          let failure: RawLogError | undefined;
          for (let i = 0; i < 4 * mib / payloadBytes && failure === undefined; i++) {
            try {
              acked.push([log.append(2, 1000 + i, payload(i)), 1000 + i, Buffer.from(payload(i))]);
            } catch (err) {
              failure = err as RawLogError;
            }
          }
          const end = acked.length * recordBytes(payloadBytes);
          expect(failure).toBeInstanceOf(RawLogError);
          // The failing append went to the segment its position falls in (a roll needs no data blocks).
          const segments = Math.floor(acked.length / recordsPerSegment) + 1;
          const segment = segName((segments - 1) * recordsPerSegment * recordBytes(payloadBytes));
          expect([failure!.name, failure!.errno, failure!.position, failure!.segment]).toEqual(["RawLogError", "ENOSPC", end, segment]);
          expect(failure!.message).toBe(`raw log append failed at position ${end} in ${segment}: ${(failure!.cause as Error).message}`);
          expect(log.end).toBe(end);
          expect(() => log.append(2, 5000, payload(0))).toThrow(RawLogError);
          const readBack = () => [...readRawLog(dir)].map((r): [number, number, Buffer] => [r.position, r.recvMs, Buffer.from(r.payload)]);
          expect(readBack()).toEqual(acked);
          expect(verifyRawLog(dir)).toEqual({ segments, records: acked.length, bytes: end, firstRecvMs: 1000, lastRecvMs: 999 + acked.length });

          unlinkSync(filler);
          const next = log.append(2, 6000, payload(7));
          expect(next).toBe(end);
          acked.push([next, 6000, Buffer.from(payload(7))]);
          expect(readBack()).toEqual(acked);
          log.close();
          const repairs: RawLogRepair[] = [];
          new RawLog(dir, { profile, segmentBytesMax: mib, onRepair: (r) => repairs.push(r) }).close();
          expect(repairs).toEqual([]);
        } finally {
          log.close();
        }
      });
    });
  }
});
