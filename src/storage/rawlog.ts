/**
 * The raw zone: an append-only log of every accepted request body, written
 * before the request is acknowledged. Records are
 *
 *   [u32 length of rest][u32 crc32 of rest][u8 format][f64 receive ms][payload]
 *
 * in segment files `raw-<first position>.log`, rolled when a segment reaches
 * segmentBytesMax or is segmentMs old (by its first record's receive time).
 * A position is a global byte offset (segment start + offset), so replay can
 * start from any checkpoint's position. Profile `fast` writes with write(2)
 * (survives a process crash); `durable` adds fsync before returning
 * (survives power loss).
 *
 * A failed append is cut back off the file, so the log on disk only ever
 * holds acknowledged records plus, after a crash mid-write, one torn tail,
 * which opening the log cuts away. Anything else that fails its checks is
 * corruption: it is reported, never repaired behind the operator's back.
 *
 * @example
 *   const log = new RawLog("./data/raw", { profile: "fast" });
 *   const pos = log.append(1, Date.now(), body);
 *   for (const r of readRawLog("./data/raw", 0)) replay(r);
 */
import { WeirError } from "../runtime/errors.ts";
import { strict as assert } from "node:assert";
import {
  closeSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, statSync, unlinkSync,
  writeSync, writevSync,
} from "node:fs";
import { join } from "node:path";

export const rawLogLimits = {
  segmentBytesMax: 64 * 1024 * 1024, // default roll size; a segment passes it by at most one record
  segmentMsDefault: 3600 * 1000, // default roll age, counted from the segment's first record's receive time
  headerBytes: 17, // u32 length + u32 crc32 + u8 format + f64 receive ms
  bodyBytesMin: 9, // the least the length field can count: format + receive ms
  payloadBytesMax: 0xffff_ffff - 9, // the length field is a u32
  writeCallsMax: 4, // a regular file writes short only when it fills up, and then the next call fails
  segmentNameDigits: 16,
} as const;

assert(rawLogLimits.headerBytes === 8 + rawLogLimits.bodyBytesMin);
assert(Number.MAX_SAFE_INTEGER < 10 ** rawLogLimits.segmentNameDigits, "every position fits a segment name");

const repairHint = "stop weir and run 'bun run weir repair-log' to cut the log there, losing what follows";

export type DurabilityProfile = "fast" | "durable";

export interface RawLogErrorDetails { code?: string; position?: number; segment?: string; cause?: unknown }

/**
 * The raw log's one error. A failed append carries the system error's `code`
 * (ENOSPC, EIO…) and left the log as it was: answer 503 and let the client
 * retry. Corruption carries `segment` and `position` and needs an operator.
 *
 * @example
 *   try { log.append(1, now, body); } catch (e) { if (e instanceof RawLogError) return c.json({ error: e.message }, 503); throw e; }
 */
export class RawLogError extends WeirError {
  override name = "RawLogError";
  /** The operating system's error code (ENOSPC, EIO, …), when one caused it. */
  readonly errno?: string;
  readonly position?: number;
  readonly segment?: string;

  constructor(message: string, details: RawLogErrorDetails = {}) {
    super("raw_log", message, details.cause === undefined ? undefined : { cause: details.cause });
    this.errno = details.code;
    this.position = details.position;
    this.segment = details.segment;
  }
}

export interface RawRecord { position: number; next: number; format: number; recvMs: number; payload: Uint8Array }

// A type, not an interface, so it passes as a plain record of log fields.
export type RawLogRepair = { segment: string; position: number; bytesDropped: number };

export interface RawLogOptions {
  profile: DurabilityProfile;
  segmentBytesMax?: number;
  segmentMs?: number;
  /** Called when opening the log cut a torn tail (a record whose append never returned). */
  onRepair?: (info: RawLogRepair) => void;
  /** fsync(2) of an appended-to segment (`durable` only); tests pass one that counts or fails. */
  fsync?: (fd: number) => void;
}

export interface RawLogSummary { segments: number; records: number; bytes: number; firstRecvMs?: number; lastRecvMs?: number }

/** Why no valid record starts at an offset. */
type Fault = "torn record" | "checksum mismatch" | "bad record length";

interface SegmentScan { records: number; validBytes: number; firstRecvMs?: number; lastRecvMs?: number; fault?: Fault }

interface SegmentFile { start: number; name: string; path: string; size: number }

const noBytes = new Uint8Array(0);

/** What a prune removed: segments, their bytes by reason (past retention, over the byte budget), and the bytes it could not drop. */
/** `heldDropped`: segments at or past `holdFrom` (the lake had not compacted them) that the budget took anyway. */
export interface RawLogPruned { segments: number; retentionBytes: number; budgetBytes: number; overBytes: number; heldDropped: number }

export class RawLog {
  private fd = -1;
  private segmentStart = 0;
  private segmentBytes = 0;
  private segmentFirstRecvMs: number | undefined;
  private oldestStart = 0;
  private dirSyncPending = false;
  private broken: RawLogError | undefined;
  private readonly header = Buffer.alloc(rawLogLimits.headerBytes);
  private readonly headerBody = this.header.subarray(8); // format + receive ms: the part the checksum covers
  // Reused by every append so the hot path allocates no array; [1] holds the payload only during the call.
  private readonly iov: Uint8Array[] = [this.header, noBytes];
  private readonly segmentBytesMax: number;
  private readonly segmentMs: number;

  /** Opens (or creates) the log in `dir`, cutting a torn tail off its last segment; throws RawLogError on corruption. */
  constructor(private readonly dir: string, private readonly opts: RawLogOptions) {
    this.segmentBytesMax = opts.segmentBytesMax ?? rawLogLimits.segmentBytesMax;
    this.segmentMs = opts.segmentMs ?? rawLogLimits.segmentMsDefault;
    assert(this.segmentBytesMax > 0 && this.segmentMs > 0, "raw log segment bounds must be positive");
    mkdirSync(dir, { recursive: true });
    const segs = listSegments(dir);
    if (segs.length === 0) this.startSegment(0);
    else this.reopen(segs[segs.length - 1]);
    this.oldestStart = segs[0] ?? 0;
  }

  /** The position the next record will get. */
  get end(): number {
    return this.segmentStart + this.segmentBytes;
  }

  /** The start of the oldest retained segment: replay from an earlier position would miss pruned records. */
  firstPosition(): number {
    return this.oldestStart;
  }

  /**
   * Appends one record; returns its position. On failure (ENOSPC, EIO, short
   * write) the segment is cut back to where it was and a RawLogError with the
   * system error's code is thrown: nothing was acknowledged, the log stays valid.
   *
   * @example
   *   const pos = log.append(formatCode.json, Date.now(), body); // then answer 202
   */
  append(format: number, recvMs: number, payload: Uint8Array, sync = this.opts.profile === "durable"): number {
    assert(this.fd >= 0, "raw log append after close");
    assert(payload.byteLength <= rawLogLimits.payloadBytesMax, "raw log payload longer than a u32 length allows");
    if (this.broken !== undefined) throw this.broken;
    if (this.shouldRoll(recvMs)) this.startSegment(this.end);
    const position = this.end;
    this.encodeHeader(format, recvMs, payload);
    try {
      if (this.dirSyncPending) syncDir(this.dir);
      this.dirSyncPending = false;
      this.writeRecord(payload);
      if (sync) (this.opts.fsync ?? fsyncSync)(this.fd);
    } catch (err) {
      this.cutBack(err, position);
    } finally {
      this.iov[1] = noBytes;
    }
    this.segmentBytes += rawLogLimits.headerBytes + payload.byteLength;
    this.segmentFirstRecvMs ??= recvMs;
    return position;
  }

  /**
   * Deletes the oldest whole segments whose every record was received before
   * `olderThanMs` and which end at or before `keepFrom` (the oldest position
   * replay still needs). Never deletes the current segment. Returns how many went.
   *
   * @example
   *   log.prune({ olderThanMs: Date.now() - retentionMs, keepFrom: oldestCheckpointPosition });
   */
  prune(opts: { olderThanMs: number; keepFrom: number }): number {
    return this.pruneBy(opts).segments;
  }

  /**
   * prune(), and with `bytesMax` also older segments while the log holds
   * more than `bytesMax` bytes, down to the oldest one a replay or the
   * de-duplication window still needs (`keepFrom`; `neededAfterMs`: a
   * segment holding a record received after it stays). A segment at or
   * past `holdFrom` (one the lake has not compacted yet) outlives its
   * retention, but not the budget: a lake that lags is never the reason the
   * disk fills. Returns what went, by reason, and the bytes still over the
   * budget (what it could not drop).
   *
   * @example log.pruneBy({ olderThanMs, keepFrom, bytesMax: 10 * 2 ** 30, neededAfterMs: now - dedupeWindowMs, holdFrom: lakeFloor })
   */
  pruneBy(opts: { olderThanMs: number; keepFrom: number; bytesMax?: number; neededAfterMs?: number; holdFrom?: number }): RawLogPruned {
    const segs = listSegments(this.dir);
    const sizes = segs.map((s) => statSync(segmentPath(this.dir, s)).size);
    let total = sizes.reduce((a, b) => a + b, 0);
    const out: RawLogPruned = { segments: 0, retentionBytes: 0, budgetBytes: 0, overBytes: 0, heldDropped: 0 };
    // Only a prefix goes, so the retained segments stay contiguous.
    for (let i = 0; i + 1 < segs.length; i++) {
      const next = segs[i + 1];
      if (next > opts.keepFrom) break;
      const path = segmentPath(this.dir, segs[i]);
      // Receive times grow, so the next segment's first one bounds this segment's last.
      const newestMs = firstRecvMsOf(segmentPath(this.dir, next)) ?? statSync(path).mtimeMs;
      const held = opts.holdFrom !== undefined && next > opts.holdFrom; // some of its records are not in the lake yet
      const old = newestMs < opts.olderThanMs && !held;
      const over = opts.bytesMax !== undefined && total > opts.bytesMax && newestMs < (opts.neededAfterMs ?? Infinity);
      if (!old && !over) break;
      if (held) out.heldDropped++;
      unlinkSync(path);
      this.oldestStart = next;
      out.segments++;
      if (old) out.retentionBytes += sizes[i];
      else out.budgetBytes += sizes[i];
      total -= sizes[i];
    }
    if (opts.bytesMax !== undefined && total > opts.bytesMax) out.overBytes = total - opts.bytesMax;
    return out;
  }

  /**
   * For group commit (`durable`): appends made with `sync = false` since
   * position `from` become durable together with one fsync. On failure they
   * are cut off (when they are all in the current segment; else every later
   * append throws too, as after a failed cut) and a RawLogError is thrown:
   * none of them may be acknowledged.
   *
   * @example
   *   const first = log.append(f, now, a, false); log.append(f, now, b, false);
   *   log.sync(first); // then acknowledge both
   */
  sync(from: number): void {
    assert(this.fd >= 0, "raw log sync after close");
    if (this.broken !== undefined) throw this.broken;
    try {
      (this.opts.fsync ?? fsyncSync)(this.fd);
    } catch (err) {
      if (from < this.segmentStart) {
        const segment = segmentName(this.segmentStart);
        this.broken = new RawLogError(
          `raw log unusable: an fsync failed (${describe(err)}) for appends that began before ${segment}; restart weir`,
          { code: errnoCode(err), position: from, segment, cause: err },
        );
        throw this.broken;
      }
      this.segmentBytes = from - this.segmentStart;
      this.cutBack(err, from);
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  private shouldRoll(recvMs: number): boolean {
    if (this.segmentBytes >= this.segmentBytesMax) return true;
    return this.segmentFirstRecvMs !== undefined && recvMs - this.segmentFirstRecvMs >= this.segmentMs;
  }

  private encodeHeader(format: number, recvMs: number, payload: Uint8Array): void {
    const h = this.header;
    h.writeUInt8(format, 8);
    h.writeDoubleLE(recvMs, 9);
    const crc = Bun.hash.crc32(payload, Bun.hash.crc32(this.headerBody));
    h.writeUInt32LE(rawLogLimits.bodyBytesMin + payload.byteLength, 0);
    h.writeUInt32LE(crc >>> 0, 4);
  }

  private writeRecord(payload: Uint8Array): void {
    const { headerBytes, writeCallsMax } = rawLogLimits;
    const total = headerBytes + payload.byteLength;
    this.iov[1] = payload;
    let done = writevSync(this.fd, this.iov);
    for (let calls = 1; done < total; calls++) {
      if (calls >= writeCallsMax) throw new RawLogError(`short write: ${done} of ${total} bytes`);
      done += done < headerBytes
        ? writevSync(this.fd, [this.header.subarray(done), payload])
        : writeSync(this.fd, payload, done - headerBytes);
    }
  }

  /** Cuts a failed append off the segment and throws; if even that fails, every later append throws too. */
  private cutBack(cause: unknown, position: number): never {
    const code = errnoCode(cause);
    const segment = segmentName(this.segmentStart);
    try {
      ftruncateSync(this.fd, this.segmentBytes);
    } catch (err) {
      this.broken = new RawLogError(
        `raw log unusable: a failed append (${describe(cause)}) could not be cut off ${segment} (${describe(err)}); restart weir, which cuts the torn tail`,
        { code, position, segment, cause: err },
      );
      throw this.broken;
    }
    throw new RawLogError(`raw log append failed at position ${position} in ${segment}: ${describe(cause)}`, { code, position, segment, cause });
  }

  private startSegment(start: number): void {
    if (this.fd >= 0 && this.opts.profile === "durable") {
      // Group commit syncs only the segment it appends to: what the old one got since its last sync goes now.
      try {
        (this.opts.fsync ?? fsyncSync)(this.fd);
      } catch (err) {
        const segment = segmentName(this.segmentStart);
        this.broken = new RawLogError(`raw log unusable: the fsync closing ${segment} failed (${describe(err)}); restart weir`,
          { code: errnoCode(err), position: this.end, segment, cause: err });
        throw this.broken;
      }
    }
    let fd: number;
    try {
      fd = openSync(segmentPath(this.dir, start), "a");
    } catch (err) {
      const segment = segmentName(start);
      throw new RawLogError(`raw log could not start ${segment}: ${describe(err)}`, { code: errnoCode(err), position: start, segment, cause: err });
    }
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = fd;
    this.segmentStart = start;
    this.segmentBytes = 0;
    this.segmentFirstRecvMs = undefined;
    // A new file's name is durable only once its directory is synced: done before the first record goes in.
    this.dirSyncPending = this.opts.profile === "durable";
  }

  private reopen(start: number): void {
    const path = segmentPath(this.dir, start);
    const buf = mapSegment(path);
    const scan = scanSegment(buf);
    if (scan.fault !== undefined && validRecordFollows(buf, scan.validBytes)) throw corruptError(scan.fault, start, scan.validBytes);
    this.fd = openSync(path, "a");
    this.segmentStart = start;
    this.segmentBytes = scan.validBytes;
    this.segmentFirstRecvMs = scan.firstRecvMs;
    if (scan.fault === undefined) return;
    // A torn tail is a record whose append never returned, so no one was told it was kept.
    ftruncateSync(this.fd, scan.validBytes);
    fsyncSync(this.fd);
    this.opts.onRepair?.({ segment: segmentName(start), position: start + scan.validBytes, bytesDropped: buf.byteLength - scan.validBytes });
  }
}

/**
 * Records at positions from `from` (a record boundary) up to but not
 * including `to`, in order. Segments pruned before `from` are skipped
 * silently (compare with RawLog.firstPosition()); a torn or corrupt record or
 * a gap between segments throws a RawLogError naming the segment and position.
 *
 * Read in pieces of `chunkBytes` (or one record, if longer), never a whole
 * 64 MiB segment at once; a record's `payload` is a view of its piece, which
 * stays alive (and unchanged) as long as the payload is kept.
 *
 * @example
 *   for (const r of readRawLog(dir, checkpoint.rawPosition, log.end)) ingest(r.format, r.recvMs, r.payload);
 */
export function* readRawLog(dir: string, from = 0, to = Number.POSITIVE_INFINITY, chunkBytes = rawLogReadChunkBytes): Generator<RawRecord> {
  let buf = Buffer.allocUnsafe(Math.max(chunkBytes, rawLogLimits.headerBytes));
  for (const seg of contiguousSegments(dir)) {
    if (seg.start >= to) return;
    if (seg.start + seg.size <= from) continue;
    const fd = openSync(seg.path, "r");
    try {
      let pos = Math.max(0, from - seg.start); // the file offset of the next record
      let bufStart = pos; // the file offset of buf[0]
      let have = 0; // bytes of buf read
      // Keeps buf[pos - bufStart ..] and reads until `need` bytes from pos are in, or the file ends; false then.
      const fill = (need: number): boolean => {
        const rel = pos - bufStart;
        if (rel + need <= have) return true;
        // A fresh buffer each time (the unread tail copied over): payloads handed out keep theirs alive, unchanged.
        const next = Buffer.allocUnsafe(Math.max(need, chunkBytes, rawLogLimits.headerBytes));
        buf.copy(next, 0, rel, have);
        buf = next;
        have -= rel;
        bufStart = pos;
        while (have < need) {
          const got = readSync(fd, buf, have, buf.byteLength - have, bufStart + have);
          if (got === 0) return false;
          have += got;
        }
        return true;
      };
      while (seg.start + pos < to) {
        if (!fill(rawLogLimits.headerBytes)) {
          if (have - (pos - bufStart) === 0) break; // the segment's end
          throw corruptError("torn record", seg.start, pos);
        }
        const rest = buf.readUInt32LE(pos - bufStart);
        if (rest >= rawLogLimits.bodyBytesMin && !fill(8 + rest)) throw corruptError("torn record", seg.start, pos);
        const rel = pos - bufStart;
        const n = recordBytesAt(buf.subarray(0, have), rel);
        if (typeof n !== "number") throw corruptError(n, seg.start, pos);
        const position = seg.start + pos;
        yield { position, next: position + n, format: buf.readUInt8(rel + 8), recvMs: buf.readDoubleLE(rel + 9), payload: buf.subarray(rel + rawLogLimits.headerBytes, rel + n) };
        pos += n;
      }
    } finally {
      closeSync(fd);
    }
  }
}

/** readRawLog's piece: records are read this many bytes at a time (the buffer grows for a longer one). */
const rawLogReadChunkBytes = 1 << 20;

/**
 * Where to start reading for every record received at or after `recvMs`:
 * the start of the last segment whose first record is no newer, else 0.
 * Reads one header per segment, so recovery skips old segments unread.
 *
 * @example
 *   for (const rec of readRawLog(dir, rawLogPositionBefore(dir, Date.now() - 600_000))) ...
 */
export function rawLogPositionBefore(dir: string, recvMs: number): number {
  let from = 0;
  for (const seg of contiguousSegments(dir)) {
    const first = firstRecvMsOf(seg.path);
    if (first === undefined || first > recvMs) break;
    from = seg.start;
  }
  return from;
}

/**
 * Checks every record of every segment and that segments follow each other
 * without gaps. Throws a RawLogError naming the first bad segment and
 * position (including a torn tail: open a RawLog first to cut that).
 *
 * @example
 *   const { records, bytes } = verifyRawLog("./data/raw");
 */
export function verifyRawLog(dir: string): RawLogSummary {
  const summary: RawLogSummary = { segments: 0, records: 0, bytes: 0 };
  for (const seg of contiguousSegments(dir)) {
    const buf = readFileSync(seg.path);
    const scan = scanSegment(buf);
    if (scan.fault !== undefined) throw corruptError(scan.fault, seg.start, scan.validBytes);
    summary.segments++;
    summary.records += scan.records;
    summary.bytes += buf.byteLength;
    summary.firstRecvMs ??= scan.firstRecvMs;
    if (scan.lastRecvMs !== undefined) summary.lastRecvMs = scan.lastRecvMs;
  }
  return summary;
}

/**
 * Cuts the log at `position` (a record boundary, e.g. a corrupt record's
 * position from verifyRawLog): deletes later segments and truncates the one
 * holding it. Only with weir stopped.
 *
 * @example
 *   truncateRawLogAt("./data/raw", 123456); // { segmentsDeleted: 2, bytesDropped: 9000 }
 */
export function truncateRawLogAt(dir: string, position: number): { segmentsDeleted: number; bytesDropped: number } {
  const segs = listSegments(dir);
  const i = segs.findLastIndex((s) => s <= position);
  if (!Number.isSafeInteger(position) || i < 0) {
    throw new RawLogError(`cannot cut the raw log at position ${position}: the oldest retained position is ${segs[0] ?? 0}`);
  }
  const start = segs[i];
  const path = segmentPath(dir, start);
  const buf = readFileSync(path);
  checkCut(buf, start, position - start);
  let bytesDropped = buf.byteLength - (position - start);
  // Newest first, so stopping halfway still leaves a contiguous log.
  for (let j = segs.length - 1; j > i; j--) {
    const later = segmentPath(dir, segs[j]);
    bytesDropped += statSync(later).size;
    unlinkSync(later);
  }
  const fd = openSync(path, "r+");
  try {
    ftruncateSync(fd, position - start);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  syncDir(dir);
  return { segmentsDeleted: segs.length - 1 - i, bytesDropped };
}

/** Throws unless `target` is a record boundary in `buf` with only valid records before it. */
function checkCut(buf: Buffer, start: number, target: number): void {
  const cannot = `cannot cut the raw log at position ${start + target}`;
  const name = segmentName(start);
  if (target > buf.byteLength) throw new RawLogError(`${cannot}: ${name} ends at position ${start + buf.byteLength}`);
  let off = 0;
  while (off < target) {
    const n = recordBytesAt(buf, off);
    if (typeof n !== "number") throw new RawLogError(`${cannot}: ${n} earlier, at position ${start + off} in ${name}; cut there`);
    if (off + n > target) throw new RawLogError(`${cannot}: inside the record at position ${start + off} in ${name}`);
    off += n;
  }
}

/** Bytes of the valid record at `off`, or why there is none. */
function recordBytesAt(buf: Buffer, off: number): number | Fault {
  const left = buf.byteLength - off;
  if (left < rawLogLimits.headerBytes) return "torn record";
  const rest = buf.readUInt32LE(off);
  if (rest < rawLogLimits.bodyBytesMin) return "bad record length";
  if (8 + rest > left) return "torn record";
  const crc = buf.readUInt32LE(off + 4);
  if ((Bun.hash.crc32(buf.subarray(off + 8, off + 8 + rest)) >>> 0) !== crc) return "checksum mismatch";
  return 8 + rest;
}

/**
 * A segment's bytes mapped, not read: a restart scans the last segment (up
 * to segmentBytesMax) in a fresh process, where a read copies it into memory
 * faulted in page by page (13 MiB, 60 s at 6,000 events/s: ~130 ms read,
 * ~60 ms mapped, medians of 5 fresh processes on a loaded 2-core VM). Only
 * read through: appends go through the fd, and a torn tail is cut after the scan.
 */
function mapSegment(path: string): Buffer {
  if (statSync(path).size === 0) return Buffer.alloc(0); // mmap(2) takes no empty file
  const m = Bun.mmap(path, { shared: false });
  return Buffer.from(m.buffer, m.byteOffset, m.byteLength);
}

/** Walks a segment's records up to the first fault. */
function scanSegment(buf: Buffer): SegmentScan {
  const scan: SegmentScan = { records: 0, validBytes: 0 };
  while (scan.validBytes < buf.byteLength) {
    const n = recordBytesAt(buf, scan.validBytes);
    if (typeof n !== "number") {
      scan.fault = n;
      break;
    }
    const recvMs = buf.readDoubleLE(scan.validBytes + 9);
    scan.firstRecvMs ??= recvMs;
    scan.lastRecvMs = recvMs;
    scan.records++;
    scan.validBytes += n;
  }
  return scan;
}

/**
 * Whether any valid record starts after a fault. If one does, the fault is
 * damage inside the log (say, a flipped length), not a tail torn by a crash.
 */
function validRecordFollows(buf: Buffer, faultOff: number): boolean {
  for (let off = faultOff + 1; off + rawLogLimits.headerBytes <= buf.byteLength; off++) {
    if (typeof recordBytesAt(buf, off) === "number") return true;
  }
  return false;
}

/** Segments in order; throws if one does not start where the previous ended. */
function* contiguousSegments(dir: string): Generator<SegmentFile> {
  let prev: SegmentFile | undefined;
  for (const start of listSegments(dir)) {
    const name = segmentName(start);
    const path = join(dir, name);
    if (prev !== undefined && prev.start + prev.size !== start) {
      const position = prev.start + prev.size;
      throw new RawLogError(
        `raw log corrupt: gap at position ${position}: ${prev.name} ends there but the next segment is ${name}; ${repairHint}`,
        { position, segment: prev.name },
      );
    }
    prev = { start, name, path, size: statSync(path).size };
    yield prev;
  }
}

function corruptError(fault: Fault, start: number, off: number): RawLogError {
  const position = start + off;
  const segment = segmentName(start);
  return new RawLogError(`raw log corrupt: ${fault} at position ${position} in ${segment}; ${repairHint}`, { position, segment });
}

/** The receive time of a segment's first record, if it has one. */
function firstRecvMsOf(path: string): number | undefined {
  const head = Buffer.alloc(rawLogLimits.headerBytes);
  const fd = openSync(path, "r");
  try {
    return readSync(fd, head, 0, head.byteLength, 0) === head.byteLength ? head.readDoubleLE(9) : undefined;
  } finally {
    closeSync(fd);
  }
}

function syncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The start positions of the log's segment files, oldest first (the last one is the one being written). */
export function listSegments(dir: string): number[] {
  return readdirSync(dir)
    .map((f) => /^raw-(\d+)\.log$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** A segment's file name: raw-<start position, zero-padded>.log. */
export function segmentName(start: number): string {
  return `raw-${String(start).padStart(rawLogLimits.segmentNameDigits, "0")}.log`;
}

function segmentPath(dir: string, start: number): string {
  return join(dir, segmentName(start));
}
